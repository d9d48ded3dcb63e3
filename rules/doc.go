// Package rules compiles and applies the rules of critq transform: CEL
// expressions that rewrite the entries of a dump's images.
//
//	srcs := []rules.RuleSource{{Where: "rule 1", Kind: "files",
//		Expr: `e.reg.name == "/old" ? e.with({"reg.name": "/new"}) : e`}}
//	rs, err := rules.CompileRules(srcs, rules.RuleOptions{})
//	res, err := rules.ApplyRules(ctx, d, rs)  // d is a *dump.Dump
//	err = res.Validate(d)                   // what CRIU would refuse
//	warnings := res.Warnings(d)             // what the host may refuse
//	err = res.WriteDiff(os.Stdout)          // the dry-run preview
//	plan, err := res.Plan(d)                // for transform.Write
//
// A compiled [Rule] is safe for concurrent use: what one evaluation needs
// (the image's byte order, the extra bytes of the entry) is in its
// activation. [ApplyRulesWith] with Steps records each rule's changes, so a
// preview of a chain of rules applies it once. Errors of compiling are a
// *[RuleError] holding the *query.CompileError with its caret; errors of
// evaluating are a *[RuleEvalError] naming the rule, file and entry.
//
// # Rules
//
// A rule is `KIND: EXPR`. KIND names an image kind; EXPR is evaluated once
// for every entry of every image of that kind, with the entry bound to e
// (typed as the kind's message), and returns the entry's new value: e
// itself, a message of the same type built with e.with({...}), or drop() to
// delete the entry. The dialect is the query dialect (bitwise operators,
// constants such as REG and PROT_EXEC, critq's functions).
//
// with() is a member function of every message: m.with({PATH: VALUE, ...})
// returns a copy of m with the fields at each PATH replaced. A PATH is field
// names joined by dots, with [N] after a repeated field to name one element
// ("reg.name", "vmas[3].prot", "isk.src_addr[0]"). The map must be a literal
// with constant string keys, so that every path is resolved against the
// message's descriptor and every value's checked type compared with the
// field's type when the rule compiles. A VALUE may be:
//
//   - a value of the field's type (int and uint for every integer field, with
//     a range check; a message of the field's message type; a list for a
//     whole repeated field);
//   - for an enum field, the name of one of its values ("UNIXSK");
//   - for a (criu).flags or (criu).dict field, crit's rendering of the value
//     ("O_WRONLY | O_LARGEFILE", "LISTEN");
//   - for a (criu).ipadd field (the addresses of sockets), an address as
//     text: "10.0.0.1" or "fd00::1" for the whole field, "10.0.0.1" for one
//     word ("isk.src_addr[0]");
//   - null, to clear an optional field or empty a repeated one.
//
// Keys are applied in sorted order, so {"reg": r, "reg.name": n} sets reg,
// then its name. An index must name an element that exists, or the one past
// the end (which appends).
//
// The raw bytes that some kinds carry after an entry are bound to their own
// names and set through with() under the same names: extra for the queued
// data of PIPES_DATA, FIFO_DATA and SK_QUEUES entries and for the contents
// of a ghost file (of its ghost-file entry when it has no chunks, else of
// each ghost-chunk), inq and outq for the queues of a TCP_STREAM entry. The
// length fields of the message (pipe_data_entry.bytes,
// sk_packet_entry.length, ghost_chunk_entry.len, tcp_stream_entry.inq_len
// and outq_len) follow the new data.
//
// The head entry of PAGEMAP and SHMEM_PAGEMAP images (pagemap_head) is
// rewritten by rules of kind pagemap-head (pagemap-shmem-head), their other
// entries by pagemap rules; ghost-file rules rewrite the ghost_file_entry of
// a GHOST_FILE image, ghost-chunk rules its chunks. A head cannot be
// dropped. Message values built in the rule (fown_entry{uid: 5u}) are
// accepted wherever a message of their type is.
package rules
