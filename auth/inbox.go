package auth

import (
	"bytes"
	"sync"
)

// Reply subjects are private to their requester. A request's reply
// subject is an inbox, "_INBOX.<token>..." with a random token per client
// (nats.go's), and a restricted user is often given "subscribe =
// _INBOX.>" so that its requests get answers. That permission must not
// let it read every other client's answers: the first connection to
// subscribe to an inbox token with a literal filter ("_INBOX.<token>.*",
// which nats.go makes before its first request) owns the token until it
// closes. A restricted connection may not subscribe to a token another
// owns, and its wildcard subscriptions over inboxes ("_INBOX.>", ">")
// are Filtered: they receive only messages to the inboxes it owns.
// Unrestricted users (admins, users without subscribe rules) see every
// subject, as "nats sub '>'" does with nats-server.
const inboxPrefix = "_INBOX"

// inboxes are the owners of inbox tokens.
type inboxes struct {
	mu    sync.RWMutex
	owner map[string]*Client
}

// inboxCanon is the canonical pattern of every inbox subject.
var inboxCanon = []string{inboxPrefix, anyToken, anyTokens}

// inboxRelation tells how a canonical filter meets the inboxes: not at
// all, on one literal token, or over every token (wide).
func inboxRelation(f []string) (token string, wide, meets bool) {
	if !intersects(f, inboxCanon) {
		return "", false, false
	}
	if len(f) >= 2 && f[0] == inboxPrefix && f[1] != anyToken && f[1] != anyTokens {
		return f[1], false, true
	}
	return "", true, true
}

// claim gives the token to cl unless another client owns it.
func (in *inboxes) claim(cl *Client, token string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if o, ok := in.owner[token]; ok {
		return o == cl
	}
	if in.owner == nil {
		in.owner = make(map[string]*Client)
	}
	in.owner[token] = cl
	cl.claims = append(cl.claims, token)
	return true
}

// ownedBy reports whether subject is an inbox subject whose token cl
// owns; ok is false when subject is not an inbox subject at all.
func (in *inboxes) ownedBy(cl *Client, subject []byte) (mine, inbox bool) {
	rest, ok := bytes.CutPrefix(subject, []byte(inboxPrefix+"."))
	if !ok {
		return false, false
	}
	tok, _ := cutToken(rest)
	in.mu.RLock()
	o := in.owner[string(tok)]
	in.mu.RUnlock()
	return o == cl, true
}

// release frees cl's tokens when it closes.
func (in *inboxes) release(cl *Client) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, t := range cl.claims {
		if in.owner[t] == cl {
			delete(in.owner, t)
		}
	}
	cl.claims = nil
}
