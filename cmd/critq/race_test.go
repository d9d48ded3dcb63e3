//go:build race

package main

// raceEnabled reports whether the tests run under the race detector, where
// timings mean nothing.
const raceEnabled = true
