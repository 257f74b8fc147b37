//go:build race

package natsgw

// raceEnabled: the race detector's sync.Pool drops items on purpose, so
// allocation counts are meaningless under -race.
const raceEnabled = true
