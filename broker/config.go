package broker

import (
	"fmt"
	"strings"
	"time"

	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/router"
)

// RetentionPolicy says when a stream lets go of a message besides its limits.
type RetentionPolicy uint8

const (
	// LimitsPolicy keeps messages until a limit removes them.
	LimitsPolicy RetentionPolicy = iota
	// InterestPolicy removes a message once every consumer that wants it
	// has acknowledged it; with no consumers a message is not kept.
	InterestPolicy
	// WorkQueuePolicy removes a message once one consumer acknowledges it;
	// consumers must not overlap, so each message has exactly one.
	WorkQueuePolicy
)

var retentionNames = [...]string{"limits", "interest", "workqueue"}

func (p RetentionPolicy) String() string { return enumName(retentionNames[:], int(p)) }

// DiscardPolicy says what a full stream does with a new message.
type DiscardPolicy uint8

const (
	// DiscardOld removes the oldest messages to make room.
	DiscardOld DiscardPolicy = iota
	// DiscardNew refuses the new message (ErrStreamFull).
	DiscardNew
)

var discardNames = [...]string{"old", "new"}

func (p DiscardPolicy) String() string { return enumName(discardNames[:], int(p)) }

// StorageType says where a stream keeps its messages.
type StorageType uint8

const (
	// FileStorage keeps messages in a log on disk; they survive restarts.
	FileStorage StorageType = iota
	// MemoryStorage keeps messages in memory only; the stream's
	// configuration and consumers survive a restart, its messages do not.
	MemoryStorage
)

var storageNames = [...]string{"file", "memory"}

func (t StorageType) String() string { return enumName(storageNames[:], int(t)) }

// DeliverPolicy says where a new consumer starts.
type DeliverPolicy uint8

const (
	// DeliverAll starts at the first message in the stream.
	DeliverAll DeliverPolicy = iota
	// DeliverLast starts at the last message (matching the filter).
	DeliverLast
	// DeliverNew starts with messages published after the consumer is made.
	DeliverNew
	// DeliverByStartSequence starts at OptStartSeq.
	DeliverByStartSequence
	// DeliverByStartTime starts at the first message at or after
	// OptStartTime.
	DeliverByStartTime
	// DeliverLastPerSubject starts with the last message of every subject
	// (matching the filter), then continues with new ones.
	DeliverLastPerSubject
)

var deliverNames = [...]string{"all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject"}

func (p DeliverPolicy) String() string { return enumName(deliverNames[:], int(p)) }

// AckPolicy says which acknowledgements a consumer expects.
type AckPolicy uint8

const (
	// AckExplicit expects each message to be acknowledged.
	AckExplicit AckPolicy = iota
	// AckAll takes an acknowledgement as covering every earlier message.
	AckAll
	// AckNone takes a message as acknowledged once delivered.
	AckNone
)

var ackNames = [...]string{"explicit", "all", "none"}

func (p AckPolicy) String() string { return enumName(ackNames[:], int(p)) }

func enumName(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("unknown(%d)", i)
}

// Defaults the broker fills in for zero fields.
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxAckPending = 1000
	DefaultMaxWaiting    = 512
	DefaultDuplicates    = 2 * time.Minute
	// DefaultInactiveThreshold is how long an ephemeral consumer lives
	// without a pull request or a push subscriber.
	DefaultInactiveThreshold = 5 * time.Second
)

