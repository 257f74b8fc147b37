package monitor

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// processStats are the broker process's resources at one moment.
type processStats struct {
	// RSS is the resident memory (Go's mapped memory where the system
	// does not say); Heap the bytes of live and unswept heap objects.
	RSS, Heap uint64
	// CPU is the processor time used since start, user and system.
	CPU        time.Duration
	Goroutines int
	Cores      int
	MaxProcs   int
	GoVersion  string
	// MemLimit is GOMEMLIMIT (math.MaxInt64 when unset).
	MemLimit int64
}

var processSamples = []string{"/memory/classes/total:bytes", "/memory/classes/heap/objects:bytes", "/gc/gomemlimit:bytes"}

func readProcess() processStats {
	ms := make([]metrics.Sample, len(processSamples))
	for i, name := range processSamples {
		ms[i].Name = name
	}
	metrics.Read(ms)
	val := func(i int) uint64 {
		if ms[i].Value.Kind() == metrics.KindUint64 {
			return ms[i].Value.Uint64()
		}
		return 0
	}
	p := processStats{
		RSS: val(0), Heap: val(1), MemLimit: int64(val(2)),
		Goroutines: runtime.NumGoroutine(), Cores: runtime.NumCPU(), MaxProcs: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(),
	}
	if rss, ok := residentBytes(); ok {
		p.RSS = rss
	}
	p.CPU = cpuTime()
	return p
}
