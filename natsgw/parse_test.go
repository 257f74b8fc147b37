package natsgw

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recorder keeps copies of the operations it is handed, rendered as text so
// tests can compare them.
type recorder struct {
	ops []string
	err error // returned from HandleOp when set
}

func (r *recorder) HandleOp(op *Op) error {
	r.ops = append(r.ops, renderOp(op))
	return r.err
}

func renderOp(op *Op) string {
	switch op.Kind {
	case OpPub:
		return fmt.Sprintf("PUB %s reply=%q payload=%q", op.Subject, op.Reply, op.Payload)
	case OpHPub:
		return fmt.Sprintf("HPUB %s reply=%q header=%q payload=%q", op.Subject, op.Reply, op.Header, op.Payload)
	case OpSub:
		return fmt.Sprintf("SUB %s queue=%q sid=%s", op.Subject, op.Queue, op.SID)
	case OpUnsub:
		return fmt.Sprintf("UNSUB sid=%s max=%d", op.SID, op.Max)
	case OpConnect:
		return fmt.Sprintf("CONNECT %s", op.JSON)
	default:
		return op.Kind.String()
	}
}

// feed plays the part of the network layer: it hands input to the parser in
// chunks of the given sizes, keeping what the parser did not consume and
// presenting it again in front of the next chunk.
func feed(p *Parser, h OpHandler, input []byte, chunk func(i int) int) (leftover int, err error) {
	var pending []byte
	for i := 0; len(input) > 0; i++ {
		n := chunk(i)
		if n > len(input) {
			n = len(input)
		}
		pending = append(pending, input[:n]...)
		input = input[n:]
		consumed, err := p.Parse(pending, h)
		if err != nil {
			return len(pending) - consumed, err
		}
		pending = append(pending[:0], pending[consumed:]...)
	}
	return len(pending), nil
}

