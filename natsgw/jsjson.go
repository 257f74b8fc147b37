package natsgw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
)

// The JetStream API's JSON, in nats-server's field names and shapes, so
// that nats.go's jetstream package and the nats CLI read it. Durations are
// nanoseconds, times RFC 3339, and a limit of -1 means none (the broker's
// zero).

// apiError is the "error" object of every API response; nats.go branches
// on ErrCode.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code,omitempty"`
	Description string `json:"description,omitempty"`
}

func (e *apiError) Error() string { return e.Description }

// The error codes of nats-server's errors.json that ledge answers with.
const (
	errCodeBadRequest         = 10003
	errCodeConsumerCreate     = 10012
	errCodeConsumerNotFound   = 10014
	errCodeInvalidJSON        = 10025
	errCodeMaxConsumers       = 10026
	errCodeNoMessageFound     = 10037
	errCodeMsgTooLarge        = 10054
	errCodeStreamMismatch     = 10056
	errCodeMsgDeleteFailed    = 10057
	errCodeStreamNameInUse    = 10058
	errCodeStreamNotFound     = 10059
	errCodeStreamNotMatch     = 10060
	errCodeSubjectOverlap     = 10065
	errCodeWrongLastMsgID     = 10070
	errCodeWrongLastSeq       = 10071
	errCodeStreamInvalidCfg   = 10052
	errCodeReplicasNotSupp    = 10074
	errCodeStoreFailed        = 10077
	errCodeWQExplicitAck      = 10098
	errCodeWQMultiUnfiltered  = 10099
	errCodeWQDeliverAll       = 10101
	errCodeWQNotUnique        = 10100
	errCodeStreamPurgeFailed  = 10110
	errCodeFilterMismatch     = 10131
	errCodeDurableNameDiffer  = 10132
	errCodeDuplicateFilters   = 10136
	errCodeConsumerExists     = 10148
	errCodeConsumerNotExist   = 10149
	errCodeStreamLimits       = 10053
	errCodeConsumerInvalidPol = 10094
)

func newAPIError(code, errCode int, format string, args ...any) *apiError {
	return &apiError{Code: code, ErrCode: errCode, Description: fmt.Sprintf(format, args...)}
}

// describe is a broker error's text without the package prefix.
func describe(err error) string {
	return strings.TrimPrefix(err.Error(), "broker: ")
}

// streamAPIError maps a broker error from a stream operation.
func streamAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, broker.ErrStreamNotFound):
		return newAPIError(404, errCodeStreamNotFound, "stream not found")
	case errors.Is(err, broker.ErrStreamNameInUse):
		return newAPIError(400, errCodeStreamNameInUse, "stream name already in use with a different configuration")
	case errors.Is(err, broker.ErrSubjectsOverlap):
		return newAPIError(400, errCodeSubjectOverlap, "subjects overlap with an existing stream")
	case errors.Is(err, broker.ErrNoMessage):
		return newAPIError(404, errCodeNoMessageFound, "no message found")
	case errors.Is(err, broker.ErrInvalidConfig), errors.Is(err, broker.ErrInvalidUpdate):
		return newAPIError(500, errCodeStreamInvalidCfg, "%s", describe(err))
	case errors.Is(err, broker.ErrDeleteDenied):
		return newAPIError(500, errCodeMsgDeleteFailed, "message delete not permitted")
	case errors.Is(err, broker.ErrPurgeDenied):
		return newAPIError(500, errCodeStreamPurgeFailed, "stream purge not permitted")
	case errors.Is(err, broker.ErrBadRequest):
		return newAPIError(400, errCodeBadRequest, "%s", describe(err))
	}
	return newAPIError(500, errCodeStreamLimits, "%s", describe(err))
}

