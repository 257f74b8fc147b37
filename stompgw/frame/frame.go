package frame

import (
	"bytes"
	"errors"
	"strconv"
)

// Version is a STOMP protocol version.
type Version uint8

// The versions the codec speaks.
const (
	V10 Version = iota + 1
	V11
	V12
)

// String returns the version as the accept-version header spells it.
func (v Version) String() string {
	switch v {
	case V10:
		return "1.0"
	case V11:
		return "1.1"
	case V12:
		return "1.2"
	}
	return "unknown"
}

// ParseVersion reads one version of an accept-version list.
func ParseVersion[S string | []byte](s S) (Version, bool) {
	switch string(s) {
	case "1.0":
		return V10, true
	case "1.1":
		return V11, true
	case "1.2":
		return V12, true
	}
	return 0, false
}

// Command is a frame's command.
type Command uint8

// Client and server commands.
const (
	Unknown Command = iota
	CONNECT
	STOMP
	SEND
	SUBSCRIBE
	UNSUBSCRIBE
	ACK
	NACK
	BEGIN
	COMMIT
	ABORT
	DISCONNECT
	CONNECTED
	MESSAGE
	RECEIPT
	ERROR
)

var commandNames = [...]string{
	Unknown:     "UNKNOWN",
	CONNECT:     "CONNECT",
	STOMP:       "STOMP",
	SEND:        "SEND",
	SUBSCRIBE:   "SUBSCRIBE",
	UNSUBSCRIBE: "UNSUBSCRIBE",
	ACK:         "ACK",
	NACK:        "NACK",
	BEGIN:       "BEGIN",
	COMMIT:      "COMMIT",
	ABORT:       "ABORT",
	DISCONNECT:  "DISCONNECT",
	CONNECTED:   "CONNECTED",
	MESSAGE:     "MESSAGE",
	RECEIPT:     "RECEIPT",
	ERROR:       "ERROR",
}

// String returns the command as it is written on the wire.
func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return commandNames[Unknown]
}

// lookupCommand finds a command by its wire name without allocating.
func lookupCommand(b []byte) Command {
	switch string(b) {
	case "SEND":
		return SEND
	case "ACK":
		return ACK
	case "MESSAGE":
		return MESSAGE
	case "NACK":
		return NACK
	case "SUBSCRIBE":
		return SUBSCRIBE
	case "UNSUBSCRIBE":
		return UNSUBSCRIBE
	case "BEGIN":
		return BEGIN
	case "COMMIT":
		return COMMIT
	case "ABORT":
		return ABORT
	case "CONNECT":
		return CONNECT
	case "STOMP":
		return STOMP
	case "DISCONNECT":
		return DISCONNECT
	case "CONNECTED":
		return CONNECTED
	case "RECEIPT":
		return RECEIPT
	case "ERROR":
		return ERROR
	}
	return Unknown
}

// escaped reports whether frames of cmd escape their headers in version v.
func escaped(v Version, cmd Command) bool {
	return v >= V11 && cmd != CONNECT && cmd != STOMP && cmd != CONNECTED
}

// Header is one header line; its slices alias the decoded input.
type Header struct {
	Key, Value []byte
}

// Frame is one decoded frame.
type Frame struct {
	Command Command
	// Name is the command as it came, for the error about an unknown one.
	Name    []byte
	Headers []Header
	Body    []byte
	// ContentLength is the content-length header's value, -1 without one.
	ContentLength int
}

// Get returns the first header named key (STOMP 1.2: the first of
// repeated entries counts).
func (f *Frame) Get(key string) ([]byte, bool) {
	for i := range f.Headers {
		if string(f.Headers[i].Key) == key {
			return f.Headers[i].Value, true
		}
	}
	return nil, false
}

// Has reports whether the frame has a header named key.
func (f *Frame) Has(key string) bool {
	_, ok := f.Get(key)
	return ok
}

// ErrIncomplete says the input does not hold a whole frame yet.
var ErrIncomplete = errors.New("stomp: incomplete frame")