// StreamConfig describes a stream. Zero limits mean unlimited.
type StreamConfig struct {
	// Name identifies the stream: 1 to 255 bytes of letters, digits, '-'
	// and '_'; it names the stream's folder.
	Name        string
	Description string
	// Subjects are the patterns the stream captures, in the router's
	// grammar; two streams may not capture the same subject. A stream
	// without subjects captures the subject equal to its name.
	Subjects  []string
	Retention RetentionPolicy
	Storage   StorageType
	// MaxConsumers bounds the stream's consumers (0: unlimited).
	MaxConsumers int
	MaxMsgs      int64
	MaxBytes     int64
	MaxAge       time.Duration
	// MaxMsgsPerSubject keeps at most this many messages per subject.
	MaxMsgsPerSubject int64
	// MaxMsgSize bounds one message's headers and payload.
	MaxMsgSize int32
	Discard    DiscardPolicy
	// DiscardNewPerSubject applies DiscardNew to MaxMsgsPerSubject as
	// well: a subject that is full refuses new messages.
	DiscardNewPerSubject bool
	// Duplicates is the window in which a repeated message id is not
	// stored again (DefaultDuplicates when zero).
	Duplicates time.Duration
	// NoAck turns off publish acknowledgements for the stream.
	NoAck bool
	// Sync is the stream's fsync policy; the broker's default when nil.
	Sync *log.SyncPolicy
	// Compression applies to the stream's batches on disk.
	Compression log.Compression
	// DenyDelete and DenyPurge refuse those administrative operations.
	DenyDelete bool
	DenyPurge  bool
	// Created is when the stream was first made; set by the broker.
	Created time.Time
	// Owner names the user that created the stream, whose disk quota its
	// MaxBytes counts against (package auth); empty for streams made
	// without users. Kept as it was by an update.
	Owner string `json:",omitempty"`
}

