package broker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// Files in a stream's folder (docs/FORMAT.md, "Broker state").
const (
	configFile   = "config.json"
	stateFile    = "state"
	logDir       = "log"
	consumersDir = "consumers"
)

// State snapshots are small binary files: a four-byte magic, a version
// byte, the fields in little-endian, and a CRC32C of everything before it.
// They replace the previous snapshot by rename, so a crash leaves either
// the old one or the new one, never a mix.
const stateVersion = 1

// consumerStateVersion is 2 since consumers record the ranges they owe
// after JumpToTail; version 1 files, without them, are still read.
const consumerStateVersion = 2

var (
	streamStateMagic   = [4]byte{'L', 'G', 'S', 'S'}
	consumerStateMagic = [4]byte{'L', 'G', 'C', 'S'}
	castagnoli         = crc32.MakeTable(crc32.Castagnoli)
)

// ErrBadState reports a state file that fails its checks.
var ErrBadState = errors.New("broker: damaged state file")

type streamState struct {
	first, last uint64
	deleted     []uint64 // ascending
}

func encodeStreamState(st streamState) []byte {
	b := make([]byte, 0, 5+8+8+4+8*len(st.deleted)+4)
	b = append(b, streamStateMagic[:]...)
	b = append(b, stateVersion)
	b = binary.LittleEndian.AppendUint64(b, st.first)
	b = binary.LittleEndian.AppendUint64(b, st.last)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.deleted)))
	for _, seq := range st.deleted {
		b = binary.LittleEndian.AppendUint64(b, seq)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeStreamState(b []byte) (streamState, error) {
	var st streamState
	body, _, err := checkState(b, streamStateMagic, 8+8+4, stateVersion)
	if err != nil {
		return st, err
	}
	st.first = binary.LittleEndian.Uint64(body)
	st.last = binary.LittleEndian.Uint64(body[8:])
	n := binary.LittleEndian.Uint32(body[16:])
	body = body[20:]
	if uint64(len(body)) != 8*uint64(n) {
		return st, fmt.Errorf("%w: %d deleted sequences in %d bytes", ErrBadState, n, len(body))
	}
	st.deleted = make([]uint64, n)
	for i := range st.deleted {
		st.deleted[i] = binary.LittleEndian.Uint64(body[8*i:])
	}
	return st, nil
}

func readStreamState(path string) (streamState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return streamState{}, err
	}
	st, err := decodeStreamState(b)
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// consumerState is what a consumer saves of its progress.
type consumerState struct {
	next      uint64 // next stream sequence to deliver for the first time
	delivered uint64 // last consumer sequence given out
	ackFloor  uint64 // stream sequence: everything at or below is acked
	ackFloorC uint64 // consumer sequence of the ack floor
	pending   []pendingState
	owed      []owedState // since version 2
}

// owedState is a range [next, end) the consumer skipped and still owes.
type owedState struct{ next, end uint64 }

type pendingState struct {
	seq, cseq  uint64
	deliveries uint32
	time       int64 // last delivery, Unix nanoseconds
}

const pendingStateSize = 8 + 8 + 4 + 8

func encodeConsumerState(st *consumerState) []byte {
	b := make([]byte, 0, 5+8*4+4+pendingStateSize*len(st.pending)+4+16*len(st.owed)+4)
	b = append(b, consumerStateMagic[:]...)
	b = append(b, consumerStateVersion)
	b = binary.LittleEndian.AppendUint64(b, st.next)
	b = binary.LittleEndian.AppendUint64(b, st.delivered)
	b = binary.LittleEndian.AppendUint64(b, st.ackFloor)
	b = binary.LittleEndian.AppendUint64(b, st.ackFloorC)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.pending)))
	for _, p := range st.pending {
		b = binary.LittleEndian.AppendUint64(b, p.seq)
		b = binary.LittleEndian.AppendUint64(b, p.cseq)
		b = binary.LittleEndian.AppendUint32(b, p.deliveries)
		b = binary.LittleEndian.AppendUint64(b, uint64(p.time))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.owed)))
	for _, o := range st.owed {
		b = binary.LittleEndian.AppendUint64(b, o.next)
		b = binary.LittleEndian.AppendUint64(b, o.end)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeConsumerState(b []byte) (consumerState, error) {
	var st consumerState
	body, version, err := checkState(b, consumerStateMagic, 8*4+4, consumerStateVersion)
	if err != nil {
		return st, err
	}
	st.next = binary.LittleEndian.Uint64(body)
	st.delivered = binary.LittleEndian.Uint64(body[8:])
	st.ackFloor = binary.LittleEndian.Uint64(body[16:])
	st.ackFloorC = binary.LittleEndian.Uint64(body[24:])
	n := binary.LittleEndian.Uint32(body[32:])
	body = body[36:]
	size := pendingStateSize * uint64(n)
	var owed []byte
	switch {
	case version >= 2 && uint64(len(body)) >= size+4:
		owed = body[size:]
		body = body[:size]
	case version >= 2:
		return st, fmt.Errorf("%w: %d pending entries and no owed count in %d bytes", ErrBadState, n, len(body))
	}
	if uint64(len(body)) != size {
		return st, fmt.Errorf("%w: %d pending entries in %d bytes", ErrBadState, n, len(body))
	}
	if owed != nil {
		m := binary.LittleEndian.Uint32(owed)
		owed = owed[4:]
		if uint64(len(owed)) != 16*uint64(m) || m > maxOwed {
			return st, fmt.Errorf("%w: %d owed ranges in %d bytes", ErrBadState, m, len(owed))
		}
		if m > 0 {
			st.owed = make([]owedState, m)
		}
		for i := range st.owed {
			o := owedState{next: binary.LittleEndian.Uint64(owed[16*i:]), end: binary.LittleEndian.Uint64(owed[16*i+8:])}
			if o.next == 0 || o.next >= o.end || (i > 0 && o.next < st.owed[i-1].end) {
				return st, fmt.Errorf("%w: owed range [%d, %d) out of order", ErrBadState, o.next, o.end)
			}
			st.owed[i] = o
		}
	}
	st.pending = make([]pendingState, n)
	for i := range st.pending {
		e := body[pendingStateSize*i:]
		st.pending[i] = pendingState{
			seq:        binary.LittleEndian.Uint64(e),
			cseq:       binary.LittleEndian.Uint64(e[8:]),
			deliveries: binary.LittleEndian.Uint32(e[16:]),
			time:       int64(binary.LittleEndian.Uint64(e[20:])),
		}
	}
	return st, nil
}

// checkState verifies magic, version (1 to newest), length and checksum,
// and returns the fields between the version byte and the checksum, and
// the version.
func checkState(b []byte, magic [4]byte, minBody int, newest byte) ([]byte, byte, error) {
	if len(b) < 5+minBody+4 {
		return nil, 0, fmt.Errorf("%w: %d bytes is too short", ErrBadState, len(b))
	}
	if [4]byte(b[:4]) != magic {
		return nil, 0, fmt.Errorf("%w: bad magic %q", ErrBadState, b[:4])
	}
	if b[4] < 1 || b[4] > newest {
		return nil, 0, fmt.Errorf("%w: version %d, want 1 to %d", ErrBadState, b[4], newest)
	}
	n := len(b) - 4
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", ErrBadState)
	}
	return b[5:n], b[4], nil
}

// writeFileAtomic replaces path with data: write a temporary file, fsync
// it, rename it over path, fsync the folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
