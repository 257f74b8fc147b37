package natsgw

import (
	"bytes"
	"strconv"

	"github.com/ledgemq/ledge/log"
)

// A NATS header block is "NATS/1.0[ <status>[ <description>]]\r\n", then
// lines "Key: Value\r\n", then an empty line. The stream stores the lines
// as log.Headers and rebuilds the block when it delivers, so a message that
// crosses to MQTT or AMQP carries its headers in that protocol's terms.

var (
	headerVersion = []byte("NATS/1.0")
	hdrMsgID      = []byte("Nats-Msg-Id")
	hdrExpStream  = []byte("Nats-Expected-Stream")
	hdrExpLastSeq = []byte("Nats-Expected-Last-Sequence")
	hdrExpSubjSeq = []byte("Nats-Expected-Last-Subject-Sequence")
	hdrExpLastID  = []byte("Nats-Expected-Last-Msg-Id")
	hdrNatsPrefix = []byte("Nats-")
)

// unsupportedHeaders are the publish headers that ask nats-server for
// something ledge's streams do not do; a publish carrying one is refused
// with nats-server's answer for a stream that does not allow it, instead
// of being stored as if the header meant nothing.
var unsupportedHeaders = []struct {
	key     string
	code    int
	errCode int
	descr   string
}{
	{"Nats-Rollup", 500, 10111, "rollup not permitted"},
	{"Nats-TTL", 400, 10166, "per-message TTL is disabled"},
	{"Nats-Incr", 400, 10168, "message counters is disabled"},
	{"Nats-Batch-Id", 400, 10174, "atomic publish is disabled"},
	{"Nats-Schedule", 400, 10188, "message schedules is disabled"},
	{"Nats-Expected-Last-Subject-Sequence-Subject", 400, 10003, "ledge does not support Nats-Expected-Last-Subject-Sequence-Subject"},
}

// ParseHeaders appends the key/value lines of the NATS header block b to dst
// and returns it. Keys and values are slices of b, trimmed of spaces;
// nothing is copied. A block that does not start with the version line, or
// a line without a colon, gives ok false.
func ParseHeaders(dst []log.Header, b []byte) (hdrs []log.Header, ok bool) {
	if !bytes.HasPrefix(b, headerVersion) {
		return dst, false
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return dst, false
	}
	b = b[i+1:]
	for len(b) > 0 {
		i = bytes.IndexByte(b, '\n')
		var line []byte
		if i < 0 {
			line, b = b, nil
		} else {
			line, b = b[:i], b[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		if c < 0 {
			return dst, false
		}
		key := bytes.TrimSpace(line[:c])
		if len(key) == 0 {
			return dst, false
		}
		dst = append(dst, log.Header{Key: key, Value: bytes.TrimSpace(line[c+1:])})
	}
	return dst, true
}

// appendHeaderBlock appends a header block with the given status line
// ("" for none, else e.g. "404 No Messages") and headers to dst.
func appendHeaderBlock(dst []byte, status string, hdrs []log.Header) []byte {
	dst = append(dst, headerVersion...)
	if status != "" {
		dst = append(dst, ' ')
		dst = append(dst, status...)
	}
	dst = append(dst, crlf...)
	for _, h := range hdrs {
		dst = append(dst, h.Key...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, crlf...)
	}
	return append(dst, crlf...)
}

// appendHeaderLine appends one "Key: Value\r\n" line.
func appendHeaderLine(dst []byte, key string, value []byte) []byte {
	dst = append(dst, key...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, crlf...)
}

// appendHeaderInt appends one "Key: <n>\r\n" line.
func appendHeaderInt(dst []byte, key string, n int64) []byte {
	dst = append(dst, key...)
	dst = append(dst, ": "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, crlf...)
}

// parseUint parses a decimal without allocating; ok is false for anything
// else, an empty string included.
func parseUint(b []byte) (n uint64, ok bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