// validStreamName reports whether name can name a stream (and a folder).
func validName(name string) bool {
	if name == "" || len(name) > 255 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

func (c *StreamConfig) normalize() error {
	if !validName(c.Name) {
		return fmt.Errorf("%w: stream name %q must be 1 to 255 letters, digits, '-' or '_'", ErrInvalidConfig, c.Name)
	}
	if len(c.Subjects) == 0 {
		c.Subjects = []string{c.Name}
	}
	seen := make(map[string]bool, len(c.Subjects))
	for _, s := range c.Subjects {
		if err := router.ValidatePattern(s); err != nil {
			return fmt.Errorf("%w: subject %q: %v", ErrInvalidConfig, s, err)
		}
		if strings.HasPrefix(s, "$JS.") || s == "$JS" {
			return fmt.Errorf("%w: subject %q overlaps the API", ErrInvalidConfig, s)
		}
		if seen[s] {
			return fmt.Errorf("%w: subject %q given twice", ErrInvalidConfig, s)
		}
		seen[s] = true
	}
	if c.Retention > WorkQueuePolicy {
		return fmt.Errorf("%w: retention %d", ErrInvalidConfig, c.Retention)
	}
	if c.Storage > MemoryStorage {
		return fmt.Errorf("%w: storage %d", ErrInvalidConfig, c.Storage)
	}
	if c.Discard > DiscardNew {
		return fmt.Errorf("%w: discard %d", ErrInvalidConfig, c.Discard)
	}
	if c.DiscardNewPerSubject && (c.Discard != DiscardNew || c.MaxMsgsPerSubject <= 0) {
		return fmt.Errorf("%w: discard new per subject needs discard new and a limit per subject", ErrInvalidConfig)
	}
	for _, v := range []int64{c.MaxMsgs, c.MaxBytes, c.MaxMsgsPerSubject, int64(c.MaxAge), int64(c.MaxMsgSize), int64(c.MaxConsumers), int64(c.Duplicates)} {
		if v < 0 {
			return fmt.Errorf("%w: negative limit", ErrInvalidConfig)
		}
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
		if c.MaxAge > 0 && c.MaxAge < c.Duplicates {
			c.Duplicates = c.MaxAge
		}
	}
	if c.MaxAge > 0 && c.Duplicates > c.MaxAge {
		return fmt.Errorf("%w: duplicate window longer than max age", ErrInvalidConfig)
	}
	if c.Sync != nil && *c.Sync > log.SyncNever {
		return fmt.Errorf("%w: sync policy %d", ErrInvalidConfig, *c.Sync)
	}
	if c.Compression > log.CompressZstd {
		return fmt.Errorf("%w: compression %d", ErrInvalidConfig, c.Compression)
	}
	return nil
}

// checkUpdate refuses the changes a stream cannot take in place.
func (c *StreamConfig) checkUpdate(old *StreamConfig) error {
	switch {
	case c.Storage != old.Storage:
		return fmt.Errorf("%w: storage type cannot change", ErrInvalidUpdate)
	case c.Retention != old.Retention:
		return fmt.Errorf("%w: retention policy cannot change", ErrInvalidUpdate)
	}
	return nil
}

// ConsumerConfig describes a consumer. Zero fields take the defaults.
type ConsumerConfig struct {
	// Name identifies the consumer within its stream; an ephemeral
	// consumer without one gets a generated name.
	Name string
	// Durable consumers live until deleted; ephemeral ones are deleted
	// after InactiveThreshold without interest.
	Durable     bool
	Description string

	DeliverPolicy DeliverPolicy
	OptStartSeq   uint64
	OptStartTime  time.Time

	AckPolicy AckPolicy
	// AckWait is how long a delivered message waits for its
	// acknowledgement before it is delivered again.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one message (0: unlimited).
	MaxDeliver int
	// BackOff, when set, replaces AckWait for the n-th redelivery (the
	// last entry for any later one).
	BackOff []time.Duration
	// FilterSubjects restrict the consumer to messages whose subject one
	// of these patterns matches.
	FilterSubjects []string
	// MaxAckPending caps the delivered-but-unacknowledged set: the
	// prefetch (DefaultMaxAckPending when zero; -1 for no cap).
	MaxAckPending int

	// Pull consumers: MaxWaiting bounds queued pull requests, and the
	// MaxRequest fields bound each request (0: unbounded).
	MaxWaiting         int
	MaxRequestBatch    int
	MaxRequestExpires  time.Duration
	MaxRequestMaxBytes int

	// DeliverSubject makes a push consumer: messages go to this subject,
	// to one member of DeliverGroup when that is set.
	DeliverSubject string
	DeliverGroup   string
	// FlowControl and IdleHeartbeat apply to push consumers; heartbeats
	// also to pull requests that ask for them.
	FlowControl   bool
	IdleHeartbeat time.Duration
	// HeadersOnly delivers headers and the payload's size, not the
	// payload.
	HeadersOnly bool

	// InactiveThreshold is how long an ephemeral consumer survives
	// without interest.
	InactiveThreshold time.Duration

	// Created is when the consumer was first made; set by the broker.
	Created time.Time
}

// IsPull reports whether the consumer is served by pull requests.
func (c *ConsumerConfig) IsPull() bool { return c.DeliverSubject == "" }

func (c *ConsumerConfig) normalize() error {
	if c.Name != "" && !validName(c.Name) {
		return fmt.Errorf("%w: consumer name %q must be 1 to 255 letters, digits, '-' or '_'", ErrInvalidConfig, c.Name)
	}
	if c.Durable && c.Name == "" {
		return fmt.Errorf("%w: a durable consumer needs a name", ErrInvalidConfig)
	}
	if c.DeliverPolicy > DeliverLastPerSubject {
		return fmt.Errorf("%w: deliver policy %d", ErrInvalidConfig, c.DeliverPolicy)
	}
	if c.AckPolicy > AckNone {
		return fmt.Errorf("%w: ack policy %d", ErrInvalidConfig, c.AckPolicy)
	}
	switch c.DeliverPolicy {
	case DeliverByStartSequence:
		if c.OptStartSeq == 0 {
			return fmt.Errorf("%w: deliver by start sequence needs a start sequence", ErrInvalidConfig)
		}
	case DeliverByStartTime:
		if c.OptStartTime.IsZero() {
			return fmt.Errorf("%w: deliver by start time needs a start time", ErrInvalidConfig)
		}
	}
	if c.DeliverPolicy != DeliverByStartSequence && c.OptStartSeq != 0 {
		return fmt.Errorf("%w: a start sequence needs deliver policy by_start_sequence", ErrInvalidConfig)
	}
	if c.DeliverPolicy != DeliverByStartTime && !c.OptStartTime.IsZero() {
		return fmt.Errorf("%w: a start time needs deliver policy by_start_time", ErrInvalidConfig)
	}
	for _, f := range c.FilterSubjects {
		if err := router.ValidatePattern(f); err != nil {
			return fmt.Errorf("%w: filter subject %q: %v", ErrInvalidConfig, f, err)
		}
	}
	if c.AckWait < 0 || c.MaxDeliver < 0 || c.MaxAckPending < -1 || c.MaxWaiting < 0 ||
		c.MaxRequestBatch < 0 || c.MaxRequestExpires < 0 || c.MaxRequestMaxBytes < 0 ||
		c.IdleHeartbeat < 0 || c.InactiveThreshold < 0 {
		return fmt.Errorf("%w: negative value", ErrInvalidConfig)
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending == 0 && c.AckPolicy != AckNone {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.AckPolicy == AckNone {
		c.MaxAckPending = -1
	}
	for _, d := range c.BackOff {
		if d <= 0 {
			return fmt.Errorf("%w: backoff durations must be positive", ErrInvalidConfig)
		}
	}
	if len(c.BackOff) > 0 && c.MaxDeliver > 0 && c.MaxDeliver <= len(c.BackOff) {
		return fmt.Errorf("%w: max deliver must be more than the backoff entries", ErrInvalidConfig)
	}
	if c.IsPull() {
		if c.DeliverGroup != "" || c.FlowControl {
			return fmt.Errorf("%w: deliver group and flow control need a deliver subject", ErrInvalidConfig)
		}
		if c.IdleHeartbeat != 0 {
			return fmt.Errorf("%w: idle heartbeat is per pull request, not for a pull consumer", ErrInvalidConfig)
		}
		if c.MaxWaiting == 0 {
			c.MaxWaiting = DefaultMaxWaiting
		}
	} else {
		if err := router.ValidateSubject(c.DeliverSubject); err != nil {
			return fmt.Errorf("%w: deliver subject %q: %v", ErrInvalidConfig, c.DeliverSubject, err)
		}
		if c.MaxWaiting != 0 || c.MaxRequestBatch != 0 || c.MaxRequestExpires != 0 || c.MaxRequestMaxBytes != 0 {
			return fmt.Errorf("%w: pull request limits on a push consumer", ErrInvalidConfig)
		}
		if c.FlowControl && c.IdleHeartbeat == 0 {
			return fmt.Errorf("%w: flow control needs an idle heartbeat", ErrInvalidConfig)
		}
	}
	if !c.Durable && c.InactiveThreshold == 0 {
		c.InactiveThreshold = DefaultInactiveThreshold
	}
	return nil
}

// checkUpdate refuses the changes a consumer cannot take in place.
func (c *ConsumerConfig) checkUpdate(old *ConsumerConfig) error {
	switch {
	case c.DeliverPolicy != old.DeliverPolicy || c.OptStartSeq != old.OptStartSeq || !c.OptStartTime.Equal(old.OptStartTime):
		return fmt.Errorf("%w: deliver policy cannot change", ErrInvalidUpdate)
	case c.AckPolicy != old.AckPolicy:
		return fmt.Errorf("%w: ack policy cannot change", ErrInvalidUpdate)
	case c.IsPull() != old.IsPull():
		return fmt.Errorf("%w: a consumer cannot change between push and pull", ErrInvalidUpdate)
	case c.Durable != old.Durable:
		return fmt.Errorf("%w: a consumer cannot change between durable and ephemeral", ErrInvalidUpdate)
	}
	return nil
}
