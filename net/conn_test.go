package net

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"
	"time"
)

// fakeDriver lets the reassembly and queue logic run without sockets.
type fakeDriver struct{ kicks int }

func (d *fakeDriver) kick(*Conn)                          { d.kicks++ }
func (d *fakeDriver) armTimer(*Timer, time.Duration) bool { return false }
func (d *fakeDriver) stopTimer(*Timer) bool               { return false }
func (d *fakeDriver) post(*Conn)                          {}
func (d *fakeDriver) pauseRead(*Conn)                     {}
func (d *fakeDriver) resumeRead(*Conn)                    {}
func (d *fakeDriver) startTLS(*Conn, *tls.Config) error   { return ErrNoUpgrade }

func newUnitConn(h Handler, opts Options) *Conn {
	s := &Server{handler: h, opts: opts.withDefaults()}
	return &Conn{srv: s, drv: &fakeDriver{}, fd: -1}
}

// byteFrames is a test protocol of frames with a one-byte length prefix,
// parsed one frame per OnData call; it records the frames it saw.
type byteFrames struct {
	frames [][]byte
	calls  int
}

func (p *byteFrames) OnOpen(*Conn)         {}
func (p *byteFrames) OnClose(*Conn, error) {}
func (p *byteFrames) OnData(_ *Conn, in []byte) (int, error) {
	p.calls++
	if len(in) < 1 || len(in) < 1+int(in[0]) {
		return 0, nil
	}
	n := 1 + int(in[0])
	p.frames = append(p.frames, append([]byte(nil), in[1:n]...))
	return n, nil
}

// parseAll is the reference: the frames of a whole stream and the length
// of its incomplete tail.
func parseAll(stream []byte) (frames [][]byte, rest int) {
	for len(stream) >= 1 && len(stream) >= 1+int(stream[0]) {
		n := 1 + int(stream[0])
		frames = append(frames, append([]byte(nil), stream[1:n]...))
		stream = stream[n:]
	}
	return frames, len(stream)
}

// feedChunks delivers stream in chunks of the given sizes (cycled) and
// checks the outcome against the reference parse.
func feedChunks(t *testing.T, stream []byte, sizes []int) {
	t.Helper()
	p := &byteFrames{}
	c := newUnitConn(p, Options{MaxInput: 1 << 20})
	for i, off := 0, 0; off < len(stream); i++ {
		n := 1
		if len(sizes) > 0 {
			n = max(sizes[i%len(sizes)], 1)
		}
		n = min(n, len(stream)-off)
		// The transport reuses its read buffer: scribble over it after
		// each call to catch a handler or queue that keeps the slice.
		chunk := append([]byte(nil), stream[off:off+n]...)
		if err := c.deliver(chunk); err != nil {
			t.Fatalf("deliver: %v", err)
		}
		for j := range chunk {
			chunk[j] = 0xEE
		}
		off += n
	}
	want, rest := parseAll(stream)
	if len(p.frames) != len(want) {
		t.Fatalf("got %d frames, want %d", len(p.frames), len(want))
	}
	for i := range want {
		if !bytes.Equal(p.frames[i], want[i]) {
			t.Fatalf("frame %d = %q, want %q", i, p.frames[i], want[i])
		}
	}
	held := 0
	if c.held != nil {
		held = len(c.held.B)
	}
	if held != rest {
		t.Fatalf("held %d bytes, want %d", held, rest)
	}
	if (c.held != nil) != (rest > 0) || c.srv.stats.held.Load() != int64(min(rest, 1)) {
		t.Fatalf("held buffer %v with %d unconsumed bytes", c.held != nil, rest)
	}
}

func testStream() []byte {
	var s []byte
	for i := 0; i < 12; i++ {
		s = append(s, byte(i*3))
		s = append(s, bytes.Repeat([]byte{byte('a' + i)}, i*3)...)
	}
	return append(s, 9, 'p', 'a', 'r') // an incomplete tail
}

func TestDeliverSplitAtEveryBoundary(t *testing.T) {
	stream := testStream()
	for k := 1; k < len(stream); k++ {
		feedChunks(t, stream, []int{k, len(stream)})
	}
	feedChunks(t, stream, []int{1})
	feedChunks(t, stream, []int{2, 3, 5, 7})
}

func TestDeliverRejectsBadConsumeCount(t *testing.T) {
	for _, n := range []int{-1, 4} {
		c := newUnitConn(&funcHandler{data: func(*Conn, []byte) (int, error) { return n, nil }}, Options{})
		if err := c.deliver([]byte("abc")); err == nil {
			t.Fatalf("consumed %d of 3 accepted", n)
		}
	}
}

