package router

import (
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Subscription is one entry of the router: a pattern, an optional queue
// group, and the caller's handle. Two subscriptions are the same when their
// patterns (once normalised: "a.#.#" is "a.#", "a.#.>" is "a.>"), queues
// and handles are equal, and, for a pattern that starts with a wildcard,
// their SkipDollar flags; elsewhere SkipDollar has no effect.
type Subscription[S comparable] struct {
	// Pattern is the subject pattern in the grammar of doc.go.
	Pattern string
	// Queue names the queue group; "" subscribes outside any group.
	Queue string
	// SkipDollar stops a leading wildcard of Pattern from matching subjects
	// whose first token starts with '$' (MQTT-4.7.2-1). Gateways set it for
	// MQTT subscriptions; see doc.go for why NATS and AMQP leave it off.
	SkipDollar bool
	// Handle is the caller's value returned by Match: a session, a
	// subscription record, a queue. The router only compares it.
	Handle S
}

// Options configures a Router. The zero value is ready to use.
type Options struct {
	// CacheSize is the number of subjects whose results are cached. Zero
	// means DefaultCacheSize; a negative value disables the cache.
	CacheSize int
}

// DefaultCacheSize is the number of cached subjects when Options.CacheSize
// is zero. A full cache of one-subscriber results costs about 120 KiB: 16
// bytes a slot for the table, about 100 for an entry, and 4 bytes a slot
// for the frequency sketch that decides which subjects are cached (4 KiB;
// see doc.go).
const DefaultCacheSize = 1024

// Router is the subject trie that decides which subscriptions receive a
// message. It is safe for concurrent use: any number of Match calls run in
// parallel with each other and with Insert and Remove. S is the caller's
// subscription handle; a type parameter rather than an interface keeps
// handles unboxed (no allocation, a pointer-sized slot per subscription)
// and compared with a plain ==.
type Router[S comparable] struct {
	mu sync.RWMutex
	// root holds every subscription except those in wild.
	root *node[S]
	// wild holds SkipDollar subscriptions whose pattern starts with a
	// wildcard; Match skips it for subjects whose first token starts with
	// '$', which is all the MQTT-4.7.2-1 rule needs.
	wild  *node[S]
	count atomic.Int64
	cache *cache[S] // nil when disabled
	seed  maphash.Seed
}

// maxKids is how many literal children a node keeps in a slice before it
// moves them into a map. A scan of a few short strings beats hashing, and a
// slice costs 8 bytes a child where a small map costs hundreds.
const maxKids = 8

// node is one token position of the trie.
type node[S comparable] struct {
	token string     // the token that leads here from the parent
	kids  []*node[S] // literal children while there are at most maxKids
	subs  []S        // plain subscriptions whose pattern ends here
	more  *extras[S] // the rarer parts, nil when none
}

// extras holds what most nodes lack, so that the common node (one literal
// token of a telemetry subject) stays small.
type extras[S comparable] struct {
	index  *table[S] // literal children once there are more than maxKids
	star   *node[S]  // '*' child
	hash   *node[S]  // '#' child
	tail   *node[S]  // '>' child
	queues []*queueGroup[S]
}

// queueGroup is the members of one queue group whose pattern ends at a node.
type queueGroup[S comparable] struct {
	name    string
	members []S
	next    atomic.Uint32 // round-robin cursor, see Group.Pick
}

// New returns an empty router configured by opts.
func New[S comparable](opts Options) *Router[S] {
	r := &Router[S]{root: &node[S]{}, wild: &node[S]{}, seed: maphash.MakeSeed()}
	size := opts.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		r.cache = newCache[S](size)
	}
	return r
}

// Count returns the number of subscriptions.
func (r *Router[S]) Count() int { return int(r.count.Load()) }

// CachedSubjects returns the number of subjects whose results are cached.
func (r *Router[S]) CachedSubjects() int {
	if r.cache == nil {
		return 0
	}
	return r.cache.len()
}