func TestParseOperations(t *testing.T) {
	hdr := "NATS/1.0\r\nTrace: on\r\n\r\n"
	cases := []struct {
		name  string
		input string
		want  []string
	}{
		{"ping pong", "PING\r\nPONG\r\n", []string{"PING", "PONG"}},
		{"lower case verbs", "ping\r\npub a 1\r\nx\r\nsub a 1\r\n", []string{"PING", `PUB a reply="" payload="x"`, `SUB a queue="" sid=1`}},
		{"bare newlines", "PING\nPUB a 2\nhi\n", []string{"PING", `PUB a reply="" payload="hi"`}},
		{"connect", `CONNECT {"verbose":false,"headers":true}` + "\r\n", []string{`CONNECT {"verbose":false,"headers":true}`}},
		{"pub with reply", "PUB orders.new _INBOX.abc 5\r\nhello\r\n", []string{`PUB orders.new reply="_INBOX.abc" payload="hello"`}},
		{"pub empty payload", "PUB a 0\r\n\r\n", []string{`PUB a reply="" payload=""`}},
		{"payload holding CRLF", "PUB a 4\r\n\r\n\r\n\r\n", []string{`PUB a reply="" payload="\r\n\r\n"`}},
		{"tabs and extra spaces", "PUB\t a  \tb\t 3 \r\nabc\r\n", []string{`PUB a reply="b" payload="abc"`}},
		{"hpub", fmt.Sprintf("HPUB a %d %d\r\n%sbody\r\n", len(hdr), len(hdr)+4, hdr), []string{fmt.Sprintf(`HPUB a reply="" header=%q payload="body"`, hdr)}},
		{"hpub with reply and empty body", fmt.Sprintf("HPUB a r %d %d\r\n%s\r\n", len(hdr), len(hdr), hdr), []string{fmt.Sprintf(`HPUB a reply="r" header=%q payload=""`, hdr)}},
		{"sub with queue", "SUB jobs.* workers 7\r\n", []string{`SUB jobs.* queue="workers" sid=7`}},
		{"unsub", "UNSUB 7\r\nUNSUB 8 10\r\n", []string{"UNSUB sid=7 max=0", "UNSUB sid=8 max=10"}},
		{"partial op left", "PING\r\nPUB a 10\r\nabc", []string{"PING"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r recorder
			p := NewParser()
			if _, err := p.Parse([]byte(tc.input), &r); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if strings.Join(r.ops, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(r.ops, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestParseViolations(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  error
	}{
		{"unknown verb", "FOO bar\r\n", ErrUnknownOp},
		{"server verb from client", "MSG a 1 1\r\nx\r\n", ErrUnknownOp},
		{"empty line", "\r\n", ErrUnknownOp},
		{"pub without size", "PUB a\r\n", ErrBadArgs},
		{"pub with bad size", "PUB a -1\r\n", ErrBadArgs},
		{"pub with huge size", "PUB a 99999999999\r\n", ErrBadArgs},
		{"pub size that wraps int32", "PUB a 2147483648\r\n", ErrBadArgs},
		{"pub size that wraps to 1 in 32 bits", "PUB a 4294967297\r\nx\r\n", ErrBadArgs},
		{"unsub max that wraps int32", "UNSUB 1 4294967297\r\n", ErrBadArgs},
		{"pub too many args", "PUB a b c 1\r\nx\r\n", ErrBadArgs},
		{"pub over max payload", fmt.Sprintf("PUB a %d\r\n", DefaultMaxPayload+1), ErrMaxPayload},
		{"payload longer than announced", "PUB a 1\r\nxy\r\n", ErrMissingPayloadCRLF},
		{"hpub header larger than total", "HPUB a 20 10\r\n", ErrBadArgs},
		{"hpub without version line", "HPUB a 4 4\r\n\r\n\r\n\r\n", ErrBadHeaders},
		{"sub without sid", "SUB a\r\n", ErrBadArgs},
		{"unsub bad max", "UNSUB 1 x\r\n", ErrBadArgs},
		{"ping with args", "PING now\r\n", ErrBadArgs},
		{"connect without options", "CONNECT\r\n", ErrBadArgs},
		{"control line too long", "PUB " + strings.Repeat("a", DefaultMaxControlLine) + " 1\r\n", ErrMaxControlLine},
		{"unterminated line too long", strings.Repeat("a", DefaultMaxControlLine+1), ErrMaxControlLine},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r recorder
			_, err := NewParser().Parse([]byte(tc.input), &r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if len(r.ops) != 0 {
				t.Errorf("a bad operation reached the handler: %v", r.ops)
			}
		})
	}
}

func TestParseHandlerErrorStops(t *testing.T) {
	stop := errors.New("stop")
	r := recorder{err: stop}
	consumed, err := NewParser().Parse([]byte("PING\r\nPING\r\n"), &r)
	if err != stop || len(r.ops) != 1 || consumed != 0 {
		t.Fatalf("consumed=%d err=%v ops=%v; want the first op only and the handler's error", consumed, err, r.ops)
	}
}

// A stream of every kind of operation, split at every possible byte, must
// decode to the same operations as when it arrives whole.
const mixedStream = "CONNECT {\"echo\":true}\r\nSUB a.* q 1\r\nPUB a.b r 5\r\nhello\r\n" +
	"HPUB a.c 22 26\r\nNATS/1.0\r\nK: value\r\n\r\nbody\r\nPING\r\nUNSUB 1 2\r\nPUB a 0\r\n\r\nPONG\r\n"

func TestParseSplitAtEveryByte(t *testing.T) {
	var whole recorder
	if _, err := NewParser().Parse([]byte(mixedStream), &whole); err != nil {
		t.Fatal(err)
	}
	if len(whole.ops) != 8 {
		t.Fatalf("whole stream gave %d ops: %v", len(whole.ops), whole.ops)
	}
	for size := 1; size <= len(mixedStream); size++ {
		var r recorder
		left, err := feed(NewParser(), &r, []byte(mixedStream), func(int) int { return size })
		if err != nil || left != 0 {
			t.Fatalf("chunks of %d: err=%v leftover=%d", size, err, left)
		}
		if strings.Join(r.ops, "\n") != strings.Join(whole.ops, "\n") {
			t.Fatalf("chunks of %d:\n%s\nwant:\n%s", size, strings.Join(r.ops, "\n"), strings.Join(whole.ops, "\n"))
		}
	}
	for split := 0; split <= len(mixedStream); split++ {
		var r recorder
		sizes := []int{split, len(mixedStream)}
		if _, err := feed(NewParser(), &r, []byte(mixedStream), func(i int) int { return sizes[i] }); err != nil {
			t.Fatalf("split at %d: %v", split, err)
		}
		if len(r.ops) != len(whole.ops) {
			t.Fatalf("split at %d: %d ops, want %d", split, len(r.ops), len(whole.ops))
		}
	}
}

// A long control line arriving a byte at a time is still limited, and is
// not rescanned from its start at every byte.
func TestParseLongLineByteByByte(t *testing.T) {
	p := NewParser()
	line := "SUB " + strings.Repeat("x", 3000) + " 1\r\n"
	var r recorder
	if left, err := feed(p, &r, []byte(line), func(int) int { return 1 }); err != nil || left != 0 || len(r.ops) != 1 {
		t.Fatalf("err=%v leftover=%d ops=%d", err, left, len(r.ops))
	}
	over := strings.Repeat("y", DefaultMaxControlLine+10)
	if _, err := feed(NewParser(), &r, []byte(over), func(int) int { return 1 }); !errors.Is(err, ErrMaxControlLine) {
		t.Fatalf("unterminated line fed byte by byte: err=%v, want ErrMaxControlLine", err)
	}
}

type discard struct{ n int }

func (d *discard) HandleOp(*Op) error { d.n++; return nil }

func TestParseDoesNotAllocate(t *testing.T) {
	p := NewParser()
	var d discard
	in := []byte(mixedStream)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := p.Parse(in, &d); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %.1f times per call; the hot path must not allocate", allocs)
	}
}

func TestAppendMsgLine(t *testing.T) {
	cases := []struct {
		subject, sid, reply string
		hdr, payload        int
		want                string
	}{
		{"a.b", "1", "", 0, 5, "MSG a.b 1 5\r\n"},
		{"a.b", "22", "_INBOX.x", 0, 0, "MSG a.b 22 _INBOX.x 0\r\n"},
		{"a", "3", "", 16, 4, "HMSG a 3 16 20\r\n"},
		{"a", "3", "r", 16, 0, "HMSG a 3 r 16 16\r\n"},
	}
	for _, tc := range cases {
		got := AppendMsgLine(nil, []byte(tc.subject), tc.sid, []byte(tc.reply), tc.hdr, tc.payload)
		if string(got) != tc.want {
			t.Errorf("AppendMsgLine(%q, %q, %q, %d, %d) = %q, want %q", tc.subject, tc.sid, tc.reply, tc.hdr, tc.payload, got, tc.want)
		}
	}
	if got := AppendErr(nil, ErrUnknownOp.Text); !bytes.Equal(got, []byte("-ERR 'Unknown Protocol Operation'\r\n")) {
		t.Errorf("AppendErr = %q", got)
	}
}

// FuzzParse checks that arbitrary input never panics, that the parser never
// claims more bytes than it was given, and that splitting the input at any
// point yields the same operations as parsing it whole.
func FuzzParse(f *testing.F) {
	f.Add([]byte(mixedStream), uint16(7))
	f.Add([]byte("PUB a 3\r\nabc\r\n"), uint16(1))
	f.Add([]byte("HPUB a 12 12\r\nNATS/1.0\r\n\r\n\r\n"), uint16(3))
	f.Add([]byte("SUB a 1\r\nUNSUB 1 1\r\n"), uint16(9))
	f.Add([]byte("PUB a 1\r\nxy"), uint16(2))
	f.Add([]byte("CONNECT {}\nPING\n"), uint16(4))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		var whole recorder
		p := NewParser()
		consumed, wholeErr := p.Parse(in, &whole)
		if consumed < 0 || consumed > len(in) {
			t.Fatalf("consumed %d of %d bytes", consumed, len(in))
		}
		cut := int(split) % (len(in) + 1)
		var parts recorder
		sizes := []int{cut, len(in)}
		_, partsErr := feed(NewParser(), &parts, in, func(i int) int { return sizes[i%2] })
		if (wholeErr == nil) != (partsErr == nil) {
			// A split can only reveal an error later, never hide or invent one.
			t.Fatalf("whole err=%v, split at %d err=%v", wholeErr, cut, partsErr)
		}
		if wholeErr == nil && strings.Join(whole.ops, "\n") != strings.Join(parts.ops, "\n") {
			t.Fatalf("split at %d changed the ops:\n%v\nvs\n%v", cut, whole.ops, parts.ops)
		}
	})
}

func BenchmarkParsePub(b *testing.B) {
	payload := strings.Repeat("x", 128)
	msg := []byte("PUB site.42.device.7319.temp " + fmt.Sprint(len(payload)) + "\r\n" + payload + "\r\n")
	in := bytes.Repeat(msg, 64)
	p := NewParser()
	var d discard
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(in, &d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(d.n)/b.Elapsed().Seconds(), "ops/s")
}
