package broker

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/ledgemq/ledge/log"
)

// maxOwed bounds the ranges a consumer may owe at once: each JumpToTail
// while earlier ranges are still owed adds one, and a link that flaps more
// often than that goes on in order until they are delivered.
const maxOwed = 8

// owedRange is a span of stream sequences, [next, end), that a consumer
// jumped over with JumpToTail and still has to deliver for the first time.
//
// The slice of ranges changes only under both the consumer's and the
// stream's locks, so either lock is enough to read it; next and pending
// are atomics because the stream moves them under its lock alone (a
// message removed, a purge).
type owedRange struct {
	next    atomic.Uint64
	end     uint64
	pending atomic.Int64 // live messages in [next, end) the consumer wants
}

// JumpToTail makes the consumer deliver what the stream stores from now on
// ahead of everything it has not delivered yet, which it goes on to deliver,
// oldest first, whenever nothing newer is waiting: the newest-first
// catch-up of an uplink, whose live traffic should not wait behind a day of
// backlog. It returns how many messages were put behind (0 when there was
// nothing to jump over, or the consumer already owes maxOwed ranges).
//
// Delivered but unacknowledged messages keep their redeliveries. The range
// jumped over is part of the consumer's saved state: its ack floor, and
// with it interest and work-queue retention, stays below the range until
// every message in it has been delivered and acknowledged. Consumers with
// DeliverLastPerSubject still choosing their first messages do not jump.
func (c *Consumer) JumpToTail() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.lastPer != nil || len(c.owed) >= maxOwed {
		return 0
	}
	s := c.s
	s.mu.Lock()
	next, end := c.next.Load(), s.last+1
	n := c.numPending.Load()
	if end <= next || n <= 0 {
		s.mu.Unlock()
		return 0
	}
	r := &owedRange{end: end}
	r.next.Store(next)
	r.pending.Store(n)
	c.owed = append(c.owed, r)
	c.next.Store(end)
	c.numPending.Store(0)
	s.mu.Unlock()
	// Saved at once: deliveries past the jump are about to be acknowledged,
	// and a state without the range would count what it owes as done.
	c.dirty = true
	if err := c.saveLocked(true); err != nil {
		c.dirty = true
	}
	c.wake()
	return uint64(n)
}

// owesLocked reports whether seq lies in a range the consumer still owes.
// The caller holds the consumer's or the stream's lock.
func (c *Consumer) owesLocked(seq uint64) bool {
	for _, r := range c.owed {
		if seq >= r.next.Load() && seq < r.end {
			return true
		}
	}
	return false
}

// owedPending counts the messages owed. The caller holds either lock.
func (c *Consumer) owedPending() int64 {
	var n int64
	for _, r := range c.owed {
		n += max(r.pending.Load(), 0)
	}
	return n
}

// owedRemoved is told, under the stream's lock, that a message below next
// is gone, so that the range owing it counts one fewer.
func (c *Consumer) owedRemoved(seq uint64, wanted bool) {
	if !wanted {
		return
	}
	for _, r := range c.owed {
		if seq >= r.next.Load() && seq < r.end {
			r.pending.Add(-1)
			return
		}
	}
}

// owedPurged is told, under the stream's lock, that everything below first
// is gone. Emptied ranges are dropped by the next delivery.
func (c *Consumer) owedPurged(first uint64) {
	for _, r := range c.owed {
		if r.next.Load() < first {
			r.next.Store(min(first, r.end))
		}
		r.pending.Store(0)
	}
}

// recountOwedLocked counts each owed range again from the stream, after a
// restore or a change of filter. The caller holds the stream's lock.
func (s *Stream) recountOwedLocked(c *Consumer) {
	for _, r := range c.owed {
		next := r.next.Load()
		if next >= r.end {
			r.pending.Store(0)
			continue
		}
		r.pending.Store(int64(s.countFromLocked(c, next) - s.countFromLocked(c, r.end)))
	}
}

// dropOwedLocked removes owed range i, whose messages have all been
// delivered. The caller holds the consumer's lock.
func (c *Consumer) dropOwedLocked(i int) {
	s := c.s
	s.mu.Lock()
	c.owed = append(c.owed[:i], c.owed[i+1:]...)
	s.mu.Unlock()
	c.dirty = true
}

// deliverOwedLocked delivers the oldest message the consumer owes, when
// nothing new was there to deliver. ok and more are as deliverOneLocked's.
func (c *Consumer) deliverOwedLocked(now int64) (ok, more bool) {
	for len(c.owed) > 0 {
		r := c.owed[0]
		want := r.next.Load()
		if want >= r.end {
			c.dropOwedLocked(0)
			continue
		}
		if c.ro == nil {
			rd, err := c.s.st.newReader(int64(want - 1))
			if err != nil {
				return false, true
			}
			c.ro = rd
		}
		if c.ro.offset() != int64(want-1) {
			if err := c.ro.seek(int64(want - 1)); err != nil {
				return false, true
			}
		}
		c.ro.release()
		err := c.ro.next(&c.rec)
		if err != nil {
			var ce *log.CorruptError
			switch {
			case err == io.EOF:
				// Owed messages not yet durable: they come with the
				// stream's next change.
				return false, true
			case errors.Is(err, log.ErrOffsetOutOfRange):
				c.s.skipOwed(r, uint64(c.s.st.firstOffset())+1)
				continue
			case errors.As(err, &ce) && ce.Next > int64(want-1):
				c.s.skipOwed(r, uint64(ce.Next)+1)
				continue
			}
			return false, true
		}
		seq := uint64(c.rec.Offset) + 1
		if seq >= r.end {
			c.s.skipOwed(r, r.end)
			continue
		}
		match := c.filter().matches(c.rec.Subject)
		if !c.s.advanceOwed(r, seq, match) || !match {
			continue
		}
		if !c.sendLocked(seq, &pendingMsg{}, now) {
			c.s.unadvanceOwed(r, seq)
			return false, false
		}
		return true, false
	}
	return false, true
}

// advanceOwed moves owed range r past seq, which its consumer read, and
// reports whether that message is live; match says the consumer wants it.
func (s *Stream) advanceOwed(r *owedRange, seq uint64, match bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq+1 <= r.next.Load() {
		return false
	}
	r.next.Store(seq + 1)
	if seq < s.first || seq > s.last {
		return false
	}
	if _, gone := s.deleted[seq]; gone {
		return false
	}
	if match {
		r.pending.Add(-1)
	}
	return true
}

// unadvanceOwed puts r back at seq, a live message its consumer wants but
// could not deliver.
func (s *Stream) unadvanceOwed(r *owedRange, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.next.Load() == seq+1 {
		r.next.Store(seq)
		if _, gone := s.deleted[seq]; !gone && seq >= s.first {
			r.pending.Add(1)
		}
	}
}

// skipOwed moves r to next without delivering what lies before it: the
// log no longer has it.
func (s *Stream) skipOwed(r *owedRange, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next > r.next.Load() {
		r.next.Store(min(next, r.end))
	}
}