// Insert adds sub. It reports false, with a nil error, when the same
// subscription is already present, so inserting twice is harmless. Cached
// results that sub changes are dropped before Insert returns.
func (r *Router[S]) Insert(sub Subscription[S]) (bool, error) {
	var buf [maxPatternStack]string
	toks, literal, err := parsePattern(sub.Pattern, buf[:0])
	if err != nil {
		return false, err
	}
	if err := validQueue(sub.Queue); err != nil {
		return false, fmt.Errorf("subscribe %q: %w", sub.Pattern, err)
	}
	r.mu.Lock()
	n := r.start(sub.SkipDollar, toks)
	for _, t := range toks {
		n = n.childOrNew(t, r.seed)
	}
	if !n.add(sub.Queue, sub.Handle) {
		r.changed(0, nil, false, "")
		return false, nil
	}
	r.changed(1, toks, literal, sub.Pattern)
	return true, nil
}

// changed finishes a write that changed the count of subscriptions by
// delta (0 when nothing changed): it counts the change, releases the write lock,
// and sweeps the cache. The sweep runs after the lock is released, so that
// matches that miss the cache wait for the trie change only (a sweep of a
// full cache takes microseconds); the generation bump under the lock keeps
// results computed before the change out of the cache (see cache).
func (r *Router[S]) changed(delta int64, toks []string, literal bool, pattern string) {
	r.count.Add(delta)
	if delta == 0 || r.cache == nil {
		r.mu.Unlock()
		return
	}
	r.cache.gen.Add(1)
	r.mu.Unlock()
	r.cache.invalidate(toks, literal, pattern)
}

// Remove deletes sub and reports whether it was present; removing an absent
// subscription, or one with an invalid pattern, is a no-op. Branches left
// without subscriptions are freed. Cached results that sub changes are
// dropped before Remove returns.
func (r *Router[S]) Remove(sub Subscription[S]) bool {
	var buf [maxPatternStack]string
	toks, literal, err := parsePattern(sub.Pattern, buf[:0])
	if err != nil {
		return false
	}
	r.mu.Lock()
	if !r.remove(sub, toks) {
		r.changed(0, nil, false, "")
		return false
	}
	r.changed(-1, toks, literal, sub.Pattern)
	return true
}

// remove is Remove under the write lock.
func (r *Router[S]) remove(sub Subscription[S], toks []string) bool {
	var pathBuf [maxPatternStack + 1]*node[S]
	n := r.start(sub.SkipDollar, toks)
	path := append(pathBuf[:0], n)
	for _, t := range toks {
		if n = n.child(t, r.seed); n == nil {
			return false
		}
		path = append(path, n)
	}
	if !n.remove(sub.Queue, sub.Handle) {
		return false
	}
	// Free the branch bottom up; the two roots stay.
	for i := len(path) - 1; i > 0 && path[i].empty(); i-- {
		path[i-1].drop(path[i], r.seed)
	}
	return true
}

// start returns the root a pattern lives under.
func (r *Router[S]) start(skipDollar bool, toks []string) *node[S] {
	if skipDollar && len(toks) > 0 && isWildcard(toks[0]) {
		return r.wild
	}
	return r.root
}

// child returns the child of n for token t, or nil.
func (n *node[S]) child(t string, seed maphash.Seed) *node[S] {
	switch t {
	case AnyToken:
		if n.more != nil {
			return n.more.star
		}
		return nil
	case AnyTokens:
		if n.more != nil {
			return n.more.hash
		}
		return nil
	case Tail:
		if n.more != nil {
			return n.more.tail
		}
		return nil
	}
	th := tokenHash{seed: seed}
	return n.literal(t, &th)
}

// literal returns the literal child of n for token t, or nil. h is the
// token's hash, computed by the caller only if some node needs it. It is
// the matcher's inner loop.
func (n *node[S]) literal(t string, h *tokenHash) *node[S] {
	for _, k := range n.kids {
		if k.token == t {
			return k
		}
	}
	if n.more != nil && n.more.index != nil {
		return n.more.index.find(t, h.sum(t))
	}
	return nil
}

// tokenHash computes a token's hash once, when first asked, for all the
// nodes a match step visits.
type tokenHash struct {
	seed maphash.Seed
	h    uint64
	ok   bool
}

func (th *tokenHash) sum(t string) uint64 {
	if !th.ok {
		th.h, th.ok = maphash.String(th.seed, t), true
	}
	return th.h
}