// consumerAPIError maps a broker error from a consumer operation.
func consumerAPIError(err error, cfg *broker.ConsumerConfig) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, broker.ErrStreamNotFound):
		return newAPIError(404, errCodeStreamNotFound, "stream not found")
	case errors.Is(err, broker.ErrConsumerNotFound):
		return newAPIError(404, errCodeConsumerNotFound, "consumer not found")
	case errors.Is(err, broker.ErrConsumerNameInUse):
		return newAPIError(400, errCodeConsumerExists, "consumer already exists")
	case errors.Is(err, broker.ErrMaxConsumers):
		return newAPIError(400, errCodeMaxConsumers, "maximum consumers limit reached")
	case errors.Is(err, broker.ErrWorkQueueOverlap):
		if cfg != nil && len(cfg.FilterSubjects) == 0 {
			return newAPIError(400, errCodeWQMultiUnfiltered, "multiple non-filtered consumers not allowed on workqueue stream")
		}
		return newAPIError(400, errCodeWQNotUnique, "filtered consumer not unique on workqueue stream")
	case errors.Is(err, broker.ErrInvalidConfig), errors.Is(err, broker.ErrInvalidUpdate):
		return newAPIError(400, errCodeConsumerCreate, "%s", describe(err))
	case errors.Is(err, broker.ErrBadRequest):
		return newAPIError(400, errCodeBadRequest, "%s", describe(err))
	}
	return newAPIError(500, errCodeConsumerCreate, "%s", describe(err))
}

// publishAPIError maps a refused publish.
func publishAPIError(err error) *apiError {
	switch {
	case errors.Is(err, broker.ErrWrongLastSeq):
		return newAPIError(400, errCodeWrongLastSeq, "%s", describe(err))
	case errors.Is(err, broker.ErrWrongLastMsgID):
		return newAPIError(400, errCodeWrongLastMsgID, "%s", describe(err))
	case errors.Is(err, broker.ErrWrongStream):
		return newAPIError(400, errCodeStreamNotMatch, "expected stream does not match")
	case errors.Is(err, broker.ErrMessageTooLarge):
		return newAPIError(400, errCodeMsgTooLarge, "message size exceeds maximum allowed")
	case errors.Is(err, broker.ErrStreamFull), errors.Is(err, broker.ErrBytesFull), errors.Is(err, broker.ErrSubjectFull):
		return newAPIError(503, errCodeStoreFailed, "%s", describe(err))
	}
	return newAPIError(503, errCodeStoreFailed, "%s", describe(err))
}

// errInvalidJSON answers a request body that is not the JSON expected.
func errInvalidJSON(err error) *apiError {
	return newAPIError(400, errCodeInvalidJSON, "invalid JSON: %v", err)
}

// The response types; "type" names the schema as nats-server does.
const (
	typeAccountInfo    = "io.nats.jetstream.api.v1.account_info_response"
	typeStreamCreate   = "io.nats.jetstream.api.v1.stream_create_response"
	typeStreamUpdate   = "io.nats.jetstream.api.v1.stream_update_response"
	typeStreamInfo     = "io.nats.jetstream.api.v1.stream_info_response"
	typeStreamList     = "io.nats.jetstream.api.v1.stream_list_response"
	typeStreamNames    = "io.nats.jetstream.api.v1.stream_names_response"
	typeStreamDelete   = "io.nats.jetstream.api.v1.stream_delete_response"
	typeStreamPurge    = "io.nats.jetstream.api.v1.stream_purge_response"
	typeMsgGet         = "io.nats.jetstream.api.v1.stream_msg_get_response"
	typeMsgDelete      = "io.nats.jetstream.api.v1.stream_msg_delete_response"
	typeConsumerCreate = "io.nats.jetstream.api.v1.consumer_create_response"
	typeConsumerInfo   = "io.nats.jetstream.api.v1.consumer_info_response"
	typeConsumerList   = "io.nats.jetstream.api.v1.consumer_list_response"
	typeConsumerNames  = "io.nats.jetstream.api.v1.consumer_names_response"
	typeConsumerDelete = "io.nats.jetstream.api.v1.consumer_delete_response"
	typeAPIError       = "io.nats.jetstream.api.v1.error_response"
)

// errorResponse is a response that carries only an error.
type errorResponse struct {
	Type  string    `json:"type"`
	Error *apiError `json:"error"`
}

type apiStats struct {
	Level  int    `json:"level"`
	Total  uint64 `json:"total"`
	Errors uint64 `json:"errors"`
}

type accountLimits struct {
	MaxMemory            int64 `json:"max_memory"`
	MaxStorage           int64 `json:"max_storage"`
	MaxStreams           int   `json:"max_streams"`
	MaxConsumers         int   `json:"max_consumers"`
	MaxAckPending        int   `json:"max_ack_pending"`
	MemoryMaxStreamBytes int64 `json:"memory_max_stream_bytes"`
	StorageMaxStreamByte int64 `json:"storage_max_stream_bytes"`
	MaxBytesRequired     bool  `json:"max_bytes_required"`
}

