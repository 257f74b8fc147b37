package packet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// FuzzDecode decodes arbitrary bytes at every level. Decoding must never
// panic, must answer with a packet, ErrIncomplete or an *Error, and a
// packet it accepts must encode to bytes that decode to the same packet and
// encode again to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, level := range []Level{0, Level311, Level5} {
			d := Decoder{Level: level, MaxPacketSize: 1 << 16}
			var p Packet
			n, err := d.Decode(data, &p)
			if errors.Is(err, ErrIncomplete) {
				if n != 0 && n <= len(data) {
					t.Fatalf("level %v: incomplete with need %d but %d bytes given", level, n, len(data))
				}
				continue
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || n != 0 {
					t.Fatalf("level %v: Decode = %d, %v; want an *Error and 0", level, n, err)
				}
				continue
			}
			if n < 2 || n > len(data) {
				t.Fatalf("level %v: Decode consumed %d of %d bytes", level, n, len(data))
			}
			enc := AppendPacket(nil, d.Level, &p)
			d2 := Decoder{Level: level}
			var p2 Packet
			n2, err := d2.Decode(enc, &p2)
			if err != nil || n2 != len(enc) {
				t.Fatalf("level %v: re-encoded %v as % x; decoding it: %d, %v", level, p.Type, enc, n2, err)
			}
			if want, got := content(&p), content(&p2); p.Type != p2.Type || !reflect.DeepEqual(want, got) {
				t.Fatalf("level %v: round trip changed the packet\n%+v\nto\n%+v", level, want, got)
			}
			if again := AppendPacket(nil, d.Level, &p2); !bytes.Equal(again, enc) {
				t.Fatalf("level %v: encoding is not stable:\n% x\n% x", level, enc, again)
			}
		}
	})
}

// fuzzSeeds are the packets of the other tests: every packet type at both
// levels, the specification's examples and each malformed case.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, tc := range roundTripCases() {
		wire := AppendPacket(nil, tc.level, &tc.p)
		if len(wire) > 4096 {
			continue
		}
		seeds = append(seeds, wire)
	}
	for _, tc := range specPackets() {
		seeds = append(seeds, tc.wire)
	}
	for _, tc := range malformedCases() {
		seeds = append(seeds, tc.in)
	}
	// Crafted 5.0 CONNECT properties, the class of bugs other brokers
	// shipped as CVEs: a property length far past the packet, a property
	// given twice, a user property whose key claims 65,535 bytes.
	head := []byte{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c}
	id := []byte{0x00, 0x01, 'c'}
	for _, props := range [][]byte{
		{0xff, 0xff, 0xff, 0x7f},
		{0x0a, 0x11, 0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02},
		{0x05, 0x26, 0xff, 0xff, 0x00, 0x00},
	} {
		body := append(append(append([]byte(nil), head...), props...), id...)
		seeds = append(seeds, append([]byte{0x10, byte(len(body))}, body...))
	}
	return seeds
}

// TestWriteFuzzCorpus writes the seeds to testdata/fuzz/FuzzDecode, where
// CI's fuzzing starts from them. Run with LEDGE_WRITE_CORPUS=1 after
// changing the seeds.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("LEDGE_WRITE_CORPUS") == "" {
		t.Skip("set LEDGE_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, seed := range fuzzSeeds() {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(seed)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
