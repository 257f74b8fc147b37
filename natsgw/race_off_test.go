//go:build !race

package natsgw

const raceEnabled = false