type accountInfoResponse struct {
	Type      string        `json:"type"`
	Memory    uint64        `json:"memory"`
	Storage   uint64        `json:"storage"`
	ReservedM uint64        `json:"reserved_memory"`
	ReservedS uint64        `json:"reserved_storage"`
	Streams   int           `json:"streams"`
	Consumers int           `json:"consumers"`
	Limits    accountLimits `json:"limits"`
	Domain    string        `json:"domain,omitempty"`
	API       apiStats      `json:"api"`
}

// streamConfig is nats-server's StreamConfig: the fields ledge supports,
// and those it refuses unless they hold their default.
type streamConfig struct {
	Name              string            `json:"name"`
	Description       string            `json:"description,omitempty"`
	Subjects          []string          `json:"subjects,omitempty"`
	Retention         string            `json:"retention"`
	MaxConsumers      int               `json:"max_consumers"`
	MaxMsgs           int64             `json:"max_msgs"`
	MaxBytes          int64             `json:"max_bytes"`
	Discard           string            `json:"discard"`
	DiscardNewPer     bool              `json:"discard_new_per_subject,omitempty"`
	MaxAge            int64             `json:"max_age"`
	MaxMsgsPerSubject int64             `json:"max_msgs_per_subject"`
	MaxMsgSize        int32             `json:"max_msg_size"`
	Storage           string            `json:"storage"`
	Replicas          int               `json:"num_replicas"`
	NoAck             bool              `json:"no_ack,omitempty"`
	Duplicates        int64             `json:"duplicate_window,omitempty"`
	Sealed            bool              `json:"sealed"`
	DenyDelete        bool              `json:"deny_delete"`
	DenyPurge         bool              `json:"deny_purge"`
	AllowRollup       bool              `json:"allow_rollup_hdrs"`
	AllowDirect       bool              `json:"allow_direct"`
	MirrorDirect      bool              `json:"mirror_direct"`
	Compression       string            `json:"compression"`
	FirstSeq          uint64            `json:"first_seq,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
}

// streamConfigKeys are the keys of streamConfig; any other key in a
// request must hold a zero value (false, 0, "", null, {} or []).
var streamConfigKeys = func() map[string]bool {
	keys := jsonKeys(streamConfig{})
	// Permissions for batch publishing, which "nats bench js" asks for:
	// they permit, they do not change what the stream does, so they are
	// accepted and answered as false; a batch publish itself is refused
	// at publish time (see unsupportedHeaders).
	keys["allow_atomic"] = true
	keys["allow_batched"] = true
	return keys
}()

// consumerConfig is nats-server's ConsumerConfig.
type consumerConfig struct {
	Durable            string            `json:"durable_name,omitempty"`
	Name               string            `json:"name,omitempty"`
	Description        string            `json:"description,omitempty"`
	DeliverPolicy      string            `json:"deliver_policy"`
	OptStartSeq        uint64            `json:"opt_start_seq,omitempty"`
	OptStartTime       *time.Time        `json:"opt_start_time,omitempty"`
	AckPolicy          string            `json:"ack_policy"`
	AckWait            int64             `json:"ack_wait,omitempty"`
	MaxDeliver         int               `json:"max_deliver,omitempty"`
	BackOff            []int64           `json:"backoff,omitempty"`
	FilterSubject      string            `json:"filter_subject,omitempty"`
	FilterSubjects     []string          `json:"filter_subjects,omitempty"`
	ReplayPolicy       string            `json:"replay_policy"`
	RateLimit          uint64            `json:"rate_limit_bps,omitempty"`
	SampleFrequency    string            `json:"sample_freq,omitempty"`
	MaxWaiting         int               `json:"max_waiting,omitempty"`
	MaxAckPending      int               `json:"max_ack_pending,omitempty"`
	FlowControl        bool              `json:"flow_control,omitempty"`
	Heartbeat          int64             `json:"idle_heartbeat,omitempty"`
	HeadersOnly        bool              `json:"headers_only,omitempty"`
	MaxRequestBatch    int               `json:"max_batch,omitempty"`
	MaxRequestExpires  int64             `json:"max_expires,omitempty"`
	MaxRequestMaxBytes int               `json:"max_bytes,omitempty"`
	DeliverSubject     string            `json:"deliver_subject,omitempty"`
	DeliverGroup       string            `json:"deliver_group,omitempty"`
	InactiveThreshold  int64             `json:"inactive_threshold,omitempty"`
	Replicas           int               `json:"num_replicas"`
	MemoryStorage      bool              `json:"mem_storage,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
}