func TestDeliverInputLimit(t *testing.T) {
	c := newUnitConn(&funcHandler{data: func(*Conn, []byte) (int, error) { return 0, nil }}, Options{MaxInput: 8})
	if err := c.deliver([]byte("12345678")); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if err := c.deliver([]byte("9")); !errors.Is(err, ErrInputTooLarge) {
		t.Fatalf("past the limit: %v", err)
	}
	if c.held != nil || c.srv.stats.held.Load() != 0 {
		t.Fatal("buffer kept after the limit closed the connection")
	}
}

func TestQueueCoalescesAndReleasesInOrder(t *testing.T) {
	var q outQueue
	var order []string
	q.appendCopy([]byte("ab"))
	q.appendCopy([]byte("cd")) // coalesced into the same pooled buffer
	q.appendRef([]byte("EFGH"), func() { order = append(order, "ref") })
	q.appendCopy([]byte("ij"))
	if len(q.pieces) != 3 || q.bytes != 10 {
		t.Fatalf("%d pieces, %d bytes", len(q.pieces), q.bytes)
	}
	got := bytes.Join(q.appendTo(nil, 16), nil)
	if string(got) != "abcdEFGHij" {
		t.Fatalf("queued %q", got)
	}
	rel := q.advance(5, nil) // "abcd" and one byte of the ref
	if len(rel) != 0 || q.head != 1 || q.off != 1 {
		t.Fatalf("after 5: head %d off %d, %d releases", q.head, q.off, len(rel))
	}
	rel = q.advance(3, rel)
	runReleases(rel)
	if len(order) != 1 || q.bytes != 2 {
		t.Fatalf("after the ref: %v, %d bytes", order, q.bytes)
	}
	rel = q.drop(nil)
	if len(rel) != 0 || !q.empty() {
		t.Fatal("drop left pieces")
	}
}

// FuzzDeliverSplits feeds arbitrary streams in arbitrary read sizes through
// the reassembly and compares with parsing the stream whole.
func FuzzDeliverSplits(f *testing.F) {
	f.Add(testStream(), []byte{1})
	f.Add(testStream(), []byte{3, 1, 4, 1, 5, 9})
	f.Add([]byte{0, 0, 0}, []byte{2})
	f.Add([]byte{255}, []byte{1})
	f.Fuzz(func(t *testing.T, stream, splits []byte) {
		sizes := make([]int, len(splits))
		for i, s := range splits {
			sizes[i] = int(s)
		}
		feedChunks(t, stream, sizes)
	})
}

// FuzzOutQueue checks the outbound queue against a plain byte slice: any mix
// of copied and by-reference writes, partial sends and drops yields the same
// bytes in order, every release runs once, and nothing is left behind.
func FuzzOutQueue(f *testing.F) {
	f.Add([]byte{0x10, 0x85, 0x40, 0x03, 0xC0, 0x7f})
	f.Add([]byte{0xff, 0xff, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var q outQueue
		var want, sent []byte
		var rel []func()
		refs, released := 0, 0
		for i, op := range ops {
			n := int(op&0x3f) * 997 % (3 * chunkSize) // up to three chunks
			switch op >> 6 {
			case 0, 1: // copied write, sometimes large
				p := bytes.Repeat([]byte{byte(i)}, n)
				q.appendCopy(p)
				want = append(want, p...)
			case 2: // by-reference write
				p := bytes.Repeat([]byte{byte(i) | 0x80}, n%512+1)
				refs++
				q.appendRef(p, func() { released++ })
				want = append(want, p...)
			case 3: // send up to n bytes, as a partial writev would
				bufs := q.appendTo(nil, maxIovecsTest)
				k := 0
				for _, b := range bufs {
					take := min(len(b), n-k)
					sent = append(sent, b[:take]...)
					k += take
					if k == n {
						break
					}
				}
				rel = runReleases(q.advance(k, rel))
			}
			if q.bytes != len(want)-len(sent) {
				t.Fatalf("queue says %d bytes, %d unsent", q.bytes, len(want)-len(sent))
			}
		}
		// Drain the rest.
		for !q.empty() {
			bufs := q.appendTo(nil, maxIovecsTest)
			k := 0
			for _, b := range bufs {
				sent = append(sent, b...)
				k += len(b)
			}
			rel = runReleases(q.advance(k, rel))
		}
		if !bytes.Equal(sent, want) {
			t.Fatalf("sent %d bytes differing from the %d written", len(sent), len(want))
		}
		if released != refs {
			t.Fatalf("released %d of %d refs", released, refs)
		}
		if len(q.pieces) != 0 || q.head != 0 || q.off != 0 {
			t.Fatalf("drained queue keeps %d pieces, head %d, off %d", len(q.pieces), q.head, q.off)
		}
	})
}

// maxIovecsTest is a small iovec cap so the fuzz target crosses it often.
const maxIovecsTest = 7