// childOrNew returns the child of n for token t, creating it if needed.
func (n *node[S]) childOrNew(t string, seed maphash.Seed) *node[S] {
	if c := n.child(t, seed); c != nil {
		return c
	}
	// Copy the token so the trie never pins the caller's pattern string,
	// which may be a slice of a large network buffer.
	c := &node[S]{token: strings.Clone(t)}
	switch t {
	case AnyToken:
		n.extras().star = c
	case AnyTokens:
		n.extras().hash = c
	case Tail:
		n.extras().tail = c
	default:
		if n.more != nil && n.more.index != nil {
			n.more.index.add(c, seed)
		} else if len(n.kids) < maxKids {
			n.kids = append(n.kids, c)
		} else {
			t := newTable[S](len(n.kids) + 1)
			for _, k := range n.kids {
				t.add(k, seed)
			}
			t.add(c, seed)
			n.kids = nil
			n.extras().index = t
		}
	}
	return c
}

// drop unlinks the empty child c from n.
func (n *node[S]) drop(c *node[S], seed maphash.Seed) {
	switch {
	case n.more != nil && n.more.star == c:
		n.more.star = nil
	case n.more != nil && n.more.hash == c:
		n.more.hash = nil
	case n.more != nil && n.more.tail == c:
		n.more.tail = nil
	case n.more != nil && n.more.index != nil:
		t := n.more.index
		t.remove(c, seed)
		if t.n <= maxKids/2 {
			kids := make([]*node[S], 0, t.n)
			for _, k := range t.slots {
				if k != nil {
					kids = append(kids, k)
				}
			}
			n.kids, n.more.index = kids, nil
		}
	default:
		for i, k := range n.kids {
			if k == c {
				last := len(n.kids) - 1
				n.kids[i] = n.kids[last]
				n.kids[last] = nil
				n.kids = n.kids[:last]
				break
			}
		}
		if len(n.kids) == 0 {
			n.kids = nil
		} else if 2*len(n.kids) <= cap(n.kids) {
			n.kids = append([]*node[S](nil), n.kids...)
		}
	}
	if n.more != nil && n.more.empty() {
		n.more = nil
	}
}

// extras returns n.more, allocating it if needed.
func (n *node[S]) extras() *extras[S] {
	if n.more == nil {
		n.more = &extras[S]{}
	}
	return n.more
}

// empty reports whether n holds nothing and can be freed.
func (n *node[S]) empty() bool {
	return len(n.subs) == 0 && len(n.kids) == 0 && (n.more == nil || n.more.empty())
}

func (e *extras[S]) empty() bool {
	return e.index == nil && e.star == nil && e.hash == nil && e.tail == nil && len(e.queues) == 0
}

// add records a subscription ending at n and reports whether it was new.
func (n *node[S]) add(queue string, h S) bool {
	if queue == "" {
		for _, s := range n.subs {
			if s == h {
				return false
			}
		}
		n.subs = append(n.subs, h)
		return true
	}
	e := n.extras()
	for _, q := range e.queues {
		if q.name == queue {
			for _, s := range q.members {
				if s == h {
					return false
				}
			}
			q.members = append(q.members, h)
			return true
		}
	}
	e.queues = append(e.queues, &queueGroup[S]{name: strings.Clone(queue), members: []S{h}})
	return true
}

// remove deletes a subscription ending at n and reports whether it was
// there.
func (n *node[S]) remove(queue string, h S) bool {
	if queue == "" {
		var ok bool
		n.subs, ok = without(n.subs, h)
		return ok
	}
	if n.more == nil {
		return false
	}
	e := n.more
	for i, q := range e.queues {
		if q.name != queue {
			continue
		}
		var ok bool
		if q.members, ok = without(q.members, h); ok && len(q.members) == 0 {
			last := len(e.queues) - 1
			e.queues[i] = e.queues[last]
			e.queues[last] = nil
			e.queues = e.queues[:last]
			if last == 0 {
				e.queues = nil
			}
			if e.empty() {
				n.more = nil
			}
		}
		return ok
	}
	return false
}

