package broker

import (
	"fmt"
	"testing"
	"time"
)

// pullSeqs pulls n messages and returns their stream sequences in the
// order delivered.
func pullSeqs(t *testing.T, c *Consumer, o *chanOutlet, n int) []uint64 {
	t.Helper()
	if err := c.Pull(PullRequest{Reply: "inbox", Batch: n}); err != nil {
		t.Fatal(err)
	}
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = o.mustMsg(t).msg.StreamSeq
	}
	return seqs
}

func ackAll(t *testing.T, c *Consumer, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		if err := c.Ack(seq, Ack, 0); err != nil {
			t.Fatalf("ack %d: %v", seq, err)
		}
	}
}

func TestJumpToTailDeliversNewFirst(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "up", Durable: true})
	for i := 1; i <= 5; i++ {
		publish(t, s, "s.old", fmt.Sprint(i))
	}
	if n := c.JumpToTail(); n != 5 {
		t.Fatalf("JumpToTail put %d behind, want 5", n)
	}
	if n := c.JumpToTail(); n != 0 {
		t.Fatalf("a second jump with nothing new put %d behind", n)
	}
	if info := c.Info(); info.NumPending != 5 || info.AckFloor.Stream != 0 {
		t.Fatalf("after the jump: %+v", info)
	}
	publish(t, s, "s.new", "6")
	publish(t, s, "s.new", "7")
	got := pullSeqs(t, c, o, 7)
	if fmt.Sprint(got) != "[6 7 1 2 3 4 5]" {
		t.Fatalf("delivered %v, want the new ones first", got)
	}
	ackAll(t, c, 6, 7)
	if info := c.Info(); info.AckFloor.Stream != 0 || info.NumPending != 0 || info.NumAckPending != 5 {
		t.Fatalf("the ack floor passed messages not acknowledged: %+v", info)
	}
	ackAll(t, c, 1, 2, 3, 4, 5)
	if info := c.Info(); info.AckFloor.Stream != 7 || info.NumAckPending != 0 {
		t.Fatalf("after every ack: %+v", info)
	}
}

func TestJumpToTailSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, o := openBroker(t, dir)
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s"}, Retention: WorkQueuePolicy})
	c := mustConsumer(t, s, ConsumerConfig{Name: "up", Durable: true})
	for i := 1; i <= 5; i++ {
		publish(t, s, "s", fmt.Sprint(i))
	}
	c.JumpToTail()
	publish(t, s, "s", "6")
	got := pullSeqs(t, c, o, 3)
	if fmt.Sprint(got) != "[6 1 2]" {
		t.Fatalf("delivered %v", got)
	}
	ackAll(t, c, 6, 1, 2)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, o = openBroker(t, dir)
	defer b.Close()
	s, err := b.Stream("S")
	if err != nil {
		t.Fatal(err)
	}
	// The work queue kept what is still owed, though it lies below the
	// consumer's next sequence.
	if info := s.Info(); info.State.Msgs != 3 {
		t.Fatalf("after the restart the stream holds %d messages, want 3", info.State.Msgs)
	}
	c, err = s.Consumer("up")
	if err != nil {
		t.Fatal(err)
	}
	if info := c.Info(); info.NumPending != 3 || info.AckFloor.Stream != 2 {
		t.Fatalf("restored consumer: %+v", info)
	}
	publish(t, s, "s", "7")
	got = pullSeqs(t, c, o, 4)
	if fmt.Sprint(got) != "[7 3 4 5]" {
		t.Fatalf("after the restart delivered %v", got)
	}
	ackAll(t, c, got...)
	eventually(t, "the work queue emptied", func() bool { return s.Info().State.Msgs == 0 })
}

