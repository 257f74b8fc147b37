package natsgw

import "strconv"

// Fixed server lines.
var (
	pingLine = []byte("PING\r\n")
	pongLine = []byte("PONG\r\n")
	okLine   = []byte("+OK\r\n")
	crlf     = []byte("\r\n")
)

// AppendMsgLine appends the control line of a message delivery to dst and
// returns it: "MSG <subject> <sid> [reply] <size>\r\n" without headers, or
// "HMSG <subject> <sid> [reply] <header size> <total size>\r\n" when
// headerLen > 0. The caller sends the header block and payload after it,
// then CRLF; they are kept apart so that a payload can be written by
// reference (writev) instead of being copied behind the line.
func AppendMsgLine(dst []byte, subject []byte, sid string, reply []byte, headerLen, payloadLen int) []byte {
	if headerLen > 0 {
		dst = append(dst, "HMSG "...)
	} else {
		dst = append(dst, "MSG "...)
	}
	dst = append(dst, subject...)
	dst = append(dst, ' ')
	dst = append(dst, sid...)
	dst = append(dst, ' ')
	if len(reply) > 0 {
		dst = append(dst, reply...)
		dst = append(dst, ' ')
	}
	if headerLen > 0 {
		dst = strconv.AppendInt(dst, int64(headerLen), 10)
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(headerLen+payloadLen), 10)
	return append(dst, '\r', '\n')
}

// AppendErr appends "-ERR '<text>'\r\n" to dst.
func AppendErr(dst []byte, text string) []byte {
	dst = append(dst, "-ERR '"...)
	dst = append(dst, text...)
	return append(dst, "'\r\n"...)
}

// noRespondersHeader is the header block of the status message a requester
// gets when no one subscribes to the subject it asked on.
var noRespondersHeader = []byte("NATS/1.0 503\r\n\r\n")
