package auth

import (
	"slices"
	"sync/atomic"
)

// ReloadResult says what a reload did to the connections.
type ReloadResult struct {
	// Kept connections go on, under their new rules; Dropped lost their
	// access and are being closed.
	Kept, Dropped int
}

// Reload puts p in force. Every connection is checked against it: one
// whose user is gone, whose password, token or certificate no longer
// names the same user, or whose protocol or anonymity is no longer let in
// is told ErrRevoked through its OnChange function and closed by its
// gateway; every other gets its rules compiled anew and is told to check
// its subscriptions. Callers load and parse the new file first
// (LoadFile): a file with an error never reaches Reload, so the rules in
// force stay.
func (s *Service) Reload(p *Policy) ReloadResult {
	s.policy.Store(p)
	s.mu.Lock()
	clients := make([]*Client, 0, len(s.clients))
	for cl := range s.clients {
		clients = append(clients, cl)
	}
	s.mu.Unlock()
	var res ReloadResult
	for _, cl := range clients {
		g, ok := s.stillValid(p, cl)
		if !ok {
			res.Dropped++
			cl.notify(ErrRevoked)
			continue
		}
		res.Kept++
		if g != nil {
			cl.g.Store(g)
		}
		cl.recvMu.Lock()
		cl.recv.reset()
		cl.recvMu.Unlock()
		cl.notify(nil)
	}
	s.log.Info("auth: users reloaded", "source", p.Source, "mode", p.Mode(), "connections_kept", res.Kept, "connections_dropped", res.Dropped)
	return res
}

// stillValid checks a connection's proof against p and returns the grant
// it now has (nil: the one it has, for the broker's own connections).
// Decisions cached under the old grant are not used with the new one.
func (s *Service) stillValid(p *Policy, cl *Client) (*grant, bool) {
	allowedProto := func(e *effective) bool {
		return len(e.protocols) == 0 || cl.proto == HTTP || slices.Contains(e.protocols, cl.proto)
	}
	anonymous := func() (*grant, bool) {
		switch {
		case p.anonymous != nil:
			return compile(p.anonEff, cl.values), allowedProto(p.anonEff)
		case !p.HasUsers() && isLoopback(cl.remote):
			return everything, true
		}
		return nil, false
	}
	switch cl.how {
	case byLoopback, byAnonymous:
		return anonymous()
	}
	u := p.users[cl.name]
	if u == nil {
		return nil, false
	}
	switch cl.how {
	case byPassword:
		if u.passwordHash != cl.hash {
			return nil, false
		}
	case byToken:
		if p.byToken[cl.token] != u {
			return nil, false
		}
	case byCert:
		if p.byCert[cl.certID] != u {
			return nil, false
		}
	}
	return compile(u.eff, cl.values), allowedProto(u.eff)
}

// notify calls the client's OnChange function.
func (cl *Client) notify(err error) {
	cl.mu.Lock()
	fn := cl.onChange
	cl.mu.Unlock()
	if fn != nil {
		fn(err)
	}
}

// Pending hands the result of an authentication from the pool's goroutine
// to the connection's loop without ever losing a Client, whichever of the
// two ends first: the gateway keeps one in its session, calls Put from
// Authenticate's done function and, when Put reports that the connection
// is still there, schedules Take on the loop (Conn.Do); the connection's
// close calls Abandon. A Client that nobody takes is closed.
type Pending struct {
	p atomic.Pointer[pendingResult]
}

type pendingResult struct {
	cl  *Client
	err error
}

// abandoned marks a Pending whose connection is gone.
var abandoned = &pendingResult{}

// Put stores a result; it reports false (and closes cl) when the
// connection was already abandoned.
func (p *Pending) Put(cl *Client, err error) bool {
	if !p.p.CompareAndSwap(nil, &pendingResult{cl: cl, err: err}) {
		cl.Close()
		return false
	}
	return true
}

// Take returns the stored result, on the connection's loop. ok is false
// when there is none (the connection was abandoned).
func (p *Pending) Take() (cl *Client, err error, ok bool) {
	r := p.p.Load()
	if r == nil || r == abandoned || !p.p.CompareAndSwap(r, abandoned) {
		return nil, nil, false
	}
	return r.cl, r.err, true
}

// Abandon is called when the connection closes: a result stored and not
// taken is closed, and one stored later will be.
func (p *Pending) Abandon() {
	if r := p.p.Swap(abandoned); r != nil && r != abandoned {
		r.cl.Close()
	}
}
