package monitor

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxParam bounds a query parameter's value: names and filters are short,
// and a long value is a mistake or an attack.
const maxParam = 1024

// query reads a request's parameters, remembering the first problem so that
// a handler reads every parameter and then fails once with a reason.
type query struct {
	v    url.Values
	used map[string]bool
	err  error
}

// parseQuery parses a raw query string. A malformed one is an error.
func parseQuery(raw string) *query {
	q := &query{used: map[string]bool{}}
	v, err := url.ParseQuery(raw)
	if err != nil {
		q.err = fmt.Errorf("malformed query: %v", err)
		v = url.Values{}
	}
	q.v = v
	return q
}

func (q *query) fail(format string, args ...any) {
	if q.err == nil {
		q.err = fmt.Errorf(format, args...)
	}
}

// get returns the parameter's value, "" when absent; a repeated or
// overlong parameter, or one that is not UTF-8, is a problem.
func (q *query) get(name string) string {
	q.used[name] = true
	vs := q.v[name]
	switch {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		q.fail("parameter %q given %d times", name, len(vs))
		return ""
	case len(vs[0]) > maxParam:
		q.fail("parameter %q longer than %d bytes", name, maxParam)
		return ""
	case !utf8.ValidString(vs[0]):
		q.fail("parameter %q is not UTF-8", name)
		return ""
	}
	return vs[0]
}

// str is a free-form string parameter.
func (q *query) str(name string) string { return q.get(name) }

// integer is a parameter within [lo, hi], def when absent.
func (q *query) integer(name string, def, lo, hi int64) int64 {
	s := q.get(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		q.fail("parameter %q: want an integer from %d to %d, got %q", name, lo, hi, s)
		return def
	}
	return n
}

// boolean accepts what nats-server's monitoring accepts: 1, true, t, 0,
// false, f (any case); a bare "name" or "name=" is true.
func (q *query) boolean(name string) bool {
	_, present := q.v[name]
	s := q.get(name)
	if s == "" {
		return present
	}
	b, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		q.fail("parameter %q: want true or false, got %q", name, s)
	}
	return b
}

// enum is one of allowed, def when absent.
func (q *query) enum(name, def string, allowed ...string) string {
	s := q.get(name)
	if s == "" {
		return def
	}
	if !slices.Contains(allowed, s) {
		q.fail("parameter %q: want one of %s, got %q", name, strings.Join(allowed, ", "), s)
		return def
	}
	return s
}

// strict makes every parameter the handler did not read a problem, so a
// misspelt one is not silently ignored.
func (q *query) strict() {
	names := make([]string, 0, len(q.v))
	for k := range q.v {
		if !q.used[k] {
			names = append(names, k)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		q.fail("unknown parameter %q", names[0])
	}
}

// done returns the first problem as a 400.
func (q *query) done() error {
	if q.err != nil {
		return errorf(http.StatusBadRequest, "%v", q.err)
	}
	return nil
}

// page is the paging and sorting of a list endpoint.
type page struct {
	offset, limit int
	sort          string
	desc          bool
	filter        string // substring of the row's names
}

// maxLimit bounds a page, so one request cannot make the broker build a
// document of every one of 100,000 connections.
const maxLimit = 10000

// readPage reads offset, limit (defLimit when absent), sort (one of keys,
// the first by default), order (asc or desc) and q.
func (q *query) readPage(defLimit int, keys ...string) page {
	p := page{
		offset: int(q.integer("offset", 0, 0, 1<<31-1)),
		limit:  int(q.integer("limit", int64(defLimit), 0, maxLimit)),
		sort:   q.enum("sort", keys[0], keys...),
		filter: q.str("q"),
	}
	p.desc = q.enum("order", "asc", "asc", "desc") == "desc"
	return p
}

// window returns the bounds of the page within n rows.
func (p page) window(n int) (lo, hi int) {
	lo = min(p.offset, n)
	hi = min(lo+p.limit, n)
	return lo, hi
}
