package net

import "time"

// Timer is a connection timer made by Conn.AfterFunc, for keepalives and
// deadlines. Its function runs serialized with the connection's other
// callbacks (on the connection's loop with epoll) and never after the
// connection has closed. On the epoll transport timers live in one min-heap
// per loop whose earliest deadline bounds the loop's wait: no goroutine or
// runtime timer per connection. The portable transport uses a runtime timer
// per scheduled Timer.
type Timer struct {
	c        *Conn
	fn       func(c *Conn)
	internal bool // the transport's own close timer; runs while closing

	// The connection's scheduled timers form a list, so that closing the
	// connection unschedules them: otherwise a long keepalive would keep a
	// closed connection and its session reachable until it fired. Guarded
	// like the schedule (loop timer lock or connection mutex).
	prev, next *Timer

	// epoll: deadline on the loop's clock and position in its heap (-1 when
	// not scheduled). Guarded by the loop's timer lock.
	when  int64
	index int

	// portable: the runtime timer and the deadline it serves, guarded by the
	// connection's mutex.
	rt       *time.Timer
	deadline time.Time
	active   bool
}

// AfterFunc arranges for fn to run after d, serialized with the
// connection's callbacks, unless the timer is stopped or the connection
// closes first. It is safe from any goroutine.
func (c *Conn) AfterFunc(d time.Duration, fn func(c *Conn)) *Timer {
	t := &Timer{c: c, fn: fn, index: -1}
	c.drv.armTimer(t, d)
	return t
}

// Stop cancels the timer. It reports whether the timer was scheduled, that
// is whether Stop prevented fn from running.
func (t *Timer) Stop() bool { return t.c.drv.stopTimer(t) }

// Reset schedules the timer to fire after d from now, whether or not it has
// fired or been stopped, and reports whether it was scheduled. A keepalive
// resets its timer on every frame.
func (t *Timer) Reset(d time.Duration) bool { return t.c.drv.armTimer(t, d) }

// linkTimer adds t to the connection's scheduled timers.
func (c *Conn) linkTimer(t *Timer) {
	t.prev, t.next = nil, c.timers
	if c.timers != nil {
		c.timers.prev = t
	}
	c.timers = t
}

// unlinkTimer removes t from the connection's scheduled timers.
func (c *Conn) unlinkTimer(t *Timer) {
	if t.prev != nil {
		t.prev.next = t.next
	} else if c.timers == t {
		c.timers = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
}

// timerHeap is a min-heap of timers by deadline. It is hand-written rather
// than container/heap so that pushes and pops do not box values.
type timerHeap []*Timer

func (h timerHeap) less(i, j int) bool { return h[i].when < h[j].when }

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// push adds t, which must not be in the heap.
func (h *timerHeap) push(t *Timer) {
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

// remove takes t out of the heap.
func (h *timerHeap) remove(t *Timer) {
	i := t.index
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	t.index = -1
}

// fix restores order after t.when changed.
func (h timerHeap) fix(t *Timer) {
	h.down(t.index)
	h.up(t.index)
}
