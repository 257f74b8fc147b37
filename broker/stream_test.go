package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPublishAssignsSequencesAndCounts(t *testing.T) {
	for _, storage := range []StorageType{FileStorage, MemoryStorage} {
		t.Run(storage.String(), func(t *testing.T) {
			b, _ := openBroker(t, t.TempDir())
			defer b.Close()
			s := mustStream(t, b, StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: storage})
			for i := 1; i <= 5; i++ {
				ack := publish(t, s, fmt.Sprintf("t.%d", i%2), "x")
				if ack.Seq != uint64(i) || ack.Stream != "T" || ack.Duplicate {
					t.Fatalf("ack %d = %+v", i, ack)
				}
			}
			st := s.Info().State
			if st.Msgs != 5 || st.FirstSeq != 1 || st.LastSeq != 5 || st.NumSubjects != 2 || st.Bytes != 5*4 {
				t.Fatalf("state = %+v", st)
			}
			m, err := s.GetMsg(3)
			if err != nil || m.Subject != "t.1" || string(m.Payload) != "x" {
				t.Fatalf("GetMsg(3) = %+v, %v", m, err)
			}
			last, err := s.GetLastMsg("t.0")
			if err != nil || last.Seq != 4 {
				t.Fatalf("GetLastMsg = %+v, %v", last, err)
			}
		})
	}
}

func TestCaptureFindsTheStream(t *testing.T) {
	b, _ := openBroker(t, t.TempDir())
	defer b.Close()
	var res = new(captureResult)
	if b.Capture([]byte("a.b"), &res.r) != nil {
		t.Fatal("captured with no streams")
	}
	s := mustStream(t, b, StreamConfig{Name: "A", Subjects: []string{"a.>"}})
	if got := b.Capture([]byte("a.b"), &res.r); got != s {
		t.Fatalf("Capture(a.b) = %v", got)
	}
	if got := b.Capture([]byte("b.a"), &res.r); got != nil {
		t.Fatalf("Capture(b.a) = %v", got)
	}
	if _, err := b.AddStream(StreamConfig{Name: "B", Subjects: []string{"*.b"}}); !errors.Is(err, ErrSubjectsOverlap) {
		t.Fatalf("overlapping stream: %v", err)
	}
	if _, err := b.AddStream(StreamConfig{Name: "A", Subjects: []string{"x"}}); !errors.Is(err, ErrStreamNameInUse) {
		t.Fatalf("same name, other config: %v", err)
	}
	if again, err := b.AddStream(StreamConfig{Name: "A", Subjects: []string{"a.>"}}); err != nil || again != s {
		t.Fatalf("same config again: %v", err)
	}
	if err := b.DeleteStream("A"); err != nil {
		t.Fatal(err)
	}
	if got := b.Capture([]byte("a.b"), &res.r); got != nil {
		t.Fatal("deleted stream still captures")
	}
}

func TestLimitsDiscardOld(t *testing.T) {
	tests := []struct {
		name      string
		cfg       StreamConfig
		subjects  []string
		wantMsgs  uint64
		wantFirst uint64
	}{
		{"max msgs", StreamConfig{MaxMsgs: 3}, []string{"a", "a", "a", "a", "a"}, 3, 3},
		{"max bytes", StreamConfig{MaxBytes: 8}, []string{"a", "a", "a", "a"}, 2, 3},
		{"per subject", StreamConfig{MaxMsgsPerSubject: 1}, []string{"a", "b", "a", "b", "a"}, 2, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := openBroker(t, t.TempDir())
			defer b.Close()
			cfg := tc.cfg
			cfg.Name, cfg.Subjects = "L", []string{"*"}
			s := mustStream(t, b, cfg)
			for _, subj := range tc.subjects {
				publish(t, s, subj, "xyz")
			}
			st := s.Info().State
			if st.Msgs != tc.wantMsgs || st.FirstSeq != tc.wantFirst || st.LastSeq != uint64(len(tc.subjects)) {
				t.Fatalf("state = %+v, want %d msgs from %d", st, tc.wantMsgs, tc.wantFirst)
			}
		})
	}
}

func TestLimitsDiscardNew(t *testing.T) {
	b, _ := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "N", Subjects: []string{"*"}, MaxMsgs: 2, Discard: DiscardNew, MaxMsgSize: 10})
	publish(t, s, "a", "1")
	publish(t, s, "a", "2")
	if _, err := tryPublish(s, "a", "3"); !errors.Is(err, ErrStreamFull) {
		t.Fatalf("third publish: %v", err)
	}
	if _, err := tryPublish(s, "b", "far too large"); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("large publish: %v", err)
	}
	if st := s.Info().State; st.Msgs != 2 || st.LastSeq != 2 {
		t.Fatalf("state = %+v", st)
	}
}

func TestMaxAgeExpires(t *testing.T) {
	b, _ := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "AGE", Subjects: []string{"a"}, MaxAge: 100 * time.Millisecond})
	publish(t, s, "a", "old")
	eventually(t, "expiry", func() bool { return s.Info().State.Msgs == 0 })
	if st := s.Info().State; st.FirstSeq != 2 || st.LastSeq != 1 {
		t.Fatalf("state after expiry = %+v", st)
	}
}

