package natsgw

import "bytes"

// OpKind names a client operation of the NATS protocol.
type OpKind uint8

// The operations a client sends. Verbs are case-insensitive on the wire.
const (
	OpConnect OpKind = iota + 1 // CONNECT {json}
	OpPub                       // PUB <subject> [reply] <size>
	OpHPub                      // HPUB <subject> [reply] <header size> <total size>
	OpSub                       // SUB <subject> [queue] <sid>
	OpUnsub                     // UNSUB <sid> [max]
	OpPing                      // PING
	OpPong                      // PONG
)

func (k OpKind) String() string {
	switch k {
	case OpConnect:
		return "CONNECT"
	case OpPub:
		return "PUB"
	case OpHPub:
		return "HPUB"
	case OpSub:
		return "SUB"
	case OpUnsub:
		return "UNSUB"
	case OpPing:
		return "PING"
	case OpPong:
		return "PONG"
	}
	return "UNKNOWN"
}

// Op is one decoded client operation. Its byte slices point into the buffer
// given to Parser.Parse and are valid only until the handler returns; a
// handler that keeps any of them must copy it.
type Op struct {
	Kind    OpKind
	Subject []byte // PUB, HPUB, SUB
	Reply   []byte // PUB, HPUB; empty when absent
	Queue   []byte // SUB; empty for a plain subscription
	SID     []byte // SUB, UNSUB
	Max     int64  // UNSUB: deliver this many more messages, then remove; 0 means now
	Header  []byte // HPUB: the header block, from "NATS/1.0" to its blank line
	Payload []byte // PUB, HPUB: the message body without the header block
	JSON    []byte // CONNECT: the options object
}

// OpHandler receives the operations a Parser decodes, in order. Returning an
// error stops parsing; Parse passes the error on.
type OpHandler interface {
	HandleOp(op *Op) error
}

// ProtocolError is a violation of the protocol by the client. Its text is
// what the server sends back as -ERR before closing the connection, in the
// words the NATS clients know.
type ProtocolError struct{ Text string }

func (e *ProtocolError) Error() string { return "nats protocol: " + e.Text }

// The protocol violations Parse reports. Callers answer "-ERR '<Text>'" and
// close the connection.
var (
	ErrUnknownOp          = &ProtocolError{"Unknown Protocol Operation"}
	ErrMaxControlLine     = &ProtocolError{"Maximum Control Line Exceeded"}
	ErrMaxPayload         = &ProtocolError{"Maximum Payload Violation"}
	ErrBadArgs            = &ProtocolError{"Parser Error"}
	ErrBadHeaders         = &ProtocolError{"Parser Error: bad headers"}
	ErrMissingPayloadCRLF = &ProtocolError{"Parser Error: payload not followed by CRLF"}
)

// Defaults for the parser's limits, the same as nats-server's.
const (
	DefaultMaxControlLine = 4096
	DefaultMaxPayload     = 1 << 20
)

const maxArgs = 5

// Parser decodes the client side of the NATS protocol. It is a resumable
// scanner: Parse decodes every complete operation at the front of what it is
// given and reports how many bytes those took; the caller keeps the rest and
// hands it back, followed by the next bytes that arrive. Operations may be
// split across reads at any byte. A Parser belongs to one connection and is
// not safe for concurrent use; it allocates nothing.
type Parser struct {
	// MaxControlLine bounds an operation's line without its payload.
	MaxControlLine int
	// MaxPayload bounds a message's headers plus payload.
	MaxPayload int

	// scanned is how far into the unconsumed input a previous call already
	// looked for the end of the control line, so that a long line arriving
	// a few bytes at a time is scanned once, not once per read.
	scanned int
	op      Op
	args    [maxArgs][]byte
}

// NewParser returns a Parser with the default limits.
func NewParser() *Parser {
	return &Parser{MaxControlLine: DefaultMaxControlLine, MaxPayload: DefaultMaxPayload}
}

// Parse decodes the complete operations at the front of buf, calling h for
// each, and returns the number of bytes they took. The bytes from consumed on
// are an incomplete operation: the caller must present them again at the
// start of the next call. On a protocol violation it returns a
// *ProtocolError; on a handler error it returns that error. Either way the
// connection's input is no longer in step and the caller should close it.
func (p *Parser) Parse(buf []byte, h OpHandler) (consumed int, err error) {
	for consumed < len(buf) {
		n, err := p.parseOne(buf[consumed:], h)
		if err != nil {
			if err == errStop {
				// The handler took this operation and wants no more now.
				return consumed + n, err
			}
			return consumed, err
		}
		if n == 0 {
			return consumed, nil
		}
		consumed += n
	}
	return consumed, nil
}

