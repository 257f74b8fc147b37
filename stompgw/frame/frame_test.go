package frame

import (
	"bytes"
	"errors"
	"testing"
)

var lim = Limits{MaxFrame: 1 << 16, MaxHeaders: 64}

func decodeString(t *testing.T, in string, v Version) (Frame, int, error) {
	t.Helper()
	var f Frame
	n, err := Decode([]byte(in), v, lim, &f)
	return f, n, err
}

func TestDecodeFrames(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		v       Version
		cmd     Command
		headers [][2]string
		body    string
	}{
		{"no headers", "DISCONNECT\n\n\x00", V12, DISCONNECT, nil, ""},
		{"text body", "SEND\ndestination:/queue/a\n\nhello\x00", V12, SEND, [][2]string{{"destination", "/queue/a"}}, "hello"},
		{"CRLF lines", "SEND\r\ndestination:/queue/a\r\n\r\nhi\x00", V12, SEND, [][2]string{{"destination", "/queue/a"}}, "hi"},
		{"binary body with NULs", "SEND\ncontent-length:5\n\na\x00b\x00c\x00", V12, SEND, [][2]string{{"content-length", "5"}}, "a\x00b\x00c"},
		{"empty body by length", "SEND\ncontent-length:0\n\n\x00", V11, SEND, [][2]string{{"content-length", "0"}}, ""},
		{"escapes in 1.2", "SEND\na\\cb:x\\ny\\\\z\\r\n\n\x00", V12, SEND, [][2]string{{"a:b", "x\ny\\z\r"}}, ""},
		{"escapes in 1.1", "MESSAGE\nk:v\\c1\n\n\x00", V11, MESSAGE, [][2]string{{"k", "v:1"}}, ""},
		{"no escapes in 1.0", "SEND\nk:a\\cb\n\n\x00", V10, SEND, [][2]string{{"k", "a\\cb"}}, ""},
		{"no escapes in CONNECT", "CONNECT\nlogin:a\\cb\n\n\x00", V12, CONNECT, [][2]string{{"login", "a\\cb"}}, ""},
		{"colon in value", "SEND\nk:a:b\n\n\x00", V10, SEND, [][2]string{{"k", "a:b"}}, ""},
		{"empty value", "SEND\nk:\n\n\x00", V12, SEND, [][2]string{{"k", ""}}, ""},
		{"spaces kept", "SEND\n k : v \n\n\x00", V12, SEND, [][2]string{{" k ", " v "}}, ""},
		{"repeated header", "SEND\nk:1\nk:2\n\n\x00", V12, SEND, [][2]string{{"k", "1"}, {"k", "2"}}, ""},
		{"unknown command", "FOO\n\n\x00", V12, Unknown, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, err := decodeString(t, tt.in, tt.v)
			if err != nil || n != len(tt.in) {
				t.Fatalf("n=%d err=%v", n, err)
			}
			if f.Command != tt.cmd || string(f.Body) != tt.body {
				t.Fatalf("command %v body %q", f.Command, f.Body)
			}
			if len(f.Headers) != len(tt.headers) {
				t.Fatalf("headers %d, want %d", len(f.Headers), len(tt.headers))
			}
			for i, h := range tt.headers {
				if string(f.Headers[i].Key) != h[0] || string(f.Headers[i].Value) != h[1] {
					t.Errorf("header %d: %q:%q, want %q:%q", i, f.Headers[i].Key, f.Headers[i].Value, h[0], h[1])
				}
			}
		})
	}
}

func TestFirstOfRepeatedHeadersCounts(t *testing.T) {
	f, _, err := decodeString(t, "SEND\nk:1\nk:2\ncontent-length:1\ncontent-length:9\n\nx\x00", V12)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("k"); string(v) != "1" {
		t.Errorf("k = %q", v)
	}
	if f.ContentLength != 1 || string(f.Body) != "x" {
		t.Errorf("content-length %d body %q", f.ContentLength, f.Body)
	}
}

