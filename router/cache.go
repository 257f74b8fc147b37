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
// were measured to evict each other for good): a lookup takes no lock and never waits for a writer, a fill
// replaces the entry in its set, and the size is fixed when the router is
// made. An entry is never changed once published; readers copy it out.
//
// Invalidation rule: inserting or removing a subscription with pattern P
// drops exactly the cached subjects that P matches (for a literal P, the
// one entry for the subject P), because only their results can change.
// The drop happens before Insert or Remove returns, just after the
// router's write lock is released.
//
// A fill races with writers: a reader may compute a result, a writer
// change the trie and sweep the cache, and the reader only then store its
// now-stale result. gen closes that gap: writers bump it (under the write
// lock) before they sweep, readers note it (under the read lock) before
// they walk, and a reader that sees it moved after storing takes its entry
// back out. Either the sweep sees the entry or the reader sees the bump.
type cache[S comparable] struct {
	seed  maphash.Seed
	slots []atomic.Pointer[entry[S]]
	sets  uint64 // number of sets of ways slots, a power of two
	gen   atomic.Uint64
	used  atomic.Int64 // occupied slots
}

// entry is one cached result. It is immutable once stored.
type entry[S comparable] struct {
	subject string
	subs    []S
	groups  []Group[S]
}

// ways is the number of slots a subject may occupy.
const ways = 4

func newCache[S comparable](size int) *cache[S] {
	sets := uint64(1)
	for ways*sets < uint64(size) {
		sets *= 2
	}
	return &cache[S]{
		seed:  maphash.MakeSeed(),
		slots: make([]atomic.Pointer[entry[S]], ways*sets),
		sets:  sets,
	}
}

// set returns the index of the first slot of subject's set.
func (c *cache[S]) set(subject string) uint64 {
	return ways * (maphash.String(c.seed, subject) & (c.sets - 1))
}

// get returns the cached result for subject, or nil.
func (c *cache[S]) get(subject string) *entry[S] {
	i := c.set(subject)
	for j := i; j < i+ways; j++ {
		if e := c.slots[j].Load(); e != nil && e.subject == subject {
			return e
		}
	}
	return nil
}

// put stores a copy of res as the result for subject, computed while the
// generation was gen.
func (c *cache[S]) put(subject string, res *Result[S], gen uint64) {
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
	// Take the slot that already holds this subject, else an empty one,
	// else evict a way at random.
	set := c.set(subject)
	i, empty := set+uint64(rand.Uint32()%ways), false
	for j := set; j < set+ways; j++ {
		old := c.slots[j].Load()
		if old != nil && old.subject == subject {
			i = j
			break
		}
		if old == nil && !empty {
			i, empty = j, true
		}
	}
	if old := c.slots[i].Swap(e); old == nil {
		c.used.Add(1)
	}
	if c.gen.Load() != gen {
		c.drop(i, e)
	}
}

// drop empties slot i if it still holds e.
func (c *cache[S]) drop(i uint64, e *entry[S]) {
	if c.slots[i].CompareAndSwap(e, nil) {
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
		i := c.set(pattern)
		for j := i; j < i+ways; j++ {
			if e := c.slots[j].Load(); e != nil && e.subject == pattern {
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
		e := c.slots[j].Load()
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
