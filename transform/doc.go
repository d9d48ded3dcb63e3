// Package transform rewrites CRIU dumps without losing a byte: it builds new
// images in which only the changed entries are re-encoded (every other entry
// is copied as it is in the file), and it puts them in place atomically,
// either in a new dump directory ([WriteDir]) or in the dump itself
// ([ApplyInPlace]), with a journal so that [Recover] leaves an interrupted
// dump wholly old or wholly new. A checkpoint archive is rewritten the same
// ways: a new archive ([WriteArchive]) in which only the rewritten images'
// members differ, or the archive replaced ([ApplyArchiveInPlace]).
//
// Which entries change, and how, is decided by the rules of the transform
// command (CEL expressions compiled and applied by package rules, whose
// RuleResult.Plan makes the [Plan]); this package only sees their result as
// a [Plan] of new image bytes.
package transform
