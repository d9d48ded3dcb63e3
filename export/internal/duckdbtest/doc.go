// Package duckdbtest opens what critq export writes with DuckDB (through its
// Go bindings, cgo) and checks the SQL examples of examples/sql against the
// CEL recipes they restate. It is a module of its own, run by .ci/run, so
// that critq itself depends on neither cgo nor DuckDB.
package duckdbtest