// parseOne decodes one operation at the start of b. It returns 0 and no
// error when b holds only part of one.
func (p *Parser) parseOne(b []byte, h OpHandler) (int, error) {
	maxLine := p.MaxControlLine
	if maxLine <= 0 {
		maxLine = DefaultMaxControlLine
	}
	from := p.scanned
	if from > len(b) {
		from = 0
	}
	nl := bytes.IndexByte(b[from:], '\n')
	if nl < 0 {
		if len(b) > maxLine {
			return 0, ErrMaxControlLine
		}
		p.scanned = len(b)
		return 0, nil
	}
	nl += from
	if nl > maxLine {
		return 0, ErrMaxControlLine
	}
	lineEnd := nl
	if lineEnd > 0 && b[lineEnd-1] == '\r' {
		lineEnd--
	}
	line := b[:lineEnd]
	rest := nl + 1 // start of the payload, if the operation has one

	verb, args := splitVerb(line)
	op := &p.op
	*op = Op{}
	switch {
	case equalFold(verb, "PUB"), equalFold(verb, "HPUB"):
		// PUB <subject> [reply] <size>; HPUB adds <header size> before
		// <total size>.
		hpub := len(verb) == len("HPUB")
		sizes := 1
		if hpub {
			sizes = 2
		}
		n := p.splitArgs(args)
		if n != 1+sizes && n != 2+sizes {
			return 0, ErrBadArgs
		}
		size, ok := parseSize(p.args[n-1])
		if !ok {
			return 0, ErrBadArgs
		}
		hsize := 0
		if hpub {
			if hsize, ok = parseSize(p.args[n-2]); !ok || hsize > size {
				return 0, ErrBadArgs
			}
		}
		if size > p.maxPayload() {
			return 0, ErrMaxPayload
		}
		op.Kind, op.Subject = OpPub, p.args[0]
		if hpub {
			op.Kind = OpHPub
		}
		if n == 2+sizes {
			op.Reply = p.args[1]
		}
		total, st := p.payload(b, rest, size, op)
		switch st {
		case bodyPartial:
			p.scanned = nl
			return 0, nil
		case bodyBadEnd:
			return 0, ErrMissingPayloadCRLF
		}
		if hpub {
			op.Header, op.Payload = op.Payload[:hsize], op.Payload[hsize:]
			if !validHeaderBlock(op.Header) {
				return 0, ErrBadHeaders
			}
		}
		p.scanned = 0
		return total, h.HandleOp(op)

	case equalFold(verb, "SUB"):
		n := p.splitArgs(args)
		if n != 2 && n != 3 {
			return 0, ErrBadArgs
		}
		op.Kind, op.Subject, op.SID = OpSub, p.args[0], p.args[n-1]
		if n == 3 {
			op.Queue = p.args[1]
		}
	case equalFold(verb, "UNSUB"):
		n := p.splitArgs(args)
		if n != 1 && n != 2 {
			return 0, ErrBadArgs
		}
		op.Kind, op.SID = OpUnsub, p.args[0]
		if n == 2 {
			max, ok := parseSize(p.args[1])
			if !ok {
				return 0, ErrBadArgs
			}
			op.Max = int64(max)
		}
	case equalFold(verb, "PING"):
		if len(bytes.TrimSpace(args)) != 0 {
			return 0, ErrBadArgs
		}
		op.Kind = OpPing
	case equalFold(verb, "PONG"):
		if len(bytes.TrimSpace(args)) != 0 {
			return 0, ErrBadArgs
		}
		op.Kind = OpPong
	case equalFold(verb, "CONNECT"):
		op.Kind, op.JSON = OpConnect, bytes.TrimSpace(args)
		if len(op.JSON) == 0 {
			return 0, ErrBadArgs
		}
	default:
		return 0, ErrUnknownOp
	}
	p.scanned = 0
	return rest, h.HandleOp(op)
}

// bodyStatus says whether an operation's body has arrived whole.
type bodyStatus uint8

const (
	bodyComplete bodyStatus = iota
	bodyPartial             // more bytes are needed
	bodyBadEnd              // the body is not followed by CRLF
)

// payload locates the size bytes of body that follow the control line at
// b[start:], and the line end after them, and sets op.Payload. It returns
// the length of the whole operation.
func (p *Parser) payload(b []byte, start, size int, op *Op) (int, bodyStatus) {
	end := start + size
	if len(b) <= end {
		return 0, bodyPartial
	}
	// The body ends with CRLF; a bare LF is accepted too, as for lines.
	total := end + 1
	switch b[end] {
	case '\n':
	case '\r':
		if len(b) <= end+1 {
			return 0, bodyPartial
		}
		if b[end+1] != '\n' {
			return 0, bodyBadEnd
		}
		total = end + 2
	default:
		return 0, bodyBadEnd
	}
	op.Payload = b[start:end:end]
	return total, bodyComplete
}

func (p *Parser) maxPayload() int {
	if p.MaxPayload <= 0 {
		return DefaultMaxPayload
	}
	return p.MaxPayload
}

// splitVerb splits a control line into its verb and the rest.
func splitVerb(line []byte) (verb, args []byte) {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	line = line[i:]
	for i = 0; i < len(line); i++ {
		if line[i] == ' ' || line[i] == '\t' {
			return line[:i], line[i:]
		}
	}
	return line, nil
}

// splitArgs splits space- or tab-separated arguments into p.args and returns
// how many there are, or maxArgs+1 when there are too many.
func (p *Parser) splitArgs(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			break
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if n == maxArgs {
			return maxArgs + 1
		}
		p.args[n] = s[i:j:j]
		n++
		i = j
	}
	return n
}

// parseSize parses a non-negative decimal that fits an int32, so sizes are
// the same on 32- and 64-bit builds.
func parseSize(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	// Accumulate in 64 bits: ten digits overflow a 32-bit int, which on
	// 32-bit ARM would wrap to a negative or small size.
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<31-1 {
		return 0, false
	}
	return int(n), true
}

// equalFold reports whether b equals the upper-case ASCII word w, ignoring
// case, without allocating.
func equalFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i]&^0x20 != w[i] {
			return false
		}
	}
	return true
}

// validHeaderBlock checks the frame of a header block: it starts with the
// NATS/1.0 version line and ends with an empty line. The fields in between
// are passed on as the client wrote them.
func validHeaderBlock(h []byte) bool {
	return len(h) >= len("NATS/1.0\r\n\r\n") &&
		bytes.HasPrefix(h, []byte("NATS/1.0")) &&
		bytes.HasSuffix(h, []byte("\r\n\r\n"))
}
