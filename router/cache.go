package router

import (
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"sync/atomic"
)

// cache remembers the results of recent matches, keyed by subject, so that
// a hot subject costs one hash and one load instead of a trie walk under
// the read lock.
//
// It is a four-way set-associative table of atomic pointers to immutable
// entries (four ways, because with two a few hot subjects that share a set
// were measured to evict each other for good): a lookup takes no lock and
// never waits for a writer, and the size is fixed when the router is made.
// An entry is never changed once published; readers copy it out.
//
// Admission rule: a missed subject is stored only if its set has a free
// way, or if the sketch (see sketch) says it has been matched clearly more
// often (by more than admitMargin) than the least often matched subject
// of the set, which it then evicts; otherwise the resident stays. Every
// hit counts in the sketch, and one miss in missSample. Filling on every
// miss, as the cache first did, costs two or
// three allocations and an eviction per match once the subjects in use
// outnumber the slots (an edge gateway's thousands of devices, each on
// its own subject), and then nearly every match misses anyway: it was
// measured at twice the cost of no cache at all. With the rule, such a
// working set settles into a resident part that hits and a rest that
// walks the trie without allocating, while subjects matched more often
// than their neighbours, the hot few of a skewed load, still win a place.
// The decision is taken before the entry is built, so a refused subject
// costs a few loads and no allocation.
//
// Invalidation rule: inserting or removing a subscription with pattern P
// drops exactly the cached subjects that P matches (for a literal P, the
// one entry for the subject P), because only their results can change.
// The drop happens before Insert or Remove returns, just after the
// router's write lock is released. The sketch is left alone: a dropped
// subject keeps its count, and its free way takes it back at its next
// match.
//
// A fill races with writers: a reader may compute a result, a writer
// change the trie and sweep the cache, and the reader only then store its
// now-stale result. gen closes that gap: writers bump it (under the write
// lock) before they sweep, readers note it (under the read lock) before
// they walk, and a reader that sees it moved after storing takes its entry
// back out. Either the sweep sees the entry or the reader sees the bump.
type cache[S comparable] struct {
	seed   maphash.Seed
	slots  []slot[S]
	sets   uint64 // number of sets of ways slots, a power of two
	gen    atomic.Uint64
	used   atomic.Int64 // occupied slots
	sketch *sketch
}

// slot is one way of a set: an entry and the hash of its subject, 16
// bytes, so that a set is one 64-byte cache line. A lookup compares the
// hashes and loads an entry only when one is equal, and the admission rule
// finds the residents' counts without loading their entries: a miss
// touches no entry at all. The hash is a hint, written after the entry; the
// subject in the entry decides.
type slot[S comparable] struct {
	hash  atomic.Uint64
	entry atomic.Pointer[entry[S]]
}

// entry is one cached result. It is immutable once stored.
type entry[S comparable] struct {
	subject string
	subs    []S
	groups  []Group[S]
}

// admitMargin is by how much a subject's estimate (see sketch) must exceed
// that of the subject it would evict. Subjects matched equally often get
// estimates a few counts apart: from counters they share with other
// subjects, and from when each was last counted relative to the last
// aging (the one being admitted has just been counted; a resident may
// have been halved since its last match). With 10,000 subjects matched
// round robin on the default cache, a margin of 0 replaced a slot on 9%
// of matches, 2 on 0.01%, and 5 on none in 300,000 matches, or in
// 3,000,000 over 100,000 subjects; the hit rate on a Zipf load (s = 1.1)
// was 81.6%, 83% and 82.2% (81.3% once misses were sampled, see
// missSample). Hot subjects clear it easily: their counters
// reach 15 while the long tail's stay at 0 to 3.
const admitMargin = 5

// missSample is how many misses there are, on average, for each one that
// counts in the sketch; a power of two. A miss walks the trie and a hit
// does not, so the compare-and-swap of an increment costs a miss
// relatively little, but it was most of what the cache added to a miss:
// with every miss counted, 10,000 subjects round robin on the default
// cache (10% hits) ran 11-14% slower than no cache; counting one miss in
// four, picked at random, brings that to 6%, the cost of the hash and
// the set lookup that the 10% of hits do not quite pay back. A hot subject,
// which the sampling slows down, still gets in within a few dozen misses;
// hits all count, and once a hot subject's counters are full, counting
// it is one load and writes nothing.
const missSample = 4

// ways is the number of slots a subject may occupy.
const ways = 4

func newCache[S comparable](size int) *cache[S] {
	sets := uint64(1)
	for ways*sets < uint64(size) {
		sets *= 2
	}
	return &cache[S]{
		seed:   maphash.MakeSeed(),
		slots:  make([]slot[S], ways*sets),
		sets:   sets,
		sketch: newSketch(int(ways * sets)),
	}
}

// hash returns the hash of subject that get, touch and put take.
func (c *cache[S]) hash(subject string) uint64 {
	return maphash.String(c.seed, subject)
}

// set returns the index of the first slot of the set of the subject with
// hash h.
func (c *cache[S]) set(h uint64) uint64 {
	return ways * (h & (c.sets - 1))
}

// hit counts a match of the subject with hash h that hit the cache.
func (c *cache[S]) hit(h uint64) { c.sketch.increment(h) }

