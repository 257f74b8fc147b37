package broker

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	ss := streamState{first: 7, last: 99, deleted: []uint64{9, 12, 50}}
	got, err := decodeStreamState(encodeStreamState(ss))
	if err != nil || !reflect.DeepEqual(got, ss) {
		t.Fatalf("stream state %+v, %v", got, err)
	}
	cs := consumerState{next: 10, delivered: 12, ackFloor: 6, ackFloorC: 6,
		pending: []pendingState{{seq: 7, cseq: 11, deliveries: 2, time: 123}, {seq: 9, cseq: 12, deliveries: 1, time: 456}}}
	gotc, err := decodeConsumerState(encodeConsumerState(&cs))
	if err != nil || !reflect.DeepEqual(gotc, cs) {
		t.Fatalf("consumer state %+v, %v", gotc, err)
	}
	cs.owed = []owedState{{next: 3, end: 5}, {next: 20, end: 31}}
	gotc, err = decodeConsumerState(encodeConsumerState(&cs))
	if err != nil || !reflect.DeepEqual(gotc, cs) {
		t.Fatalf("consumer state with owed ranges %+v, %v", gotc, err)
	}
}

// TestConsumerStateVersion1 reads a state file written before consumers
// owed ranges: the same fields, no owed count.
func TestConsumerStateVersion1(t *testing.T) {
	cs := consumerState{next: 10, delivered: 12, ackFloor: 6, ackFloorC: 6,
		pending: []pendingState{{seq: 7, cseq: 11, deliveries: 2, time: 123}}}
	b := encodeConsumerState(&cs)
	// Version 1 is version 2 without the owed count before the checksum.
	v1 := append([]byte(nil), b[:len(b)-8]...)
	v1[4] = 1
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	got, err := decodeConsumerState(v1)
	if err != nil || !reflect.DeepEqual(got, cs) {
		t.Fatalf("version 1 state %+v, %v", got, err)
	}
	bad := append([]byte(nil), b[:len(b)-4]...)
	bad[4] = 3
	bad = binary.LittleEndian.AppendUint32(bad, crc32.Checksum(bad, castagnoli))
	if _, err := decodeConsumerState(bad); !errors.Is(err, ErrBadState) {
		t.Fatalf("version 3: %v", err)
	}
}

func TestStateDamageIsReported(t *testing.T) {
	b := encodeStreamState(streamState{first: 1, last: 2, deleted: []uint64{2}})
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x40
		if _, err := decodeStreamState(bad); !errors.Is(err, ErrBadState) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}
	if _, err := decodeStreamState(b[:len(b)-1]); !errors.Is(err, ErrBadState) {
		t.Fatalf("short: %v", err)
	}
}

// FuzzDecodeState checks that state files from disk never crash the
// decoder and that what decodes re-encodes to the same bytes.
func FuzzDecodeState(f *testing.F) {
	f.Add(encodeStreamState(streamState{first: 1, last: 5, deleted: []uint64{3}}))
	f.Add(encodeConsumerState(&consumerState{next: 4, delivered: 3, pending: []pendingState{{seq: 2, cseq: 2, deliveries: 1}}}))
	f.Add(encodeConsumerState(&consumerState{next: 40, delivered: 3, owed: []owedState{{next: 5, end: 9}, {next: 12, end: 40}}}))
	f.Add([]byte("LGSS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ss, err := decodeStreamState(b); err == nil {
			if again := encodeStreamState(ss); string(again) != string(b) {
				t.Fatalf("stream state does not round-trip")
			}
		}
		if cs, err := decodeConsumerState(b); err == nil {
			again := encodeConsumerState(&cs)
			if b[4] == consumerStateVersion && string(again) != string(b) {
				t.Fatalf("consumer state does not round-trip")
			}
			// An older version is rewritten in the newest, which must
			// say the same.
			if cs2, err := decodeConsumerState(again); err != nil || !reflect.DeepEqual(cs2, cs) {
				t.Fatalf("consumer state rewritten as %+v, %v; was %+v", cs2, err, cs)
			}
		}
	})
}