var consumerConfigKeys = jsonKeys(consumerConfig{})

type streamState struct {
	Msgs        uint64            `json:"messages"`
	Bytes       uint64            `json:"bytes"`
	FirstSeq    uint64            `json:"first_seq"`
	FirstTime   time.Time         `json:"first_ts"`
	LastSeq     uint64            `json:"last_seq"`
	LastTime    time.Time         `json:"last_ts"`
	NumSubjects int               `json:"num_subjects,omitempty"`
	Subjects    map[string]uint64 `json:"subjects,omitempty"`
	NumDeleted  int               `json:"num_deleted,omitempty"`
	Consumers   int               `json:"consumer_count"`
}

type streamInfo struct {
	Config  streamConfig `json:"config"`
	Created time.Time    `json:"created"`
	State   streamState  `json:"state"`
	TS      time.Time    `json:"ts"`
}

type streamInfoResponse struct {
	Type string `json:"type"`
	// Paging of State.Subjects.
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	*streamInfo
	DidCreate bool `json:"did_create,omitempty"`
}

type sequenceInfo struct {
	Consumer   uint64     `json:"consumer_seq"`
	Stream     uint64     `json:"stream_seq"`
	LastActive *time.Time `json:"last_active,omitempty"`
}

type consumerInfo struct {
	Stream         string         `json:"stream_name"`
	Name           string         `json:"name"`
	Created        time.Time      `json:"created"`
	Config         consumerConfig `json:"config"`
	Delivered      sequenceInfo   `json:"delivered"`
	AckFloor       sequenceInfo   `json:"ack_floor"`
	NumAckPending  int            `json:"num_ack_pending"`
	NumRedelivered int            `json:"num_redelivered"`
	NumWaiting     int            `json:"num_waiting"`
	NumPending     uint64         `json:"num_pending"`
	PushBound      bool           `json:"push_bound,omitempty"`
	TS             time.Time      `json:"ts"`
}

type consumerInfoResponse struct {
	Type string `json:"type"`
	*consumerInfo
}

// pullRequestJSON is the body of a CONSUMER.MSG.NEXT request.
type pullRequestJSON struct {
	Batch     int   `json:"batch"`
	Expires   int64 `json:"expires"`
	NoWait    bool  `json:"no_wait"`
	MaxBytes  int   `json:"max_bytes"`
	Heartbeat int64 `json:"idle_heartbeat"`
}

var pullRequestKeys = jsonKeys(pullRequestJSON{})

// jsonKeys lists the JSON keys of a struct's fields.
func jsonKeys(v any) map[string]bool {
	b, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	keys := make(map[string]bool, len(m))
	for k := range m {
		keys[k] = true
	}
	// Fields left out of the zero value by omitempty.
	switch v.(type) {
	case streamConfig:
		for _, k := range []string{"description", "subjects", "discard_new_per_subject", "no_ack", "duplicate_window", "first_seq", "metadata"} {
			keys[k] = true
		}
	case consumerConfig:
		for _, k := range []string{"durable_name", "name", "description", "opt_start_seq", "opt_start_time", "ack_wait", "max_deliver",
			"backoff", "filter_subject", "filter_subjects", "rate_limit_bps", "sample_freq", "max_waiting", "max_ack_pending",
			"flow_control", "idle_heartbeat", "headers_only", "max_batch", "max_expires", "max_bytes", "deliver_subject",
			"deliver_group", "inactive_threshold", "mem_storage", "metadata"} {
			keys[k] = true
		}
	}
	return keys
}

// decodeStrict decodes body into v and refuses any key outside known that
// holds something other than a zero value: an option ledge does not
// implement is an error, never silently ignored.
func decodeStrict(body []byte, v any, known map[string]bool) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return errInvalidJSON(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return errInvalidJSON(err)
	}
	var unsupported []string
	for k, raw := range m {
		if !known[k] && !zeroJSON(raw) {
			unsupported = append(unsupported, k)
		}
	}
	if len(unsupported) > 0 {
		sort.Strings(unsupported)
		return newAPIError(400, errCodeBadRequest, "ledge does not support %s", strings.Join(unsupported, ", "))
	}
	return nil
}