func TestDecodeErrors(t *testing.T) {
	small := Limits{MaxFrame: 64, MaxHeaders: 3}
	tests := []struct {
		name string
		in   string
		v    Version
		lim  Limits
		want *Error
	}{
		{"bad escape", "SEND\nk:\\t\n\n\x00", V12, lim, errBadEscape},
		{"escape at end", "SEND\nk:a\\\n\n\x00", V11, lim, errBadEscape},
		{"no colon", "SEND\nkv\n\n\x00", V12, lim, errBadHeader},
		{"empty name", "SEND\n:v\n\n\x00", V12, lim, errEmptyName},
		{"bad content-length", "SEND\ncontent-length:x\n\n\x00", V12, lim, errBadLength},
		{"negative content-length", "SEND\ncontent-length:-1\n\n\x00", V12, lim, errBadLength},
		{"no NUL after body", "SEND\ncontent-length:1\n\nab\x00", V12, lim, errNoNUL},
		{"too many headers", "SEND\na:1\nb:2\nc:3\nd:4\n\n\x00", V12, small, errTooManyHdrs},
		{"body too large", "SEND\n\n" + string(bytes.Repeat([]byte("x"), 100)), V12, small, errTooLarge},
		{"length too large", "SEND\ncontent-length:1000\n\n", V12, small, errTooLarge},
		{"endless header", "SEND\n" + string(bytes.Repeat([]byte("x"), 100)), V12, small, errTooLarge},
		{"control in command", "SE\x01ND\n\n\x00", V12, lim, errBinaryCommand},
		{"empty command", "\r\n\n\x00", V12, lim, errNoCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Frame
			_, err := Decode([]byte(tt.in), tt.v, tt.lim, &f)
			var fe *Error
			if !errors.As(err, &fe) || fe != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// A frame cut at any byte is incomplete and left as it was; the whole
// frame then decodes.
func TestSplitAtEveryByte(t *testing.T) {
	frames := []string{
		"SEND\r\ndestination:/queue/a\\cb\r\ncontent-length:3\r\n\r\na\x00b\x00",
		"SEND\ndestination:/topic/x\nreceipt:7\n\nbody\x00",
		"MESSAGE\nk:\\\\\n\n\x00",
	}
	for _, in := range frames {
		for cut := 0; cut < len(in); cut++ {
			part := []byte(in[:cut])
			orig := string(part)
			var f Frame
			n, err := Decode(part, V12, lim, &f)
			if err != ErrIncomplete || n != 0 || string(part) != orig {
				t.Fatalf("%q cut at %d: n=%d err=%v, input changed %v", in, cut, n, err, string(part) != orig)
			}
		}
		var f Frame
		if n, err := Decode([]byte(in), V12, lim, &f); err != nil || n != len(in) {
			t.Fatalf("%q whole: n=%d err=%v", in, n, err)
		}
	}
}

func TestSkipEOL(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{{"", 0}, {"\n", 1}, {"\r\n\n", 3}, {"\r", 0}, {"\n\r", 1}, {"\nSEND", 1}, {"\r\nx", 2}} {
		if got := SkipEOL([]byte(tt.in)); got != tt.want {
			t.Errorf("SkipEOL(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// What the encoder writes, the decoder reads back, for every version.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	values := []string{"plain", "a:b", "line\nbreak", `back\slash`, "cr\rhere", ""}
	for _, v := range []Version{V10, V11, V12} {
		for _, val := range values {
			buf := AppendCommand(nil, MESSAGE)
			buf = AppendHeader(buf, v, MESSAGE, "key:"+val, []byte(val))
			buf = AppendBody(buf, []byte("b\x00dy"))
			var f Frame
			n, err := Decode(buf, v, lim, &f)
			if err != nil || n != len(buf) {
				t.Fatalf("%v %q: n=%d err=%v", v, val, n, err)
			}
			want := val
			switch {
			case v == V10:
				want = string(bytes.ReplaceAll(bytes.ReplaceAll([]byte(val), []byte("\n"), []byte(" ")), []byte("\r"), []byte(" ")))
			case v == V11:
				want = string(bytes.ReplaceAll([]byte(val), []byte("\r"), []byte(" ")))
			}
			if got, ok := f.Get("key:" + want); v != V10 && (!ok || string(got) != want) {
				t.Errorf("%v %q: got %q (found %v) in %q", v, val, got, ok, buf)
			}
			if string(f.Body) != "b\x00dy" {
				t.Errorf("%v body %q", v, f.Body)
			}
		}
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]Version{"1.0": V10, "1.1": V11, "1.2": V12} {
		if v, ok := ParseVersion(s); !ok || v != want || v.String() != s {
			t.Errorf("%s: %v %v", s, v, ok)
		}
	}
	if _, ok := ParseVersion("2.0"); ok {
		t.Error("2.0 accepted")
	}
}

var sendFrame = []byte("SEND\ndestination:/queue/work\ncontent-type:text/plain\npersistent:true\nreceipt:r-17\ncontent-length:128\n\n" +
	string(bytes.Repeat([]byte("x"), 128)) + "\x00")

// Decoding a SEND allocates nothing once the frame's header slice has
// grown.
func TestDecodeSendAllocatesNothing(t *testing.T) {
	var f Frame
	in := make([]byte, len(sendFrame))
	allocs := testing.AllocsPerRun(1000, func() {
		copy(in, sendFrame)
		if _, err := Decode(in, V12, lim, &f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per SEND", allocs)
	}
}

// appendMessage is the MESSAGE a subscriber gets, as the gateway writes it.
func appendMessage(dst []byte, v Version, sub, dest []byte, tag uint64, body []byte) []byte {
	dst = AppendCommand(dst, MESSAGE)
	dst = AppendHeader(dst, v, MESSAGE, "subscription", sub)
	dst = AppendHeader(dst, v, MESSAGE, "destination", dest)
	dst = AppendHeaderUint(dst, "message-id", tag)
	dst = AppendHeader(dst, v, MESSAGE, "content-type", "text/plain")
	return AppendBody(dst, body)
}

func TestEncodeMessageAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 1024)
	body := bytes.Repeat([]byte("x"), 128)
	sub, dest := []byte("sub-0"), []byte("/queue/work")
	allocs := testing.AllocsPerRun(1000, func() {
		buf = appendMessage(buf[:0], V12, sub, dest, 12345, body)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per MESSAGE", allocs)
	}
}

func BenchmarkDecodeSend(b *testing.B) {
	var f Frame
	in := make([]byte, len(sendFrame))
	b.ReportAllocs()
	b.SetBytes(int64(len(sendFrame)))
	for b.Loop() {
		copy(in, sendFrame)
		if _, err := Decode(in, V12, lim, &f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	buf := make([]byte, 0, 1024)
	body := bytes.Repeat([]byte("x"), 128)
	sub, dest := []byte("sub-0"), []byte("/queue/work")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		buf = appendMessage(buf[:0], V12, sub, dest, 12345, body)
	}
}
