package broker

import (
	"errors"
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
	f.Add([]byte("LGSS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ss, err := decodeStreamState(b); err == nil {
			if again := encodeStreamState(ss); string(again) != string(b) {
				t.Fatalf("stream state does not round-trip")
			}
		}
		if cs, err := decodeConsumerState(b); err == nil {
			if again := encodeConsumerState(&cs); string(again) != string(b) {
				t.Fatalf("consumer state does not round-trip")
			}
		}
	})
}