func TestDuplicatesWithinWindow(t *testing.T) {
	dir := t.TempDir()
	b, _ := openBroker(t, dir)
	s := mustStream(t, b, StreamConfig{Name: "D", Subjects: []string{"d"}})
	a1 := publish(t, s, "d", "one", withID("id-1"))
	a2 := publish(t, s, "d", "one again", withID("id-1"))
	if a1.Duplicate || !a2.Duplicate || a2.Seq != a1.Seq {
		t.Fatalf("acks %+v %+v", a1, a2)
	}
	if n := s.Info().State.Msgs; n != 1 {
		t.Fatalf("%d messages stored", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The window is rebuilt from the log.
	b, _ = openBroker(t, dir)
	defer b.Close()
	s, _ = b.Stream("D")
	if a := publish(t, s, "d", "x", withID("id-1")); !a.Duplicate {
		t.Fatalf("after restart: %+v", a)
	}
}

func TestExpectations(t *testing.T) {
	b, _ := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "E", Subjects: []string{"e.*"}})
	publish(t, s, "e.a", "1")
	publish(t, s, "e.b", "2")
	u := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name string
		set  func(*Message)
		want error
	}{
		{"last seq ok", func(m *Message) { m.ExpectedLastSeq = u(2) }, nil},
		{"last seq wrong", func(m *Message) { m.ExpectedLastSeq = u(1) }, ErrWrongLastSeq},
		{"subject seq ok", func(m *Message) { m.ExpectedLastSubjectSeq = u(1) }, nil},
		{"subject seq wrong", func(m *Message) { m.ExpectedLastSubjectSeq = u(2) }, ErrWrongLastSeq},
		{"stream wrong", func(m *Message) { m.ExpectedStream = "X" }, ErrWrongStream},
		{"msg id wrong", func(m *Message) { m.ExpectedLastMsgID = "nope" }, ErrWrongLastMsgID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Info().State.LastSeq
			_, err := tryPublish(s, "e.a", "x", tc.set)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				// Keep the table's sequences valid: undo by checking growth.
				if s.Info().State.LastSeq != before+1 {
					t.Fatal("not stored")
				}
				_ = s.DeleteMsg(before + 1)
			}
		})
	}
}

func TestDeleteAndPurge(t *testing.T) {
	dir := t.TempDir()
	b, _ := openBroker(t, dir)
	s := mustStream(t, b, StreamConfig{Name: "P", Subjects: []string{"p.*"}})
	for i := 0; i < 10; i++ {
		publish(t, s, fmt.Sprintf("p.%d", i%2), "m")
	}
	if err := s.DeleteMsg(4); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(4); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.GetMsg(4); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("get deleted: %v", err)
	}
	n, err := s.Purge(PurgeRequest{Filter: "p.1"})
	if err != nil || n != 4 { // 2, 6, 8, 10 (4 is deleted)
		t.Fatalf("purge p.1: %d, %v", n, err)
	}
	if st := s.Info().State; st.Msgs != 5 || st.FirstSeq != 1 || st.NumSubjects != 1 {
		t.Fatalf("after filtered purge: %+v", st)
	}
	n, err = s.Purge(PurgeRequest{Keep: 2})
	if err != nil || n != 3 {
		t.Fatalf("purge keep 2: %d, %v", n, err)
	}
	if st := s.Info().State; st.Msgs != 2 || st.FirstSeq != 7 {
		t.Fatalf("after keep purge: %+v", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ = openBroker(t, dir)
	s, _ = b.Stream("P")
	if st := s.Info().State; st.Msgs != 2 || st.FirstSeq != 7 || st.LastSeq != 10 {
		t.Fatalf("after restart: %+v", st)
	}
	if n, err := s.Purge(PurgeRequest{}); err != nil || n != 2 {
		t.Fatalf("purge all: %d, %v", n, err)
	}
	if a := publish(t, s, "p.0", "after"); a.Seq != 11 {
		t.Fatalf("seq after purge = %d", a.Seq)
	}
	b.Close()
}

func TestStreamSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, _ := openBroker(t, dir)
	s := mustStream(t, b, StreamConfig{Name: "R", Subjects: []string{"r.>"}, MaxMsgsPerSubject: 2})
	for i := 0; i < 6; i++ {
		publish(t, s, "r.x", fmt.Sprint(i))
	}
	want := s.Info()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ = openBroker(t, dir)
	defer b.Close()
	s, err := b.Stream("R")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Info()
	if got.State.Msgs != want.State.Msgs || got.State.FirstSeq != want.State.FirstSeq || got.State.LastSeq != want.State.LastSeq || got.Config.MaxMsgsPerSubject != 2 {
		t.Fatalf("after restart %+v, want %+v", got.State, want.State)
	}
	// The per-subject limit still holds after the restart.
	publish(t, s, "r.x", "new")
	if st := s.Info().State; st.Msgs != 2 || st.FirstSeq != 6 {
		t.Fatalf("after publish: %+v", st)
	}
}

func TestUpdateStream(t *testing.T) {
	b, _ := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "U", Subjects: []string{"u"}})
	for i := 0; i < 5; i++ {
		publish(t, s, "u", "m")
	}
	if _, err := b.UpdateStream(StreamConfig{Name: "U", Subjects: []string{"u", "v"}, MaxMsgs: 2}); err != nil {
		t.Fatal(err)
	}
	if st := s.Info().State; st.Msgs != 2 {
		t.Fatalf("new limit not applied: %+v", st)
	}
	var res captureResult
	if b.Capture([]byte("v"), &res.r) != s {
		t.Fatal("new subject not captured")
	}
	if _, err := b.UpdateStream(StreamConfig{Name: "U", Subjects: []string{"u"}, Storage: MemoryStorage}); !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("storage change: %v", err)
	}
	if _, err := b.UpdateStream(StreamConfig{Name: "nope"}); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("unknown stream: %v", err)
	}
}