func TestJumpToTailUnderInterestRetention(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s"}, Retention: InterestPolicy})
	c := mustConsumer(t, s, ConsumerConfig{Name: "up", Durable: true})
	for i := 1; i <= 4; i++ {
		publish(t, s, "s", fmt.Sprint(i))
	}
	c.JumpToTail()
	publish(t, s, "s", "5")
	got := pullSeqs(t, c, o, 1)
	ackAll(t, c, got...)
	// The stream's upkeep sweeps the head by the ack floor; it must not
	// pass what the consumer still owes.
	if err := s.upkeep(time.Now()); err != nil {
		t.Fatal(err)
	}
	if info := s.Info(); info.State.Msgs != 4 || info.State.FirstSeq != 1 {
		t.Fatalf("interest retention removed owed messages: %+v", info.State)
	}
	got = pullSeqs(t, c, o, 4)
	ackAll(t, c, got...)
	eventually(t, "the stream emptied", func() bool { return s.Info().State.Msgs == 0 })
}

func TestJumpToTailCountsRemovalsAndFilters(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "up", Durable: true, FilterSubjects: []string{"s.a"}})
	for i := 1; i <= 6; i++ {
		subject := "s.a"
		if i%2 == 0 {
			subject = "s.b"
		}
		publish(t, s, subject, fmt.Sprint(i))
	}
	if n := c.JumpToTail(); n != 3 {
		t.Fatalf("put %d behind, want the 3 that match", n)
	}
	if err := s.DeleteMsg(3); err != nil {
		t.Fatal(err)
	}
	if info := c.Info(); info.NumPending != 2 {
		t.Fatalf("after deleting an owed message NumPending = %d, want 2", info.NumPending)
	}
	publish(t, s, "s.a", "7")
	got := pullSeqs(t, c, o, 3)
	if fmt.Sprint(got) != "[7 1 5]" {
		t.Fatalf("delivered %v", got)
	}
	o.quiet(t, 20*time.Millisecond)
}

func TestJumpToTailTwice(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "up", Durable: true})
	publish(t, s, "s", "1")
	publish(t, s, "s", "2")
	c.JumpToTail()
	publish(t, s, "s", "3")
	publish(t, s, "s", "4")
	if n := c.JumpToTail(); n != 2 {
		t.Fatalf("second jump put %d behind, want 2", n)
	}
	publish(t, s, "s", "5")
	if info := c.Info(); info.NumPending != 5 {
		t.Fatalf("NumPending = %d, want 5", info.NumPending)
	}
	got := pullSeqs(t, c, o, 5)
	if fmt.Sprint(got) != "[5 1 2 3 4]" {
		t.Fatalf("delivered %v: the newest first, then what is owed, oldest first", got)
	}
}

func TestJumpToTailThenPurge(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "up", Durable: true})
	for i := 1; i <= 3; i++ {
		publish(t, s, "s", fmt.Sprint(i))
	}
	c.JumpToTail()
	if _, err := s.Purge(PurgeRequest{}); err != nil {
		t.Fatal(err)
	}
	if info := c.Info(); info.NumPending != 0 {
		t.Fatalf("after a purge NumPending = %d", info.NumPending)
	}
	publish(t, s, "s", "4")
	if got := pullSeqs(t, c, o, 1); got[0] != 4 {
		t.Fatalf("delivered %v", got)
	}
	o.quiet(t, 20*time.Millisecond)
	if info := c.Info(); info.AckFloor.Stream != 3 || info.NumAckPending != 1 {
		t.Fatalf("the purged range still holds the floor: %+v", info)
	}
}

func TestJumpToTailKeepsInterestOfOwed(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s"}, Retention: InterestPolicy})
	up := mustConsumer(t, s, ConsumerConfig{Name: "up", Durable: true})
	other := mustConsumer(t, s, ConsumerConfig{Name: "other", Durable: true, DeliverSubject: "other"})
	for i := 1; i <= 3; i++ {
		publish(t, s, "s", fmt.Sprint(i))
	}
	up.JumpToTail()
	for i := 1; i <= 3; i++ {
		r := o.mustMsg(t)
		if r.subject != "other" {
			t.Fatalf("delivery to %q", r.subject)
		}
		ackAll(t, other, r.msg.StreamSeq)
	}
	// Every other consumer is done with them, but up still owes them.
	if info := s.Info(); info.State.Msgs != 3 {
		t.Fatalf("stream holds %d messages, want the 3 still owed", info.State.Msgs)
	}
	got := pullSeqs(t, up, o, 3)
	ackAll(t, up, got...)
	eventually(t, "the stream emptied", func() bool { return s.Info().State.Msgs == 0 })
}
