//go:build !race

package cli

// raceEnabled reports whether the tests run under the race detector, where
// timings mean nothing.
const raceEnabled = false
