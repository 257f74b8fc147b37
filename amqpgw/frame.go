package amqpgw

import (
	"encoding/binary"
	"errors"
)

// The AMQP 0-9-1 frame (spec 4.2.3): type (1 octet), channel (2), payload
// size (4), payload, and the frame-end octet 0xCE. The decoder hands out
// slices of the input; nothing is copied or allocated.
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE

	frameOverhead = 8 // header (7) and frame-end (1)
	// frameMinSize is the smallest frame-max a peer may set (spec 4.2.3).
	frameMinSize = 4096
)

// protocolHeader opens every AMQP 0-9-1 connection.
var protocolHeader = []byte{'A', 'M', 'Q', 'P', 0, 0, 9, 1}

// Reply codes of the spec (1.2 and the constants class).
const (
	replySuccess         = 200
	codeContentTooLarge  = 311
	codeNoRoute          = 312
	codeNoConsumers      = 313
	codeConnectionForced = 320
	codeInvalidPath      = 402
	codeAccessRefused    = 403
	codeNotFound         = 404
	codeResourceLocked   = 405
	codePrecondition     = 406
	codeFrameError       = 501
	codeSyntaxError      = 502
	codeCommandInvalid   = 503
	codeChannelError     = 504
	codeUnexpectedFrame  = 505
	codeResourceError    = 506
	codeNotAllowed       = 530
	codeNotImplemented   = 540
	codeInternalError    = 541
)

// errIncomplete says the input does not yet hold a whole frame.
var errIncomplete = errors.New("amqp: incomplete frame")

// Frame is one decoded frame; Payload points into the input.
type Frame struct {
	Type    byte
	Channel uint16
	Payload []byte
}

// frameError is a malformed frame: the connection closes with Code.
type frameError struct {
	Code int
	Text string
}

func (e *frameError) Error() string { return e.Text }

// decodeFrame reads one frame from in. It returns the bytes used, or
// errIncomplete, or a *frameError for a frame larger than max or without
// its frame-end octet.
func decodeFrame(in []byte, max int, f *Frame) (int, error) {
	if len(in) < 7 {
		return 0, errIncomplete
	}
	size := int(binary.BigEndian.Uint32(in[3:7]))
	if size > max-frameOverhead || size < 0 {
		return 0, &frameError{codeFrameError, "FRAME_ERROR - frame size exceeds frame-max"}
	}
	if len(in) < 7+size+1 {
		return 0, errIncomplete
	}
	if in[7+size] != frameEnd {
		return 0, &frameError{codeFrameError, "FRAME_ERROR - missing frame-end octet"}
	}
	f.Type = in[0]
	f.Channel = binary.BigEndian.Uint16(in[1:3])
	f.Payload = in[7 : 7+size]
	return 7 + size + 1, nil
}

// appendFrameStart appends a frame header whose size is patched by
// finishFrame; it returns the offset of the header.
func appendFrameStart(dst []byte, typ byte, ch uint16) ([]byte, int) {
	at := len(dst)
	dst = append(dst, typ, byte(ch>>8), byte(ch), 0, 0, 0, 0)
	return dst, at
}

// finishFrame sets the size of the frame that starts at at and appends
// the frame-end octet.
func finishFrame(dst []byte, at int) []byte {
	binary.BigEndian.PutUint32(dst[at+3:], uint32(len(dst)-at-7))
	return append(dst, frameEnd)
}

// appendHeartbeat appends a heartbeat frame (always channel 0).
func appendHeartbeat(dst []byte) []byte {
	return append(dst, frameHeartbeat, 0, 0, 0, 0, 0, 0, frameEnd)
}

// appendContent appends a content header frame with the properties as
// they came (flags and list, untouched) and the body split into frames
// of at most frameMax bytes.
func appendContent(dst []byte, ch uint16, frameMax int, props, body []byte) []byte {
	dst, at := appendFrameStart(dst, frameHeader, ch)
	dst = append(dst, 0, classBasic, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(body)))
	if len(props) < 2 {
		dst = append(dst, 0, 0)
	} else {
		dst = append(dst, props...)
	}
	dst = finishFrame(dst, at)
	chunk := frameMax - frameOverhead
	for len(body) > 0 {
		n := min(len(body), chunk)
		dst, at = appendFrameStart(dst, frameBody, ch)
		dst = append(dst, body[:n]...)
		dst = finishFrame(dst, at)
		body = body[n:]
	}
	return dst
}
