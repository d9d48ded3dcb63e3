// Package batch parses critq's batch scripts and runs work over many dumps
// in parallel.
//
// A script (see [Parse]) is a list of bindings, named queries and rewrite
// rules, each a CEL expression:
//
//	# memory and sockets of every dump
//	let exec = vmas.filter(v, v.prot & PROT_EXEC)
//	exec-vmas: exec.size()
//	listeners: sockets.filter(s,
//	    s.state == TCP_LISTEN)
//	rule files: e
//
// The package checks only the layout of a script and keeps each expression
// with its position, so that the compiler's errors name script:line:col;
// package query compiles the expressions and package rules the rules
// (rules.ScriptRules, rules.LocateError). critq -f previews a script's
// rules over many dumps, and a rules file of critq transform -f, which
// applies them, is a script of rules.
//
// [Run] evaluates a function over a list of dumps with a bounded number of
// workers and hands the results back in the order of the list, holding at
// most a few results at a time, so that memory does not grow with the number
// of dumps.
package batch
