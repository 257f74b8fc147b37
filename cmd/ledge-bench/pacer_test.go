package main

import (
	"context"
	"testing"
	"time"
)

func TestPacerHoldsTheRate(t *testing.T) {
	// 200 messages at 1000/s take about 200 ms: never much less (that
	// would be a burst), and the slack only matters on a loaded machine.
	p := newPacer(1000, 0)
	start := time.Now()
	for i := 0; i < 200; i++ {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 195*time.Millisecond {
		t.Fatalf("200 messages at 1000/s in %v: faster than the rate", d)
	}
}

func TestPacerDropsBacklogInsteadOfBursting(t *testing.T) {
	p := newPacer(1000, 0)
	p.wait(context.Background())
	time.Sleep(50 * time.Millisecond) // the publisher was held up
	start := time.Now()
	for i := 0; i < 20; i++ {
		p.wait(context.Background())
	}
	// Catching up would send the 50 messages owed at once; the pacer
	// starts a new schedule, so 20 messages still take about 20 ms.
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Fatalf("20 messages in %v after a stall: the pacer burst to catch up", d)
	}
}

func TestPacerPhaseDelaysTheFirstMessage(t *testing.T) {
	p := newPacer(10, 0.5) // every 100 ms, the first after 50 ms
	start := time.Now()
	p.wait(context.Background())
	if d := time.Since(start); d < 45*time.Millisecond {
		t.Fatalf("first message after %v, want about 50ms", d)
	}
}

func TestPacerStopsWithContext(t *testing.T) {
	p := newPacer(0.01, 0.5) // the first message is due in 50 s
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.wait(ctx); err == nil {
		t.Fatal("wait returned without error when its context ended")
	}
}