// zeroJSON reports whether raw is a JSON zero value, or an object whose
// members all are.
func zeroJSON(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "null", "false", "0", `""`, "{}", "[]", `"0001-01-01T00:00:00Z"`:
		return true
	}
	if len(raw) > 0 && raw[0] == '{' {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return false
		}
		for _, v := range m {
			if !zeroJSON(v) {
				return false
			}
		}
		return true
	}
	return false
}

// unlimited maps nats-server's -1 (and 0) to the broker's 0.
func unlimited(n int64) int64 {
	if n < 0 {
		return 0
	}
	return n
}

// orUnlimited maps the broker's 0 to nats-server's -1.
func orUnlimited(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func enumIndex(names []string, v, def string) (int, bool) {
	if v == "" {
		v = def
	}
	for i, n := range names {
		if n == v {
			return i, true
		}
	}
	return 0, false
}

var (
	retentionNames = []string{"limits", "interest", "workqueue"}
	discardNames   = []string{"old", "new"}
	storageNames   = []string{"file", "memory"}
	deliverNames   = []string{"all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject"}
	ackNames       = []string{"explicit", "all", "none"}
)

// toBrokerStream checks a stream configuration from the API and maps it.
func (c *streamConfig) toBroker() (broker.StreamConfig, *apiError) {
	var cfg broker.StreamConfig
	bad := func(format string, args ...any) (broker.StreamConfig, *apiError) {
		return cfg, newAPIError(500, errCodeStreamInvalidCfg, format, args...)
	}
	if c.Replicas > 1 {
		return cfg, newAPIError(500, errCodeReplicasNotSupp, "replicas > 1 not supported in non-clustered mode")
	}
	if c.Sealed {
		return bad("ledge does not support sealed streams")
	}
	if c.AllowRollup {
		return bad("ledge does not support rollups (allow_rollup_hdrs)")
	}
	if c.MirrorDirect {
		return bad("ledge does not support mirrors (mirror_direct)")
	}
	if c.FirstSeq > 1 {
		return bad("ledge does not support first_seq")
	}
	if len(c.Metadata) > 0 {
		return bad("ledge does not support stream metadata")
	}
	r, ok := enumIndex(retentionNames, c.Retention, "limits")
	if !ok {
		return bad("invalid retention %q", c.Retention)
	}
	d, ok := enumIndex(discardNames, c.Discard, "old")
	if !ok {
		return bad("invalid discard policy %q", c.Discard)
	}
	st, ok := enumIndex(storageNames, c.Storage, "file")
	if !ok {
		return bad("invalid storage type %q", c.Storage)
	}
	switch c.Compression {
	case "", "none":
		cfg.Compression = log.CompressNone
	case "s2":
		cfg.Compression = log.CompressS2
	default:
		return bad("invalid compression %q", c.Compression)
	}
	if c.MaxAge < 0 || c.Duplicates < 0 {
		return bad("negative duration")
	}
	cfg.Name = c.Name
	cfg.Description = c.Description
	cfg.Subjects = c.Subjects
	cfg.Retention = broker.RetentionPolicy(r)
	cfg.Discard = broker.DiscardPolicy(d)
	cfg.Storage = broker.StorageType(st)
	cfg.MaxConsumers = int(unlimited(int64(c.MaxConsumers)))
	cfg.MaxMsgs = unlimited(c.MaxMsgs)
	cfg.MaxBytes = unlimited(c.MaxBytes)
	cfg.MaxAge = time.Duration(c.MaxAge)
	cfg.MaxMsgsPerSubject = unlimited(c.MaxMsgsPerSubject)
	cfg.MaxMsgSize = int32(unlimited(int64(c.MaxMsgSize)))
	cfg.DiscardNewPerSubject = c.DiscardNewPer
	cfg.Duplicates = time.Duration(c.Duplicates)
	cfg.NoAck = c.NoAck
	cfg.DenyDelete = c.DenyDelete
	cfg.DenyPurge = c.DenyPurge
	return cfg, nil
}

// streamConfigFrom maps a broker configuration to the API's.
func streamConfigFrom(cfg *broker.StreamConfig) streamConfig {
	comp := "none"
	if cfg.Compression != log.CompressNone {
		comp = "s2"
	}
	return streamConfig{
		Name:              cfg.Name,
		Description:       cfg.Description,
		Subjects:          cfg.Subjects,
		Retention:         cfg.Retention.String(),
		MaxConsumers:      int(orUnlimited(int64(cfg.MaxConsumers))),
		MaxMsgs:           orUnlimited(cfg.MaxMsgs),
		MaxBytes:          orUnlimited(cfg.MaxBytes),
		Discard:           cfg.Discard.String(),
		DiscardNewPer:     cfg.DiscardNewPerSubject,
		MaxAge:            int64(cfg.MaxAge),
		MaxMsgsPerSubject: orUnlimited(cfg.MaxMsgsPerSubject),
		MaxMsgSize:        int32(orUnlimited(int64(cfg.MaxMsgSize))),
		Storage:           cfg.Storage.String(),
		Replicas:          1,
		NoAck:             cfg.NoAck,
		Duplicates:        int64(cfg.Duplicates),
		DenyDelete:        cfg.DenyDelete,
		DenyPurge:         cfg.DenyPurge,
		// Direct gets are served (see directGet).
		AllowDirect: true,
		Compression: comp,
	}
}

func streamInfoFrom(info *broker.StreamInfo) *streamInfo {
	st := &info.State
	return &streamInfo{
		Config:  streamConfigFrom(&info.Config),
		Created: info.Config.Created,
		State: streamState{
			Msgs:        st.Msgs,
			Bytes:       st.Bytes,
			FirstSeq:    st.FirstSeq,
			FirstTime:   st.FirstTime,
			LastSeq:     st.LastSeq,
			LastTime:    st.LastTime,
			NumSubjects: st.NumSubjects,
			NumDeleted:  st.NumDeleted,
			Consumers:   st.Consumers,
		},
		TS: time.Now().UTC(),
	}
}

// toBroker checks a consumer configuration from the API and maps it.
func (c *consumerConfig) toBroker() (broker.ConsumerConfig, *apiError) {
	var cfg broker.ConsumerConfig
	bad := func(format string, args ...any) (broker.ConsumerConfig, *apiError) {
		return cfg, newAPIError(400, errCodeConsumerCreate, format, args...)
	}
	switch {
	case c.Replicas > 1:
		return cfg, newAPIError(500, errCodeReplicasNotSupp, "replicas > 1 not supported in non-clustered mode")
	case c.ReplayPolicy != "" && c.ReplayPolicy != "instant":
		return bad("ledge does not support replay policy %q", c.ReplayPolicy)
	case c.RateLimit != 0:
		return bad("ledge does not support rate_limit_bps")
	case c.SampleFrequency != "" && c.SampleFrequency != "0" && c.SampleFrequency != "0%":
		return bad("ledge does not support sample_freq")
	case c.MemoryStorage:
		return bad("ledge does not support mem_storage for consumers")
	case len(c.Metadata) > 0:
		return bad("ledge does not support consumer metadata")
	case c.Durable != "" && c.Name != "" && c.Durable != c.Name:
		return cfg, newAPIError(400, errCodeDurableNameDiffer, "consumer Durable and Name have to be equal if both are provided")
	}
	d, ok := enumIndex(deliverNames, c.DeliverPolicy, "all")
	if !ok {
		return cfg, newAPIError(400, errCodeConsumerInvalidPol, "invalid deliver policy %q", c.DeliverPolicy)
	}
	a, ok := enumIndex(ackNames, c.AckPolicy, "explicit")
	if !ok {
		return cfg, newAPIError(400, errCodeConsumerInvalidPol, "invalid ack policy %q", c.AckPolicy)
	}
	switch {
	case c.FilterSubject != "" && len(c.FilterSubjects) == 0:
		cfg.FilterSubjects = []string{c.FilterSubject}
	case c.FilterSubject != "" && !(len(c.FilterSubjects) == 1 && c.FilterSubjects[0] == c.FilterSubject):
		return cfg, newAPIError(500, errCodeDuplicateFilters, "consumer cannot have both FilterSubject and FilterSubjects specified")
	default:
		cfg.FilterSubjects = c.FilterSubjects
	}
	cfg.Name = c.Name
	if c.Durable != "" {
		cfg.Name = c.Durable
		cfg.Durable = true
	}
	cfg.Description = c.Description
	cfg.DeliverPolicy = broker.DeliverPolicy(d)
	cfg.OptStartSeq = c.OptStartSeq
	if c.OptStartTime != nil {
		cfg.OptStartTime = *c.OptStartTime
	}
	cfg.AckPolicy = broker.AckPolicy(a)
	cfg.AckWait = time.Duration(c.AckWait)
	cfg.MaxDeliver = max(c.MaxDeliver, 0)
	for _, b := range c.BackOff {
		cfg.BackOff = append(cfg.BackOff, time.Duration(b))
	}
	cfg.MaxAckPending = c.MaxAckPending
	cfg.MaxWaiting = c.MaxWaiting
	cfg.MaxRequestBatch = c.MaxRequestBatch
	cfg.MaxRequestExpires = time.Duration(c.MaxRequestExpires)
	cfg.MaxRequestMaxBytes = c.MaxRequestMaxBytes
	cfg.DeliverSubject = c.DeliverSubject
	cfg.DeliverGroup = c.DeliverGroup
	cfg.FlowControl = c.FlowControl
	cfg.IdleHeartbeat = time.Duration(c.Heartbeat)
	cfg.HeadersOnly = c.HeadersOnly
	cfg.InactiveThreshold = time.Duration(c.InactiveThreshold)
	return cfg, nil
}

func consumerConfigFrom(cfg *broker.ConsumerConfig) consumerConfig {
	c := consumerConfig{
		Name:               cfg.Name,
		Description:        cfg.Description,
		DeliverPolicy:      cfg.DeliverPolicy.String(),
		OptStartSeq:        cfg.OptStartSeq,
		AckPolicy:          cfg.AckPolicy.String(),
		AckWait:            int64(cfg.AckWait),
		MaxDeliver:         cfg.MaxDeliver,
		ReplayPolicy:       "instant",
		MaxWaiting:         cfg.MaxWaiting,
		MaxAckPending:      cfg.MaxAckPending,
		FlowControl:        cfg.FlowControl,
		Heartbeat:          int64(cfg.IdleHeartbeat),
		HeadersOnly:        cfg.HeadersOnly,
		MaxRequestBatch:    cfg.MaxRequestBatch,
		MaxRequestExpires:  int64(cfg.MaxRequestExpires),
		MaxRequestMaxBytes: cfg.MaxRequestMaxBytes,
		DeliverSubject:     cfg.DeliverSubject,
		DeliverGroup:       cfg.DeliverGroup,
		Replicas:           1,
	}
	if cfg.Durable {
		c.Durable = cfg.Name
	} else {
		c.InactiveThreshold = int64(cfg.InactiveThreshold)
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = -1
	}
	if !cfg.OptStartTime.IsZero() {
		t := cfg.OptStartTime
		c.OptStartTime = &t
	}
	for _, b := range cfg.BackOff {
		c.BackOff = append(c.BackOff, int64(b))
	}
	// A single filter is given both ways: nats.go checks that a request
	// with filter_subjects sees them in the answer, and older clients read
	// filter_subject.
	switch len(cfg.FilterSubjects) {
	case 0:
	case 1:
		c.FilterSubject = cfg.FilterSubjects[0]
		c.FilterSubjects = cfg.FilterSubjects
	default:
		c.FilterSubjects = cfg.FilterSubjects
	}
	return c
}

func consumerInfoFrom(info *broker.ConsumerInfo) *consumerInfo {
	return &consumerInfo{
		Stream:         info.Stream,
		Name:           info.Name,
		Created:        info.Config.Created,
		Config:         consumerConfigFrom(&info.Config),
		Delivered:      sequenceInfo{Consumer: info.Delivered.Consumer, Stream: info.Delivered.Stream},
		AckFloor:       sequenceInfo{Consumer: info.AckFloor.Consumer, Stream: info.AckFloor.Stream},
		NumAckPending:  info.NumAckPending,
		NumRedelivered: info.NumRedelivered,
		NumWaiting:     info.NumWaiting,
		NumPending:     info.NumPending,
		PushBound:      info.PushBound,
		TS:             time.Now().UTC(),
	}
}
