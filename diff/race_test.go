//go:build race

package diff

// raceEnabled reports whether the race detector is on: the speed bounds
// are not checked under it.
const raceEnabled = true
