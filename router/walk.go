package router

import "strings"

// Walk calls fn for every subscription in the router, in no particular
// order, with its pattern in the internal grammar ("a.*.>", "a.#"), its
// queue group ("" outside any) and its handle, until fn returns false.
// It is for monitoring: it holds the router's read lock throughout, so
// Insert and Remove wait for it while Match does not. fn must be quick
// and must not call the router.
func (r *Router[S]) Walk(fn func(pattern, queue string, h S) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var toks []string
	if r.root.walk(&toks, fn) {
		r.wild.walk(&toks, fn)
	}
}

// walk visits n's subscriptions and then its children's; toks is the path
// from the root to n. It reports false once fn has asked to stop.
func (n *node[S]) walk(toks *[]string, fn func(pattern, queue string, h S) bool) bool {
	pattern := ""
	if len(n.subs) > 0 || (n.more != nil && len(n.more.queues) > 0) {
		pattern = strings.Join(*toks, string(Separator))
	}
	for _, h := range n.subs {
		if !fn(pattern, "", h) {
			return false
		}
	}
	kids := n.kids
	if e := n.more; e != nil {
		for _, q := range e.queues {
			for _, h := range q.members {
				if !fn(pattern, q.name, h) {
					return false
				}
			}
		}
		if e.index != nil {
			kids = nil
			for _, c := range e.index.slots {
				if c != nil {
					kids = append(kids, c)
				}
			}
		}
		for _, c := range []*node[S]{e.star, e.hash, e.tail} {
			if c != nil {
				kids = append(kids[:len(kids):len(kids)], c)
			}
		}
	}
	for _, c := range kids {
		*toks = append(*toks, c.token)
		ok := c.walk(toks, fn)
		*toks = (*toks)[:len(*toks)-1]
		if !ok {
			return false
		}
	}
	return true
}
