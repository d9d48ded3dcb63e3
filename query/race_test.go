//go:build race

package query

// raceEnabled reports whether the race detector is on: the heaviest
// corpus sweeps are narrowed under it.
const raceEnabled = true