// Error is a malformed frame: the connection gets an ERROR frame with
// Message as its message header, and is closed.
type Error struct {
	Message string
}

func (e *Error) Error() string { return "stomp: " + e.Message }

// The decoder's errors, made once.
var (
	errTooLarge      = &Error{"frame too large"}
	errTooManyHdrs   = &Error{"too many headers"}
	errNoCommand     = &Error{"empty command line"}
	errBadHeader     = &Error{"malformed header: no colon"}
	errEmptyName     = &Error{"malformed header: empty name"}
	errBadEscape     = &Error{"undefined escape sequence in header"}
	errBadLength     = &Error{"content-length is not a non-negative number"}
	errNoNUL         = &Error{"frame body not terminated by NUL after content-length octets"}
	errBinaryCommand = &Error{"command line holds a control character"}
)

// Limits bound what Decode accepts.
type Limits struct {
	// MaxFrame is the largest frame, command, headers and body together.
	MaxFrame int
	// MaxHeaders is the most header lines a frame may have.
	MaxHeaders int
}

// SkipEOL returns how many EOL octets (heart-beats) in starts with. A CR
// at the very end is left, since its LF may be yet to come.
func SkipEOL(in []byte) int {
	i := 0
	for i < len(in) {
		switch {
		case in[i] == '\n':
			i++
		case in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n':
			i += 2
		default:
			return i
		}
	}
	return i
}

// Decode decodes the frame at the start of in, which must not start with
// an EOL (see SkipEOL), and returns the bytes it used. It returns
// ErrIncomplete, leaving in untouched, until the whole frame is there, and
// a *Error for a malformed one. Frames of version v have their headers
// unescaped in place; f's slices alias in.
func Decode(in []byte, v Version, lim Limits, f *Frame) (int, error) {
	f.Headers = f.Headers[:0]
	f.Body = nil
	f.ContentLength = -1
	// The command line.
	eol := indexLF(in, lim.MaxFrame)
	if eol < 0 {
		return 0, eolMissing(in, lim.MaxFrame)
	}
	line := trimCR(in[:eol])
	if len(line) == 0 {
		return 0, errNoCommand
	}
	for _, c := range line {
		if c < 0x20 {
			return 0, errBinaryCommand
		}
	}
	f.Name = line
	f.Command = lookupCommand(line)
	pos := eol + 1
	// Header lines, up to the empty line; content-length is read before
	// unescaping, which cannot change a number.
	cl := -1
	for {
		rest := in[pos:]
		e := indexLF(rest, lim.MaxFrame-pos)
		if e < 0 {
			return 0, eolMissing(in, lim.MaxFrame)
		}
		line := trimCR(rest[:e])
		pos += e + 1
		if len(line) == 0 {
			break
		}
		if len(f.Headers) >= lim.MaxHeaders {
			return 0, errTooManyHdrs
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, errBadHeader
		}
		if colon == 0 {
			return 0, errEmptyName
		}
		h := Header{Key: line[:colon], Value: line[colon+1:]}
		if cl < 0 && string(h.Key) == "content-length" {
			n, ok := parseLength(h.Value)
			if !ok {
				return 0, errBadLength
			}
			cl = n
		}
		f.Headers = append(f.Headers, h)
	}
	// The body.
	var end int
	if cl >= 0 {
		if cl > lim.MaxFrame-pos {
			return 0, errTooLarge
		}
		if len(in) < pos+cl+1 {
			return 0, ErrIncomplete
		}
		if in[pos+cl] != 0 {
			return 0, errNoNUL
		}
		end = pos + cl
	} else {
		nul := bytes.IndexByte(in[pos:], 0)
		if nul < 0 {
			if len(in)-pos > lim.MaxFrame-pos {
				return 0, errTooLarge
			}
			return 0, ErrIncomplete
		}
		if pos+nul > lim.MaxFrame {
			return 0, errTooLarge
		}
		end = pos + nul
	}
	f.Body = in[pos:end:end]
	f.ContentLength = cl
	if escaped(v, f.Command) {
		for i := range f.Headers {
			h := &f.Headers[i]
			var ok bool
			if h.Key, ok = unescape(h.Key); !ok {
				return 0, errBadEscape
			}
			if h.Value, ok = unescape(h.Value); !ok {
				return 0, errBadEscape
			}
		}
	}
	return end + 1, nil
}

