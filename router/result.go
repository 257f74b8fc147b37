package router

import "sync/atomic"

// Result is what Match fills in: the plain subscriptions and the queue
// groups whose patterns match a subject. The caller owns a Result and
// reuses it from one Match to the next, which is what makes a match free of
// allocation; a Result must not be used by two goroutines at once. The zero
// value is ready to use. Between matches a Result may still refer to
// handles of earlier results, in the spare capacity of its slices; drop it
// to let them go.
type Result[S comparable] struct {
	// Subs are the handles of the plain (non-queue) subscriptions, each
	// once, in no particular order; each receives the message.
	Subs []S
	// Groups are the matched queue groups, each once by name, with its
	// matching members; each group delivers the message to one member
	// (see Group.Pick).
	Groups []Group[S]

	// Scratch space of the trie walk, kept to be reused.
	cur, next, hits []*node[S]
	// seen indexes Subs once it is too long to scan for duplicates;
	// seenOn says whether it is current for this match.
	seen   map[S]struct{}
	seenOn bool
}

// Group is one queue group of a Result.
type Group[S comparable] struct {
	// Name is the queue group name.
	Name string
	// Members are the handles of the group's matching subscriptions, each
	// once.
	Members []S
	// cursor is the round-robin position, shared by every match of this
	// group at its trie node (and with cached copies of it).
	cursor *atomic.Uint32
}

// dedupScan is the length of Subs up to which a duplicate is found by
// scanning rather than through the seen map.
const dedupScan = 32

// Len returns the number of deliveries the result asks for: one per plain
// subscription and one per queue group.
func (res *Result[S]) Len() int { return len(res.Subs) + len(res.Groups) }

// reset empties res, keeping its memory.
func (res *Result[S]) reset() {
	res.Subs = res.Subs[:0]
	res.Groups = res.Groups[:0]
	res.seenOn = false
}

// collect adds the subscriptions ending at n.
func (res *Result[S]) collect(n *node[S]) {
	if len(n.subs) > 0 {
		if len(res.Subs) == 0 {
			// A node's own list has no duplicates.
			res.Subs = append(res.Subs, n.subs...)
		} else {
			for _, s := range n.subs {
				res.addSub(s)
			}
		}
	}
	if n.more != nil {
		for _, q := range n.more.queues {
			res.addGroup(q.name, q.members, &q.next)
		}
	}
}

// addSub appends s unless it is already in res.Subs.
func (res *Result[S]) addSub(s S) {
	if len(res.Subs) < dedupScan {
		for _, x := range res.Subs {
			if x == s {
				return
			}
		}
		res.Subs = append(res.Subs, s)
		return
	}
	if !res.seenOn {
		if res.seen == nil {
			res.seen = make(map[S]struct{}, 2*len(res.Subs))
		} else {
			clear(res.seen)
		}
		for _, x := range res.Subs {
			res.seen[x] = struct{}{}
		}
		res.seenOn = true
	}
	if _, dup := res.seen[s]; dup {
		return
	}
	res.seen[s] = struct{}{}
	res.Subs = append(res.Subs, s)
}

// addGroup merges a queue group's members into res.
func (res *Result[S]) addGroup(name string, members []S, cursor *atomic.Uint32) {
	for i := range res.Groups {
		g := &res.Groups[i]
		if g.Name != name {
			continue
		}
		// The same group matched through another pattern: merge. Groups
		// are small and this is rare, so a scan is enough.
	next:
		for _, m := range members {
			for _, x := range g.Members {
				if x == m {
					continue next
				}
			}
			g.Members = append(g.Members, m)
		}
		return
	}
	g := res.newGroup()
	g.Name = name
	g.Members = append(g.Members[:0], members...)
	g.cursor = cursor
}

// newGroup extends res.Groups by one, reusing the slot's member slice from
// an earlier match when there is one.
func (res *Result[S]) newGroup() *Group[S] {
	if n := len(res.Groups); n < cap(res.Groups) {
		res.Groups = res.Groups[:n+1]
	} else {
		res.Groups = append(res.Groups, Group[S]{})
	}
	return &res.Groups[len(res.Groups)-1]
}

// copyEntry fills res from a cached result.
func (res *Result[S]) copyEntry(e *entry[S]) {
	res.Subs = append(res.Subs, e.subs...)
	for i := range e.groups {
		src := &e.groups[i]
		g := res.newGroup()
		g.Name = src.Name
		g.Members = append(g.Members[:0], src.Members...)
		g.cursor = src.cursor
	}
}
