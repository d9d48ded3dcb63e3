package cli

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/rules"
	"github.com/critq/critq/transform"
)

const transformUsage = `usage: critq transform [flags] 'KIND: EXPR' DUMP (-o OUT | --in-place | --dry-run)
       critq transform [flags] (-f RULES | --rule 'KIND: EXPR' | --kind KIND ...) DUMP ...
       critq transform --recover DUMP

Rewrites the entries of a dump's images with CEL rules. A rule KIND: EXPR is
evaluated for every entry of every image of KIND (crit's name in any case,
or the file name: files, core, mm, pstree, fdinfo, ids, tcp-stream,
pipes-data, sk-queues, ...) with the entry bound to e; it returns e, a copy
built with e.with({PATH: VALUE, ...}), or drop() to delete the entry.
Paths are field names joined by dots, [N] for an element of a repeated
field; they and the types of their values are checked when the rule
compiles. Enum fields take names ("UNIXSK"), flag fields crit's names
("O_RDWR | O_LARGEFILE"), address fields text ("10.0.0.1"), message fields
a message (e.reg.fown.with({...}) or fown_entry{...}). Queued data is
extra (pipes-data, sk-queues), inq and outq (tcp-stream).

Images whose first entry has its own message name it apart: pagemap-head
(and pagemap-shmem-head) is the pagemap_head, pagemap the pagemap entries;
ghost-file is the ghost_file_entry of a ghost-file image, ghost-chunk its
chunks. A ghost file's contents are extra: of ghost-file when it has no
chunks, else of each ghost-chunk (its len follows). Heads cannot be dropped.

Entries no rule changes are copied as bytes, untouched images byte for
byte; pages are never rewritten. Before anything is written every changed
entry is validated: required fields set, a file entry carrying the part of
its type, one-entry images (core, mm, ids, ...) keeping their entry, the
present pages of a pagemap within its pages image; a failure names the rule
and the entry, writes nothing and exits 5 unless --force. Every run reports on stderr what each rule
matched and changed; a rule that changes nothing is an error unless
--allow-empty. Warnings name what the change leaves inconsistent.

Examples:
  critq transform 'files: e.type == REG && e.reg.name.startsWith("/old/") ?
      e.with({"reg.name": e.reg.name.replace("/old/", "/new/")}) : e' DUMP -o OUT
  critq transform --kind files --where 'e.isk.src_port == 8080'
      --set 'isk.src_port=9090' --set 'isk.src_addr="10.0.0.2"' DUMP --in-place
  critq transform --kind core --set 'thread_core.creds.uid=1000' DUMP --dry-run
  critq transform --dry-run -f rules.critq DUMP -o OUT   (what -o OUT would write)
  critq transform 'ghost-file: e.with({"uid": 1000u, "extra": b"new contents"})' DUMP -o OUT
  critq transform -f rules.critq DUMP -o OUT
  critq transform --kind files --where 'e.isk.src_port == 8080u && e.isk.dst_port == 0u'
      --set 'isk.src_port=9090' checkpoint.tar.gz -o moved.tar.gz

DUMP may be a checkpoint archive (tar, tar.gz, tar.zst). -o OUT then
writes a new archive file, compressed as OUT's extension says (.tar,
.tar.gz or .tgz, .tar.zst) or else as DUMP is: the rewritten images
replace the data of their members, and every other member (its header and
its data), the order of the members and the tar's end are copied as they
are. --in-place replaces the archive (the old one kept as NAME.orig unless
--no-backup) under a lock of the archive file; --recover ARCHIVE finishes
or rolls back an interrupted run. A new archive is written to a temporary
file, synced and renamed: on failure nothing is left behind.

A rules file (-f) is a batch script (critq batch -h) of rules, one
'rule KIND: EXPR' a line: # starts a comment, and a rule continues on the
next lines while a bracket or a triple-quoted string is open; errors read
FILE:LINE:COL. critq -f RULES DUMP... previews its rules on many dumps.
`

func init() {
	register(&command{name: "transform", summary: "rewrite the images of a dump with CEL rules", run: runTransform})
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ", ") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

type transformFlags struct {
	files      stringList
	rules      stringList
	kind       string
	where      string
	sets       stringList
	drop       bool
	out        string
	link       bool
	inPlace    bool
	noBackup   bool
	recover    string
	dryRun     bool
	allowEmpty bool
	force      bool
	timeout    time.Duration
	cost       uint64
	lockWait   time.Duration
	noWait     bool
}

