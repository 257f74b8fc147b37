// Package websocket is the server side of RFC 6455 as a pure codec: it
// reads the HTTP upgrade request and answers it, and decodes and encodes
// frames, with no I/O of its own, so that a protocol gateway can run over
// WebSocket on ledge's event loops (MQTT for browser dashboards). It
// carries binary messages; text frames are accepted as bytes too.
package websocket

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Errors a connection is closed for.
var (
	ErrIncomplete   = errors.New("websocket: incomplete")
	ErrBadUpgrade   = errors.New("websocket: bad upgrade request")
	ErrUnmasked     = errors.New("websocket: client frame not masked")
	ErrBadFrame     = errors.New("websocket: bad frame")
	ErrTooLarge     = errors.New("websocket: frame too large")
	ErrClosedByPeer = errors.New("websocket: closed by peer")
)

// Opcodes of RFC 6455 §5.2.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// maxRequest bounds the upgrade request a client may send.
const maxRequest = 8 << 10

// acceptGUID is the fixed string of RFC 6455 §1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Upgrade parses the HTTP upgrade request at the start of in. It returns
// how many bytes it used and the response to send: 101 Switching Protocols,
// choosing the first of subprotocols that the client offers (or none).
// ErrIncomplete asks for more bytes; any other error comes with a 400
// response to send before closing.
func Upgrade(in []byte, subprotocols ...string) (n int, resp []byte, err error) {
	end := bytes.Index(in, []byte("\r\n\r\n"))
	if end < 0 {
		if len(in) > maxRequest {
			return 0, badRequest, fmt.Errorf("%w: request over %d bytes", ErrBadUpgrade, maxRequest)
		}
		return 0, nil, ErrIncomplete
	}
	head := string(in[:end])
	lines := strings.Split(head, "\r\n")
	if f := strings.Fields(lines[0]); len(f) != 3 || f[0] != "GET" || !strings.HasPrefix(f[2], "HTTP/1.1") {
		return 0, badRequest, fmt.Errorf("%w: request line %q", ErrBadUpgrade, lines[0])
	}
	var key, upgrade, connection, version, protocols string
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "sec-websocket-key":
			key = v
		case "upgrade":
			upgrade = v
		case "connection":
			connection = v
		case "sec-websocket-version":
			version = v
		case "sec-websocket-protocol":
			protocols = v
		}
	}
	switch {
	case !strings.EqualFold(upgrade, "websocket"):
		return 0, badRequest, fmt.Errorf("%w: no Upgrade: websocket", ErrBadUpgrade)
	case !containsToken(connection, "upgrade"):
		return 0, badRequest, fmt.Errorf("%w: no Connection: Upgrade", ErrBadUpgrade)
	case version != "13":
		return 0, []byte("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"), fmt.Errorf("%w: version %q", ErrBadUpgrade, version)
	case key == "":
		return 0, badRequest, fmt.Errorf("%w: no Sec-WebSocket-Key", ErrBadUpgrade)
	}
	h := sha1.Sum([]byte(key + acceptGUID))
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
	b.WriteString("\r\n")
	for _, p := range subprotocols {
		if p != "" && containsToken(protocols, p) {
			b.WriteString("Sec-WebSocket-Protocol: " + p + "\r\n")
			break
		}
	}
	b.WriteString("\r\n")
	return end + 4, []byte(b.String()), nil
}

var badRequest = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

func containsToken(list, token string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// Frame is one decoded frame. Payload is unmasked in place: it aliases the
// input given to Decode.
type Frame struct {
	Fin     bool
	Opcode  byte
	Payload []byte
}

// Decode decodes the client frame at the start of in, unmasking its
// payload in place, and returns how many bytes it used. It answers
// ErrIncomplete until the whole frame is there, and refuses frames whose
// payload exceeds maxPayload before reading them.
func Decode(in []byte, maxPayload int, f *Frame) (int, error) {
	if len(in) < 2 {
		return 0, ErrIncomplete
	}
	b0, b1 := in[0], in[1]
	if b0&0x70 != 0 {
		return 0, fmt.Errorf("%w: reserved bits set", ErrBadFrame)
	}
	if b1&0x80 == 0 {
		return 0, ErrUnmasked // RFC 6455 §5.1: the server must close
	}
	f.Fin, f.Opcode = b0&0x80 != 0, b0&0x0F
	switch f.Opcode {
	case OpContinuation, OpText, OpBinary:
	case OpClose, OpPing, OpPong:
		if !f.Fin || b1&0x7F > 125 {
			return 0, fmt.Errorf("%w: control frame fragmented or too long", ErrBadFrame)
		}
	default:
		return 0, fmt.Errorf("%w: opcode %d", ErrBadFrame, f.Opcode)
	}
	n := uint64(b1 & 0x7F)
	pos := 2
	switch n {
	case 126:
		if len(in) < 4 {
			return 0, ErrIncomplete
		}
		n, pos = uint64(binary.BigEndian.Uint16(in[2:])), 4
	case 127:
		if len(in) < 10 {
			return 0, ErrIncomplete
		}
		n, pos = binary.BigEndian.Uint64(in[2:]), 10
	}
	if n > uint64(maxPayload) {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	if len(in) < pos+4+int(n) {
		return 0, ErrIncomplete
	}
	mask := in[pos : pos+4]
	p := in[pos+4 : pos+4+int(n)]
	for i := range p {
		p[i] ^= mask[i&3]
	}
	f.Payload = p
	return pos + 4 + int(n), nil
}

// AppendFrame appends a server frame (unmasked, final) with opcode and
// payload to dst.
func AppendFrame(dst []byte, opcode byte, payload []byte) []byte {
	dst = append(dst, 0x80|opcode)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}
