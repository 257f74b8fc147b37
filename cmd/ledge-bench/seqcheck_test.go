package main

import "testing"

func TestSeqCheck(t *testing.T) {
	cases := []struct {
		name                 string
		seqs                 []uint64
		sent                 uint64
		lost, dups, disorder uint64
	}{
		{"in order", []uint64{0, 1, 2, 3, 4}, 5, 0, 0, 0},
		{"nothing arrived", nil, 3, 3, 0, 0},
		{"tail lost", []uint64{0, 1, 2}, 5, 2, 0, 0},
		{"gap lost", []uint64{0, 1, 3, 4}, 5, 1, 0, 0},
		{"duplicate", []uint64{0, 1, 1, 2}, 3, 0, 1, 0},
		{"duplicate of an old one", []uint64{0, 1, 2, 0}, 3, 0, 1, 0},
		{"swapped pair", []uint64{0, 2, 1, 3}, 4, 0, 0, 1},
		{"late straggler", []uint64{1, 2, 3, 4, 0}, 5, 0, 0, 1},
		{"reversed", []uint64{3, 2, 1, 0}, 4, 0, 0, 3},
		{"all three", []uint64{0, 2, 2, 1, 5, 5}, 7, 3, 2, 1},
		{"beyond one word", []uint64{0, 64, 200, 63, 64}, 201, 197, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var k seqCheck
			for _, s := range c.seqs {
				k.record(s)
			}
			if got := k.lost(c.sent); got != c.lost {
				t.Errorf("lost %d, want %d", got, c.lost)
			}
			if k.dups != c.dups {
				t.Errorf("duplicates %d, want %d", k.dups, c.dups)
			}
			if k.outOfOrder != c.disorder {
				t.Errorf("out of order %d, want %d", k.outOfOrder, c.disorder)
			}
			if k.received != uint64(len(c.seqs)) {
				t.Errorf("received %d, want %d", k.received, len(c.seqs))
			}
		})
	}
}

func TestSeqCheckMergeOfQueueGroup(t *testing.T) {
	// Three workers share 0..9; 4 reached two of them, 8 and 9 none.
	workers := [][]uint64{{0, 3, 4, 6}, {1, 4, 7}, {2, 5}}
	var group seqCheck
	for _, seqs := range workers {
		var w seqCheck
		for _, s := range seqs {
			w.record(s)
		}
		group.merge(&w)
	}
	if group.received != 9 || group.unique != 8 || group.dups != 1 || group.lost(10) != 2 || group.outOfOrder != 0 {
		t.Fatalf("group: received %d unique %d dups %d lost %d out of order %d; want 9 8 1 2 0",
			group.received, group.unique, group.dups, group.lost(10), group.outOfOrder)
	}
}