// get returns the cached result for subject, whose hash is h, or nil.
func (c *cache[S]) get(subject string, h uint64) *entry[S] {
	i := c.set(h)
	for j := i; j < i+ways; j++ {
		if c.slots[j].hash.Load() != h {
			continue
		}
		if e := c.slots[j].entry.Load(); e != nil && e.subject == subject {
			return e
		}
	}
	return nil
}

// put counts a match of subject, whose hash is h, that missed the cache,
// and offers res, computed while the generation was gen, as its result:
// it stores a copy of res if the admission rule lets it in.
func (c *cache[S]) put(subject string, h uint64, res *Result[S], gen uint64) {
	full := c.used.Load() == int64(len(c.slots))
	// Only a counted miss may evict (see missSample); the others
	// may take a free way.
	var f uint64
	if counted := rand.Uint32()&(missSample-1) == 0; counted {
		f = c.sketch.increment(h)
	}
	if full && f <= admitMargin {
		// No free way anywhere, and too rare to evict anyone: the
		// common miss of a working set larger than the cache ends here.
		return
	}
	set := c.set(h)
	i := set + ways // the way to take, none yet
	var victim *entry[S]
	least := uint64(0)
	for j := set; j < set+ways; j++ {
		old := c.slots[j].entry.Load()
		if old == nil {
			if i == set+ways || victim != nil {
				i, victim = j, nil
			}
			continue
		}
		if old.subject == subject {
			return // a concurrent match stored it; it is as fresh as ours
		}
		if i < set+ways && victim == nil {
			continue // a free way is better than any victim
		}
		if fv := c.sketch.estimate(c.slots[j].hash.Load()); victim == nil || fv < least {
			i, victim, least = j, old, fv
		}
	}
	if victim != nil && f <= least+admitMargin {
		return // not clearly matched more often than the resident
	}
	e := &entry[S]{subject: strings.Clone(subject)}
	if len(res.Subs) > 0 {
		e.subs = append([]S(nil), res.Subs...)
	}
	if len(res.Groups) > 0 {
		e.groups = make([]Group[S], len(res.Groups))
		for i, g := range res.Groups {
			e.groups[i] = Group[S]{Name: g.Name, Members: append([]S(nil), g.Members...), cursor: g.cursor}
		}
	}
	// The way may have changed since it was chosen; then leave it to
	// whoever changed it, rather than judge again.
	if !c.slots[i].entry.CompareAndSwap(victim, e) {
		return
	}
	c.slots[i].hash.Store(h)
	if victim == nil {
		c.used.Add(1)
	}
	if c.gen.Load() != gen {
		c.drop(i, e)
	}
}

// drop empties slot i if it still holds e.
func (c *cache[S]) drop(i uint64, e *entry[S]) {
	if c.slots[i].entry.CompareAndSwap(e, nil) {
		c.used.Add(-1)
	}
}

// invalidate drops the cached subjects whose results a change to the
// pattern toks (the normalised tokens of pattern) can alter. The caller
// has bumped gen under the router's write lock, and has released it.
func (c *cache[S]) invalidate(toks []string, literal bool, pattern string) {
	if c.used.Load() == 0 {
		return
	}
	if literal {
		i := c.set(c.hash(pattern))
		for j := i; j < i+ways; j++ {
			if e := c.slots[j].entry.Load(); e != nil && e.subject == pattern {
				c.drop(j, e)
			}
		}
		return
	}
	// Subjects that differ in the literal tokens before the first
	// wildcard are passed over with one comparison; that halves the cost
	// of a sweep for the common "site.42.*.temp" kind of pattern.
	// Normalising only touches wildcards, so the literal prefix of toks
	// is a prefix of pattern.
	n := -1
	for _, t := range toks {
		if isWildcard(t) {
			break
		}
		n += len(t) + 1
	}
	prefix := pattern[:max(n, 0)]
	for j := range c.slots {
		e := c.slots[j].entry.Load()
		if e == nil || !hasTokenPrefix(e.subject, prefix) {
			continue
		}
		if matchPattern(toks, e.subject) {
			c.drop(uint64(j), e)
		}
	}
}

// hasTokenPrefix reports whether the first tokens of subject are the
// tokens of prefix.
func hasTokenPrefix(subject, prefix string) bool {
	return strings.HasPrefix(subject, prefix) && (len(subject) == len(prefix) || prefix == "" || subject[len(prefix)] == '.')
}

// len returns the number of cached subjects.
func (c *cache[S]) len() int { return int(c.used.Load()) }

// matchPattern reports whether the normalised pattern tokens match subject,
// ignoring SkipDollar. It is the cache's invalidation test: a plain
// wildcard match in the manner of glob matching, where '#' is the only
// token that can absorb a variable number of tokens, so remembering the
// last '#' is enough to backtrack. subject must be valid.
func matchPattern(pat []string, subject string) bool {
	p, s := 0, subject
	backP, backS := -1, ""
	for s != "" {
		tok, rest, _ := strings.Cut(s, ".")
		if p < len(pat) {
			switch pat[p] {
			case AnyTokens:
				backP, backS = p+1, s
				p++
				continue
			case Tail:
				return true
			case AnyToken:
				p, s = p+1, rest
				continue
			default:
				if pat[p] == tok {
					p, s = p+1, rest
					continue
				}
			}
		}
		if backP < 0 {
			return false
		}
		// Let the last '#' absorb one more token and retry from there.
		_, backS, _ = strings.Cut(backS, ".")
		p, s = backP, backS
	}
	for p < len(pat) && pat[p] == AnyTokens {
		p++
	}
	return p == len(pat)
}
