package main

import "math/bits"

// seqCheck follows what one receiver got from one publisher: which
// sequence numbers arrived (a bitset, one bit per message sent), how many
// arrived twice, and how many arrived after a later one. It is used by one
// goroutine at a time; checks of the members of a queue group are merged
// after the run, since only their union says what was lost.
type seqCheck struct {
	seen       []uint64 // bit s is set once sequence s has arrived
	unique     uint64   // sequences seen at least once
	received   uint64
	dups       uint64
	outOfOrder uint64
	highest    uint64 // highest sequence seen, valid when received > 0
}

// record notes the arrival of sequence s.
func (c *seqCheck) record(s uint64) {
	c.received++
	w := s / 64
	if w >= uint64(len(c.seen)) {
		n := max(w+1, uint64(2*len(c.seen)))
		c.seen = append(c.seen, make([]uint64, n-uint64(len(c.seen)))...)
	}
	bit := uint64(1) << (s % 64)
	if c.seen[w]&bit != 0 {
		c.dups++
		return
	}
	c.seen[w] |= bit
	c.unique++
	if c.received > 1 && s < c.highest {
		c.outOfOrder++
	}
	c.highest = max(c.highest, s)
	if c.received == 1 {
		c.highest = s
	}
}

// merge folds o, another receiver's check of the same publisher, into c:
// a sequence both saw is a duplicate of the group.
func (c *seqCheck) merge(o *seqCheck) {
	if len(o.seen) > len(c.seen) {
		c.seen = append(c.seen, make([]uint64, len(o.seen)-len(c.seen))...)
	}
	var unique uint64
	for i := range c.seen {
		if i < len(o.seen) {
			c.seen[i] |= o.seen[i]
		}
		unique += uint64(bits.OnesCount64(c.seen[i]))
	}
	c.received += o.received
	c.outOfOrder += o.outOfOrder
	c.unique = unique
	c.dups = c.received - c.unique
	c.highest = max(c.highest, o.highest)
}

// lost returns how many of the sent messages never arrived.
func (c *seqCheck) lost(sent uint64) uint64 {
	if c.unique >= sent {
		return 0
	}
	return sent - c.unique
}
