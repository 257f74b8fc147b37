package router

// Pick chooses the member of g that receives a message: the members take
// turns (round robin, the turn shared by every match of the group), and a
// member for which full reports true is passed over, so that prefetch (fair
// dispatch) can be built on it. full may be nil when no member is ever
// full. Pick reports false when g has no member that is not full. Pick is
// safe to call from many goroutines on copies of the same group; it does
// not allocate.
func (g *Group[S]) Pick(full func(S) bool) (S, bool) {
	var zero S
	n := uint32(len(g.Members))
	if n == 0 {
		return zero, false
	}
	var start uint32
	if g.cursor != nil {
		start = (g.cursor.Add(1) - 1) % n
	}
	for i := uint32(0); i < n; i++ {
		m := g.Members[(start+i)%n]
		if full == nil || !full(m) {
			if i > 0 && g.cursor != nil {
				// Move the turn past the members passed over, or the
				// member after a full one would be picked twice running.
				g.cursor.Add(i)
			}
			return m, true
		}
	}
	return zero, false
}
