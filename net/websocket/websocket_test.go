package websocket

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const upgradeReq = "GET /mqtt HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\n\r\n"

func TestUpgradeAnswersWithTheAcceptKey(t *testing.T) {
	n, resp, err := Upgrade([]byte(upgradeReq+"extra"), "mqtt")
	if err != nil || n != len(upgradeReq) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	// The accept value of RFC 6455 §1.3's example key.
	for _, want := range []string{"101 Switching Protocols", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Protocol: mqtt"} {
		if !strings.Contains(string(resp), want) {
			t.Errorf("response lacks %q:\n%s", want, resp)
		}
	}
	// Of several subprotocols, the first the client offers is chosen.
	if _, resp, _ := Upgrade([]byte(upgradeReq), "v12.stomp", "mqttv3.1", "mqtt"); !strings.Contains(string(resp), "Sec-WebSocket-Protocol: mqttv3.1\r\n") {
		t.Errorf("first offered of several: %s", resp)
	}
	if _, resp, _ := Upgrade([]byte(upgradeReq), "v12.stomp"); strings.Contains(string(resp), "Sec-WebSocket-Protocol") {
		t.Errorf("none offered: %s", resp)
	}
	if _, _, err := Upgrade([]byte(upgradeReq[:40]), "mqtt"); !errors.Is(err, ErrIncomplete) {
		t.Errorf("partial request: %v", err)
	}
	bad := strings.Replace(upgradeReq, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 1)
	if _, resp, err := Upgrade([]byte(bad), "mqtt"); !errors.Is(err, ErrBadUpgrade) || !bytes.Contains(resp, []byte("426")) {
		t.Errorf("old version: %v %s", err, resp)
	}
	if _, _, err := Upgrade([]byte(strings.Repeat("x", maxRequest+1)), "mqtt"); !errors.Is(err, ErrBadUpgrade) {
		t.Errorf("endless request: %v", err)
	}
}

// clientFrame builds a masked client frame.
func clientFrame(op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	mask := []byte{1, 2, 3, 4}
	out = append(out, mask...)
	for i, c := range payload {
		out = append(out, c^mask[i&3])
	}
	return out
}

func TestDecodeFrames(t *testing.T) {
	big := bytes.Repeat([]byte("m"), 70000)
	for _, payload := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte("x"), 300), big} {
		in := clientFrame(OpBinary, true, payload)
		var f Frame
		n, err := Decode(in, 1<<20, &f)
		if err != nil || n != len(in) || !f.Fin || f.Opcode != OpBinary || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("%d bytes: n=%d err=%v", len(payload), n, err)
		}
		if _, err := Decode(in[:len(in)-1], 1<<20, &f); len(payload) > 0 && !errors.Is(err, ErrIncomplete) {
			t.Fatalf("short frame: %v", err)
		}
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"unmasked", []byte{0x82, 0x01, 'x'}, ErrUnmasked},
		{"reserved bits", []byte{0xC2, 0x80, 0, 0, 0, 0}, ErrBadFrame},
		{"unknown opcode", []byte{0x83, 0x80, 0, 0, 0, 0}, ErrBadFrame},
		{"fragmented ping", []byte{0x09, 0x80, 0, 0, 0, 0}, ErrBadFrame},
		{"too large", clientFrame(OpBinary, true, big), ErrTooLarge},
	}
	for _, tc := range tests {
		var f Frame
		if _, err := Decode(tc.in, 1024, &f); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := AppendFrame(nil, OpBinary, make([]byte, n))
		if f[0] != 0x82 || len(f)-n > 10 {
			t.Fatalf("%d: header % x", n, f[:2])
		}
	}
}

// FuzzDecode: arbitrary client bytes never crash the upgrade parser or
// the frame decoder, and a decoded frame never claims more than it had.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(upgradeReq))
	f.Add(clientFrame(OpBinary, true, []byte("mqtt")))
	f.Add(clientFrame(OpClose, true, []byte{3, 232}))
	f.Add([]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		if n, _, err := Upgrade(in, "mqtt"); err == nil && n > len(in) {
			t.Fatalf("upgrade used %d of %d bytes", n, len(in))
		}
		var fr Frame
		buf := append([]byte(nil), in...)
		for len(buf) > 0 {
			n, err := Decode(buf, 1<<16, &fr)
			if err != nil {
				return
			}
			if n <= 0 || n > len(buf) {
				t.Fatalf("decode used %d of %d bytes", n, len(buf))
			}
			buf = buf[n:]
		}
	})
}