func runTransform(c *cli, args []string) error {
	var o transformFlags
	fs := c.newFlags("transform", transformUsage)
	c.archiveFlags(fs)
	fs.Var(&o.files, "f", "read rules from `file` (repeatable)")
	fs.Var(&o.rules, "rule", "a rule `'KIND: EXPR'` (repeatable)")
	fs.StringVar(&o.kind, "kind", "", "with --set or --drop: the `kind` of the rule")
	fs.StringVar(&o.where, "where", "", "with --kind: change only the entries for which `pred` holds")
	fs.Var(&o.sets, "set", "with --kind: set a field, `PATH=EXPR` (repeatable)")
	fs.BoolVar(&o.drop, "drop", false, "with --kind: delete the entries")
	fs.StringVar(&o.out, "o", "", "write the new dump to `out`: a folder (must not exist or be empty; checked first), or for an archive a new archive file")
	fs.BoolVar(&o.link, "link", false, "with -o: hard-link the untouched images instead of copying them")
	fs.BoolVar(&o.inPlace, "in-place", false, "rewrite the dump itself (old images, or the old archive, kept as NAME.orig)")
	fs.BoolVar(&o.noBackup, "no-backup", false, "with --in-place: keep no NAME.orig")
	fs.StringVar(&o.recover, "recover", "", "finish or roll back an interrupted --in-place run on `dump`")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the changed fields, write nothing; with -o or --in-place also the files it would write")
	fs.BoolVar(&o.allowEmpty, "allow-empty", false, "accept rules that change nothing")
	fs.BoolVar(&o.force, "force", false, "write entries that fail validation (CRIU may not restore them)")
	fs.DurationVar(&o.timeout, "timeout", rules.DefaultRuleTimeout, "stop the evaluation after `duration`")
	fs.Uint64Var(&o.cost, "cost", rules.DefaultRuleCostLimit, "limit of the cost of one rule on one entry")
	o.lockFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if o.recover != "" {
		if len(pos) > 0 {
			return usageErrorf("transform: --recover takes only the dump")
		}
		lock, err := c.lockDump(o.recover, &o)
		if err != nil {
			return err
		}
		defer lock.Unlock()
		return c.recoverDump(o.recover, lock)
	}
	srcs, pos, err := o.ruleSources(pos)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("transform: need rules and one dump (critq transform -h)")
	}
	dir := pos[0]
	switch {
	case o.out != "" && o.inPlace:
		return usageErrorf("transform: give one of -o OUT and --in-place (with --dry-run to preview it)")
	case o.out == "" && !o.inPlace && !o.dryRun:
		return usageErrorf("transform: give one of -o OUT, --in-place and --dry-run")
	case o.link && o.out == "":
		return usageErrorf("transform: --link goes with -o")
	case o.noBackup && !o.inPlace:
		return usageErrorf("transform: --no-backup goes with --in-place")
	}
	archive := isArchiveFile(dir)
	if o.link && archive {
		return usageErrorf("transform: --link goes with a dump folder: the members of an archive are copied")
	}
	if o.out != "" && archive {
		if err := checkOutArchive(o.out, dir); err != nil {
			return err
		}
	} else if o.out != "" {
		if err := checkOutDir(o.out, dir); err != nil {
			return err
		}
		// Before anything is read: the output must not exist or be empty.
		ents, err := os.ReadDir(o.out)
		switch {
		case err == nil && len(ents) > 0:
			return usageErrorf("transform: %s: output directory is not empty", o.out)
		case err != nil && !errors.Is(err, iofs.ErrNotExist):
			return usageErrorf("transform: -o %s: %v", o.out, err)
		}
	}

	compiled, err := rules.CompileRules(srcs, rules.RuleOptions{CostLimit: o.cost})
	if err != nil {
		return withExitCode(err, exitCompile)
	}
	var lock *transform.Lock
	if o.inPlace {
		// From reading the dump to the end: a second writer waits.
		if lock, err = c.lockDump(dir, &o); err != nil {
			return err
		}
		defer lock.Unlock()
	}
	d, err := dump.Open(dir)
	if err != nil {
		return withCode(exitBadImage, err)
	}
	defer d.Close()
	c.handlesInterrupt()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("rules stopped after %v (--timeout)", o.timeout))
		defer cancel()
	}
	res, err := rules.ApplyRulesWith(ctx, d, compiled, rules.ApplyOptions{AllowPartial: o.force})
	if err != nil {
		var ie *rules.IncompleteError
		if errors.As(err, &ie) {
			err = fmt.Errorf("%w\n%s", err, refusedNote)
		}
		return withExitCode(err, exitError)
	}
	empty := c.reportStats(res)
	for _, w := range res.Warnings(d) {
		fmt.Fprintf(c.stderr, "critq: warning: %s\n", w)
	}
	if o.dryRun {
		if err := res.WriteDiff(c.stdout); err != nil {
			return withCode(exitError, err)
		}
	}
	if empty != nil && !o.allowEmpty {
		return withCode(exitError, fmt.Errorf("%s changed nothing: nothing written (--allow-empty accepts it)", empty.Source.Where))
	}
	if verr := res.Validate(d); verr != nil {
		if !o.force {
			return withCode(exitError, fmt.Errorf("%w\n%s", verr, refusedNote))
		}
		fmt.Fprintf(c.stderr, "critq: warning: --force: %s\n", strings.ReplaceAll(verr.Error(), "\n", "\ncritq: warning: --force: "))
	}
	if o.dryRun && o.out == "" && !o.inPlace {
		return nil
	}
	plan, err := res.Plan(d)
	if err != nil {
		return withCode(exitError, err)
	}
	if o.dryRun && archive {
		return c.previewArchive(d.Archive(), &o, plan)
	}
	if o.dryRun {
		return c.previewWrite(dir, &o, plan)
	}
	inPlace := transform.InPlaceOptions{NoBackup: o.noBackup, Lock: lock, Step: c.step}
	switch {
	case archive && o.inPlace:
		err = transform.ApplyArchiveInPlace(d.Archive(), plan, inPlace)
	case archive:
		err = transform.WriteArchive(d.Archive(), o.out, plan, outCompression(o.out, d.Archive()))
	case o.inPlace:
		err = transform.ApplyInPlace(dir, plan, inPlace)
	default:
		err = transform.WriteDir(dir, o.out, plan, transform.WriteOptions{Link: o.link})
	}
	if err != nil {
		return withCode(exitError, err)
	}
	target := o.out
	if o.inPlace {
		target = dir
	}
	fmt.Fprintf(c.stderr, "critq: %s: %d image(s) rewritten: %s\n", target, len(plan.Images), strings.Join(res.ChangedFiles(), " "))
	return nil
}