// eolMissing is the error for input without its next LF: incomplete, or
// too large when the limit is already passed.
func eolMissing(in []byte, maxFrame int) error {
	if len(in) > maxFrame {
		return errTooLarge
	}
	return ErrIncomplete
}

// indexLF finds the first LF of b within its first limit octets.
func indexLF(b []byte, limit int) int {
	limit = max(limit, 0)
	if len(b) > limit+1 {
		b = b[:limit+1]
	}
	return bytes.IndexByte(b, '\n')
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// parseLength reads a content-length value: decimal digits only.
func parseLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// unescape decodes \r \n \c \\ in place; false for any other sequence.
func unescape(b []byte) ([]byte, bool) {
	i := bytes.IndexByte(b, '\\')
	if i < 0 {
		return b, true
	}
	w := i
	for r := i; r < len(b); r++ {
		c := b[r]
		if c != '\\' {
			b[w] = c
			w++
			continue
		}
		if r+1 == len(b) {
			return nil, false
		}
		r++
		switch b[r] {
		case 'r':
			b[w] = '\r'
		case 'n':
			b[w] = '\n'
		case 'c':
			b[w] = ':'
		case '\\':
			b[w] = '\\'
		default:
			return nil, false
		}
		w++
	}
	return b[:w:w], true
}

// AppendCommand appends a command line.
func AppendCommand(dst []byte, c Command) []byte {
	return append(append(dst, c.String()...), '\n')
}

// AppendHeader appends a header line, escaped as frames of cmd in
// version v escape them.
func AppendHeader[K, V string | []byte](dst []byte, v Version, cmd Command, key K, value V) []byte {
	if !escaped(v, cmd) {
		dst = appendRaw(dst, key)
		dst = append(dst, ':')
		dst = appendRaw(dst, value)
		return append(dst, '\n')
	}
	dst = appendEscaped(dst, v, key)
	dst = append(dst, ':')
	dst = appendEscaped(dst, v, value)
	return append(dst, '\n')
}

// AppendValue appends part of a header name or value, escaped as frames
// of cmd in version v escape them, for a value built from several parts.
func AppendValue[S string | []byte](dst []byte, v Version, cmd Command, s S) []byte {
	if !escaped(v, cmd) {
		return appendRaw(dst, s)
	}
	return appendEscaped(dst, v, s)
}

// AppendHeaderUint appends a header with a decimal value; neither needs
// escaping.
func AppendHeaderUint(dst []byte, key string, n uint64) []byte {
	dst = append(dst, key...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, '\n')
}

// AppendBody ends a frame: its content-length header, the empty line, the
// body and the NUL.
func AppendBody(dst, body []byte) []byte {
	dst = AppendHeaderUint(dst, "content-length", uint64(len(body)))
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, 0)
}

// appendRaw appends an unescaped name or value; a LF or CR, which no
// unescaped frame can carry, becomes a space.
func appendRaw[S string | []byte](dst []byte, s S) []byte {
	start := len(dst)
	dst = append(dst, s...)
	for i := start; i < len(dst); i++ {
		if dst[i] == '\n' || dst[i] == '\r' {
			dst[i] = ' '
		}
	}
	return dst
}

// appendEscaped appends s with the escapes of version v (1.1 has no \r:
// a CR becomes a space there).
func appendEscaped[S string | []byte](dst []byte, v Version, s S) []byte {
	plain := 0
	for plain < len(s) {
		c := s[plain]
		if c == '\n' || c == '\r' || c == ':' || c == '\\' {
			break
		}
		plain++
	}
	dst = append(dst, s[:plain]...)
	for i := plain; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n':
			dst = append(dst, '\\', 'n')
		case ':':
			dst = append(dst, '\\', 'c')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\r':
			if v >= V12 {
				dst = append(dst, '\\', 'r')
			} else {
				dst = append(dst, ' ')
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