// without removes h from list, keeping the order (round robin and tests
// read better that way), and gives memory back once the list is mostly
// empty. Matches never see list mutate mid-read: they copy it under the
// read lock.
func without[S comparable](list []S, h S) ([]S, bool) {
	for i, s := range list {
		if s != h {
			continue
		}
		var zero S
		copy(list[i:], list[i+1:])
		list[len(list)-1] = zero
		list = list[:len(list)-1]
		// Give memory back: at half for short lists, where a copy is
		// cheap, at a quarter for long ones, so that a list at the edge
		// of a size class does not copy itself on every change.
		switch {
		case len(list) == 0:
			return nil, true
		case 2*len(list) <= cap(list) && cap(list) <= 8, 4*len(list) <= cap(list):
			return append([]S(nil), list...), true
		}
		return list, true
	}
	return list, false
}

// Match fills res with the subscriptions whose patterns match subject, after
// resetting it. res is owned by the caller: its slices are reused by the
// next Match into the same res and are valid until then; the router keeps
// no reference to them. Each handle appears at most once in res.Subs and at
// most once per group in res.Groups, however many of its patterns match:
// the AMQP rule that a message matching two bindings of one queue reaches
// that queue once. Match allocates nothing once res has grown to the size
// of the results it holds, except when the cache takes in a subject that
// missed it, which the cache's admission rule makes rare (see doc.go).
//
// subject is expected to have passed ValidateSubject where it entered the
// broker; Match itself returns ErrInvalidSubject (unwrapped, so as not to
// allocate) only for empty and wildcard tokens, which would otherwise change
// what matches, and for more than MaxTokens tokens.
func (r *Router[S]) Match(subject string, res *Result[S]) error {
	res.reset()
	c := r.cache
	var h uint64
	if c != nil {
		h = c.hash(subject)
		if e := c.get(subject, h); e != nil {
			c.hit(h)
			res.copyEntry(e)
			return nil
		}
	}
	r.mu.RLock()
	var gen uint64
	if c != nil {
		gen = c.gen.Load()
	}
	err := r.match(subject, res)
	r.mu.RUnlock()
	if err != nil {
		res.reset()
		return err
	}
	if c != nil {
		c.put(subject, h, res, gen)
	}
	return nil
}

// MatchBytes is Match for a subject held in a byte slice, such as a slice
// of a connection's read buffer, without converting it to a string (which
// would allocate). subject is not retained: the cache keeps a copy, and
// the caller may reuse the bytes as soon as MatchBytes returns.
func (r *Router[S]) MatchBytes(subject []byte, res *Result[S]) error {
	return r.Match(unsafe.String(unsafe.SliceData(subject), len(subject)), res)
}

// match walks the trie as a set of active nodes, one step per subject
// token, like a regular-expression automaton: a '#' node stays active
// while tokens pass (it absorbs them), and a node's '#' child is active as
// soon as the node is (it absorbs none). Each node is in a step's set at
// most once, so '#' never makes the walk exponential. Terminal nodes go to
// res.hits and are collected at the end. r.mu must be read-locked.
func (r *Router[S]) match(subject string, res *Result[S]) error {
	cur := append(res.cur[:0], r.root)
	if !r.wild.empty() && (subject == "" || subject[0] != '$') {
		cur = append(cur, r.wild)
	}
	cur = closeOver(cur, 0)
	hits := res.hits[:0]
	next := res.next[:0]
	for i, rest := 0, subject; rest != ""; i++ {
		tok, tail, more := strings.Cut(rest, ".")
		if tok == "" || isWildcard(tok) || (more && tail == "") || i >= MaxTokens {
			res.cur, res.next, res.hits = cur[:0], next[:0], hits[:0]
			return ErrInvalidSubject
		}
		rest = tail
		next = next[:0]
		th := tokenHash{seed: r.seed}
		// Active '#' nodes absorb this token and stay; they go first so
		// closeOver can tell them apart.
		for _, n := range cur {
			if n.token == AnyTokens {
				next = append(next, n)
			}
		}
		stay := len(next)
		for _, n := range cur {
			if c := n.literal(tok, &th); c != nil {
				next = append(next, c)
			}
			if e := n.more; e != nil {
				if e.star != nil {
					next = append(next, e.star)
				}
				if e.tail != nil {
					hits = append(hits, e.tail)
				}
			}
		}
		next = closeOver(next, stay)
		cur, next = next, cur
	}
	hits = append(hits, cur...)
	for _, n := range hits {
		res.collect(n)
	}
	res.cur, res.next, res.hits = cur[:0], next[:0], hits[:0]
	return nil
}

