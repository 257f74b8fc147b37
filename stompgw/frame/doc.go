// Package frame is the STOMP 1.0, 1.1 and 1.2 frame codec of ledge's STOMP
// gateway: it decodes frames in place from a connection's input and
// appends encoded frames to caller-owned buffers, with no I/O and no
// allocation per frame.
//
// # Wire format
//
// A frame is a command line, header lines, an empty line, a body and a NUL
// octet:
//
//	COMMAND EOL
//	name:value EOL ...
//	EOL
//	body NUL
//
// EOL is LF, optionally preceded by CR (STOMP 1.2; the decoder accepts CR
// LF from every version, as brokers do). EOLs between frames are
// heart-beats; [SkipEOL] consumes them. When a content-length header is
// present the body is exactly that many octets and may hold NULs (binary
// bodies); otherwise it runs to the first NUL. Of repeated headers the
// first counts (STOMP 1.2 §Repeated Header Entries); later ones stay in
// [Frame.Headers] for a caller that wants them.
//
// From STOMP 1.1 on, header names and values escape CR (1.2), LF, colon and
// backslash as \r, \n, \c and \\; any other backslash sequence is a
// protocol error. CONNECT, STOMP and CONNECTED frames are never escaped,
// for compatibility with 1.0, whose frames are never escaped at all. A
// 1.0 value cannot hold a line feed; the encoder replaces one with a space
// rather than break the frame.
//
// # Ownership
//
// [Decode] unescapes headers in place, inside the input it was given, and
// only once the whole frame is there: an incomplete frame is left
// untouched, to be presented again with more bytes. The decoded [Frame]'s
// slices alias that input and are valid while it is.
package frame