// refusedNote follows the errors of changes that validation refuses.
const refusedNote = "nothing written: CRIU could not restore the dump (--force writes it anyway)"

// ruleSources collects the rules of the command line in order: files,
// --rule, the --kind rule, and, when none of them is given, the first
// positional argument. It returns the remaining positional arguments.
func (o *transformFlags) ruleSources(pos []string) ([]rules.RuleSource, []string, error) {
	var srcs []rules.RuleSource
	for _, f := range o.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, withCode(exitUsage, err)
		}
		rs, err := rules.ParseRuleFile(f, string(b))
		if err != nil {
			return nil, nil, withCode(exitCompile, err)
		}
		srcs = append(srcs, rs...)
	}
	for _, r := range o.rules {
		rs, err := rules.ParseRule(fmt.Sprintf("rule %d", len(srcs)+1), r)
		if err != nil {
			return nil, nil, withCode(exitCompile, err)
		}
		srcs = append(srcs, rs)
	}
	if o.kind != "" {
		rs, err := o.sugar(len(srcs) + 1)
		if err != nil {
			return nil, nil, err
		}
		srcs = append(srcs, rs)
	} else if o.where != "" || len(o.sets) > 0 || o.drop {
		return nil, nil, usageErrorf("transform: --where, --set and --drop go with --kind")
	}
	if len(srcs) == 0 && len(pos) > 0 {
		rs, err := rules.ParseRule("rule 1", pos[0])
		if err != nil {
			return nil, nil, withCode(exitCompile, err)
		}
		srcs, pos = append(srcs, rs), pos[1:]
	}
	if len(srcs) == 0 {
		return nil, nil, usageErrorf("transform: no rule given (critq transform -h)")
	}
	return srcs, pos, nil
}

// sugar builds the rule of --kind, --where, --set and --drop.
func (o *transformFlags) sugar(n int) (rules.RuleSource, error) {
	rs, err := rules.Sugar{Kind: o.kind, Where: o.where, Sets: o.sets, Drop: o.drop}.Source(fmt.Sprintf("rule %d (--kind %s)", n, o.kind))
	if err != nil {
		return rules.RuleSource{}, usageErrorf("transform: %v", err)
	}
	return rs, nil
}

// reportStats prints what each rule did and returns the first rule that
// changed nothing, if any.
func (c *cli) reportStats(res *rules.RuleResult) *rules.Rule {
	var empty *rules.Rule
	for _, st := range res.Stats {
		fmt.Fprintf(c.stderr, "critq: %s: %s\n", st.Rule.Source.Where, st)
		if st.Changed == 0 && empty == nil {
			empty = st.Rule
		}
	}
	return empty
}

// recoverDump finishes or rolls back an interrupted in-place transform.
func (c *cli) recoverDump(dir string, lock *transform.Lock) error {
	st, err := transform.RecoverWith(dir, transform.InPlaceOptions{Lock: lock})
	if err != nil {
		return withCode(exitError, err)
	}
	switch st {
	case transform.Interrupted:
		fmt.Fprintf(c.stdout, "%s: an interrupted transform was finished: the dump is the new one\n", dir)
	case transform.Leftovers:
		fmt.Fprintf(c.stdout, "%s: a transform stopped before its commit point: its files were removed, the dump is the old one\n", dir)
	default:
		fmt.Fprintf(c.stdout, "%s: no interrupted transform: nothing to do\n", dir)
	}
	return nil
}
