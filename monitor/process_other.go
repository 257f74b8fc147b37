//go:build !(linux || darwin)

package monitor

import (
	"errors"
	"time"
)

func residentBytes() (uint64, bool) { return 0, false }

func cpuTime() time.Duration { return 0 }

func diskStats(string) (total, free uint64, err error) {
	return 0, 0, errors.New("disk space is not known on this system")
}