// closeOver adds the '#' child of every node in set, since '#' may match
// zero tokens. The first stay entries are '#' nodes already in the set; a
// '#' child can only be a duplicate of one of those (a node has one parent,
// and after normalisation a '#' node has no '#' child).
func closeOver[S comparable](set []*node[S], stay int) []*node[S] {
	for i, l := 0, len(set); i < l; i++ {
		e := set[i].more
		if e == nil || e.hash == nil {
			continue
		}
		dup := false
		for _, s := range set[:stay] {
			if s == e.hash {
				dup = true
				break
			}
		}
		if !dup {
			set = append(set, e.hash)
		}
	}
	return set
}

// table is an open-addressing hash set of child nodes keyed by their
// tokens, with linear probing. It replaces a map[string]*node: a slot is
// one pointer and one tag byte (a map entry holds the key again, 24 bytes
// more), and it shrinks when children go, where a Go map keeps its peak
// size, so a branch that churns returns its memory. The tag, eight bits of
// the token's hash, lets a probe pass over other children without loading
// them: in a large trie each such load is a cache miss.
type table[S comparable] struct {
	slots []*node[S] // a power of two long, at most 3/4 full
	tags  []uint8    // tag of each slot's token, 0 for an empty slot
	n     int
}

// tag returns the tag of a hash, never 0.
func tag(h uint64) uint8 { return uint8(h>>56) | 1 }

// tableSize returns the table length that holds n children, the same
// whether the table grew to n or shrank to it.
func tableSize(n int) int {
	size := 16
	for 4*n > 3*size {
		size *= 2
	}
	return size
}

func newTable[S comparable](n int) *table[S] {
	size := tableSize(n)
	return &table[S]{slots: make([]*node[S], size), tags: make([]uint8, size)}
}

// find returns the child for tok, whose hash is h, or nil.
func (t *table[S]) find(tok string, h uint64) *node[S] {
	mask := uint64(len(t.slots) - 1)
	tg := tag(h)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.tags[i] {
		case 0:
			return nil
		case tg:
			if k := t.slots[i]; k.token == tok {
				return k
			}
		}
	}
}

// add inserts c, which is not in t.
func (t *table[S]) add(c *node[S], seed maphash.Seed) {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.resize(tableSize(t.n+1), seed)
	}
	t.place(c, seed)
	t.n++
}

func (t *table[S]) place(c *node[S], seed maphash.Seed) {
	mask := uint64(len(t.slots) - 1)
	h := maphash.String(seed, c.token)
	i := h & mask
	for t.slots[i] != nil {
		i = (i + 1) & mask
	}
	t.slots[i], t.tags[i] = c, tag(h)
}

// remove deletes c, shifting later entries of its probe run back so that
// no tombstones are needed, and shrinks the table once it is mostly empty.
func (t *table[S]) remove(c *node[S], seed maphash.Seed) {
	mask := uint64(len(t.slots) - 1)
	i := maphash.String(seed, c.token) & mask
	for t.slots[i] != c {
		if t.slots[i] == nil {
			return
		}
		i = (i + 1) & mask
	}
	t.slots[i], t.tags[i] = nil, 0
	t.n--
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		k := t.slots[j]
		home := maphash.String(seed, k.token) & mask
		// k may move into the hole at i unless its home lies cyclically
		// in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i], t.tags[i] = k, t.tags[j]
			t.slots[j], t.tags[j] = nil, 0
			i = j
		}
	}
	// Shrink once a fresh table for n would be smaller than this one.
	if size := tableSize(t.n); size < len(t.slots) {
		t.resize(size, seed)
	}
}

func (t *table[S]) resize(size int, seed maphash.Seed) {
	old := t.slots
	t.slots, t.tags = make([]*node[S], size), make([]uint8, size)
	for _, k := range old {
		if k != nil {
			t.place(k, seed)
		}
	}
}
