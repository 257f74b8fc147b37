package natsgw

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
)

// The JetStream API: requests on $JS.API.> are answered here on their
// reply subjects, in nats-server's JSON, from the broker's streams and
// consumers. Administrative requests write files (a stream's folder, a
// consumer's state), so they run on a goroutine of their own, one at a
// time, never on an event loop; pull requests and acknowledgements only
// touch a consumer's memory and are served on the publisher's loop.

const (
	apiPrefix = "$JS.API."
	ackPrefix = "$JS.ACK."
	fcPrefix  = "$JS.FC."

	// Page sizes of the list requests, nats-server's.
	namesLimit = 1024
	listLimit  = 256
	// subjectsLimit bounds the per-subject counts of one STREAM.INFO.
	subjectsLimit = 100000
	// maxPendingAPI bounds administrative requests waiting their turn;
	// beyond it a request is refused rather than queued, so a client
	// that floods the API cannot grow the broker without bound.
	maxPendingAPI = 4096
)

// jetStream is the API's state.
type jetStream struct {
	b *broker.Broker
	// mu runs administrative requests one at a time, in arrival order
	// for one client (which waits for each answer).
	mu      sync.Mutex
	total   atomic.Uint64
	errors  atomic.Uint64
	pending atomic.Int64
}

// apiRequest is a copy of a request taken off the event loop.
type apiRequest struct {
	subject string // after "$JS.API."
	reply   string
	body    []byte
	// client is who asked (nil without auth): a stream it creates must
	// capture only what it may read, within its disk quota.
	client *auth.Client
}

// jsPublish serves a publish on a $JS subject and reports whether it was
// one the JetStream API owns (then it is still routed to core subscribers,
// but never answered with no responders).
func (ss *Session) jsPublish(op *Op) bool {
	subj := op.Subject
	switch {
	case bytes.HasPrefix(subj, []byte(ackPrefix)):
		ss.ack(op)
	case bytes.HasPrefix(subj, []byte(fcPrefix)):
		ss.flowControlReply(op)
	case bytes.HasPrefix(subj, []byte(apiPrefix)):
		ss.srv.js.total.Add(1)
		rest := subj[len(apiPrefix):]
		if bytes.HasPrefix(rest, []byte("CONSUMER.MSG.NEXT.")) {
			ss.pullNext(rest[len("CONSUMER.MSG.NEXT."):], op.Payload, op.Reply)
			return true
		}
		if len(op.Reply) == 0 {
			// Nobody to answer: nats-server ignores these too.
			return true
		}
		if ss.srv.js.pending.Add(1) > maxPendingAPI {
			ss.srv.js.pending.Add(-1)
			ss.srv.js.errors.Add(1)
			ss.srv.replyJSON(string(op.Reply), errorResponse{Type: typeAPIError,
				Error: newAPIError(503, errCodeBadRequest, "JetStream API queue limit reached")})
			return true
		}
		req := apiRequest{subject: string(rest), reply: string(op.Reply), body: bytes.Clone(op.Payload), client: ss.client}
		go ss.srv.handleAPI(req)
	default:
		return false
	}
	return true
}

// handleAPI answers one administrative request.
func (s *Server) handleAPI(req apiRequest) {
	js := s.js
	defer js.pending.Add(-1)
	resp := s.safeAPIResponse(req)
	if resp == nil {
		return
	}
	if er, ok := resp.(errorResponse); ok && er.Error != nil {
		js.errors.Add(1)
	}
	s.replyJSON(req.reply, resp)
}

// safeAPIResponse runs apiResponse under the API's lock. A bug reached by
// a request costs that request, answered with an error, not the broker:
// this goroutine is not an event loop, whose panics the transport
// recovers.
func (s *Server) safeAPIResponse(req apiRequest) (resp any) {
	s.js.mu.Lock()
	defer s.js.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logger.Error("jetstream: API request failed", "subject", apiPrefix+req.subject, "panic", r, "stack", string(debug.Stack()))
			resp = errResp(typeAPIError, newAPIError(500, errCodeBadRequest, "internal error"))
		}
	}()
	return s.apiResponse(req)
}

// errResp wraps an error as a response of the given type.
func errResp(typ string, e *apiError) any { return errorResponse{Type: typ, Error: e} }

// apiResponse computes the answer to req; nil sends nothing.
func (s *Server) apiResponse(req apiRequest) any {
	tokens := strings.Split(req.subject, ".")
	b := s.js.b
	switch {
	case req.subject == "INFO":
		return s.accountInfo()
	case len(tokens) == 3 && tokens[0] == "STREAM":
		name := tokens[2]
		switch tokens[1] {
		case "CREATE":
			return s.streamCreate(req.client, name, req.body, false)
		case "UPDATE":
			return s.streamCreate(req.client, name, req.body, true)
		case "INFO":
			return s.streamInfo(name, req.body)
		case "DELETE":
			if err := b.DeleteStream(name); err != nil {
				return errResp(typeStreamDelete, streamAPIError(err))
			}
			return successResponse{Type: typeStreamDelete, Success: true}
		case "PURGE":
			return s.streamPurge(name, req.body)
		}
	case len(tokens) == 2 && tokens[0] == "STREAM" && tokens[1] == "NAMES":
		return s.streamNames(req.body)
	case len(tokens) == 2 && tokens[0] == "STREAM" && tokens[1] == "LIST":
		return s.streamList(req.body)
	case len(tokens) == 4 && tokens[0] == "STREAM" && tokens[1] == "MSG":
		switch tokens[2] {
		case "GET":
			return s.msgGet(tokens[3], req.body)
		case "DELETE":
			return s.msgDelete(tokens[3], req.body)
		}
	case len(tokens) >= 3 && tokens[0] == "DIRECT" && tokens[1] == "GET":
		s.directGet(tokens[2], strings.Join(tokens[3:], "."), req.reply, req.body)
		return nil
	case len(tokens) >= 3 && tokens[0] == "CONSUMER" && tokens[1] == "CREATE":
		consumer, filter := "", ""
		if len(tokens) >= 4 {
			consumer = tokens[3]
		}
		if len(tokens) >= 5 {
			filter = strings.Join(tokens[4:], ".")
		}
		return s.consumerCreate(tokens[2], consumer, filter, false, req.body)
	case len(tokens) == 5 && tokens[0] == "CONSUMER" && tokens[1] == "DURABLE" && tokens[2] == "CREATE":
		return s.consumerCreate(tokens[3], tokens[4], "", true, req.body)
	case len(tokens) == 4 && tokens[0] == "CONSUMER" && tokens[1] == "INFO":
		c, e := s.lookupConsumer(tokens[2], tokens[3])
		if e != nil {
			return errResp(typeConsumerInfo, e)
		}
		info := c.Info()
		return consumerInfoResponse{Type: typeConsumerInfo, consumerInfo: consumerInfoFrom(&info)}
	case len(tokens) == 4 && tokens[0] == "CONSUMER" && tokens[1] == "DELETE":
		st, err := b.Stream(tokens[2])
		if err == nil {
			err = st.DeleteConsumer(tokens[3])
		}
		if err != nil {
			return errResp(typeConsumerDelete, consumerAPIError(err, nil))
		}
		return successResponse{Type: typeConsumerDelete, Success: true}
	case len(tokens) == 3 && tokens[0] == "CONSUMER" && (tokens[1] == "NAMES" || tokens[1] == "LIST"):
		return s.consumerList(tokens[2], tokens[1] == "NAMES", req.body)
	}
	return errResp(typeAPIError, newAPIError(400, errCodeBadRequest, "ledge does not support the JetStream API request %s", req.subject))
}

type successResponse struct {
	Type    string `json:"type"`
	Success bool   `json:"success"`
}

func (s *Server) accountInfo() any {
	resp := accountInfoResponse{
		Type: typeAccountInfo,
		Limits: accountLimits{
			MaxMemory: -1, MaxStorage: -1, MaxStreams: -1, MaxConsumers: -1, MaxAckPending: -1,
			MemoryMaxStreamBytes: -1, StorageMaxStreamByte: -1,
		},
		API: apiStats{Level: 1, Total: s.js.total.Load(), Errors: s.js.errors.Load()},
	}
	for _, st := range s.js.b.Streams() {
		info := st.Info()
		resp.Streams++
		resp.Consumers += info.State.Consumers
		if info.Config.Storage == broker.MemoryStorage {
			resp.Memory += info.State.Bytes
		} else {
			resp.Storage += info.State.Bytes
		}
	}
	return resp
}

func (s *Server) streamCreate(cl *auth.Client, name string, body []byte, update bool) any {
	typ := typeStreamCreate
	if update {
		typ = typeStreamUpdate
	}
	if len(body) == 0 {
		return errResp(typ, newAPIError(400, errCodeInvalidJSON, "invalid JSON: empty request"))
	}
	var jc streamConfig
	if e := decodeStrict(body, &jc, streamConfigKeys); e != nil {
		return errResp(typ, e)
	}
	if jc.Name == "" {
		jc.Name = name
	}
	if jc.Name != name {
		return errResp(typ, newAPIError(400, errCodeStreamMismatch, "stream name in subject does not match request"))
	}
	cfg, e := jc.toBroker()
	if e != nil {
		return errResp(typ, e)
	}
	if e := s.permitStream(cl, &cfg, update); e != nil {
		return errResp(typ, e)
	}
	var st *broker.Stream
	var err error
	existed := false
	if update {
		st, err = s.js.b.UpdateStream(cfg)
	} else {
		_, lookupErr := s.js.b.Stream(name)
		existed = lookupErr == nil
		st, err = s.js.b.AddStream(cfg)
	}
	if err != nil {
		return errResp(typ, streamAPIError(err))
	}
	info := st.Info()
	return streamInfoResponse{Type: typ, streamInfo: streamInfoFrom(&info), DidCreate: !update && !existed}
}

type streamInfoRequest struct {
	DeletedDetails bool   `json:"deleted_details"`
	SubjectsFilter string `json:"subjects_filter"`
	Offset         int    `json:"offset"`
}

func (s *Server) streamInfo(name string, body []byte) any {
	var req streamInfoRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return errResp(typeStreamInfo, errInvalidJSON(err))
		}
	}
	st, err := s.js.b.Stream(name)
	if err != nil {
		return errResp(typeStreamInfo, streamAPIError(err))
	}
	info := st.Info()
	si := streamInfoFrom(&info)
	resp := streamInfoResponse{Type: typeStreamInfo, streamInfo: si}
	if req.SubjectsFilter != "" {
		filter := req.SubjectsFilter
		if filter == ">" {
			filter = ""
		}
		counts := st.Subjects(filter)
		names := make([]string, 0, len(counts))
		for n := range counts {
			names = append(names, n)
		}
		sort.Strings(names)
		resp.Total = len(names)
		resp.Offset = min(max(req.Offset, 0), len(names))
		resp.Limit = subjectsLimit
		page := names[resp.Offset:]
		if len(page) > subjectsLimit {
			page = page[:subjectsLimit]
		}
		si.State.Subjects = make(map[string]uint64, len(page))
		for _, n := range page {
			si.State.Subjects[n] = counts[n]
		}
	}
	return resp
}

type listRequest struct {
	Offset  int    `json:"offset"`
	Subject string `json:"subject"`
}

func parseListRequest(body []byte) (listRequest, *apiError) {
	var req listRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return req, errInvalidJSON(err)
		}
	}
	if req.Offset < 0 {
		req.Offset = 0
	}
	return req, nil
}

// filteredStreams returns the streams that capture some subject the
// filter matches, sorted by name.
func (s *Server) filteredStreams(filter string) []*broker.Stream {
	all := s.js.b.Streams()
	if filter == "" || filter == ">" {
		return all
	}
	out := all[:0]
	for _, st := range all {
		for _, p := range st.Config().Subjects {
			if subjectsCollide(p, filter) {
				out = append(out, st)
				break
			}
		}
	}
	return out
}

type streamNamesResponse struct {
	Type    string   `json:"type"`
	Total   int      `json:"total"`
	Offset  int      `json:"offset"`
	Limit   int      `json:"limit"`
	Streams []string `json:"streams"`
}

func (s *Server) streamNames(body []byte) any {
	req, e := parseListRequest(body)
	if e != nil {
		return errResp(typeStreamNames, e)
	}
	streams := s.filteredStreams(req.Subject)
	resp := streamNamesResponse{Type: typeStreamNames, Total: len(streams), Offset: min(req.Offset, len(streams)), Limit: namesLimit, Streams: []string{}}
	for _, st := range streams[resp.Offset:min(resp.Offset+namesLimit, len(streams))] {
		resp.Streams = append(resp.Streams, st.Name())
	}
	return resp
}

type streamListResponse struct {
	Type    string        `json:"type"`
	Total   int           `json:"total"`
	Offset  int           `json:"offset"`
	Limit   int           `json:"limit"`
	Streams []*streamInfo `json:"streams"`
	Missing []string      `json:"missing,omitempty"`
}

func (s *Server) streamList(body []byte) any {
	req, e := parseListRequest(body)
	if e != nil {
		return errResp(typeStreamList, e)
	}
	streams := s.filteredStreams(req.Subject)
	resp := streamListResponse{Type: typeStreamList, Total: len(streams), Offset: min(req.Offset, len(streams)), Limit: listLimit, Streams: []*streamInfo{}}
	for _, st := range streams[resp.Offset:min(resp.Offset+listLimit, len(streams))] {
		info := st.Info()
		resp.Streams = append(resp.Streams, streamInfoFrom(&info))
	}
	return resp
}

type purgeRequest struct {
	Filter string `json:"filter"`
	Seq    uint64 `json:"seq"`
	Keep   uint64 `json:"keep"`
}

var purgeRequestKeys = map[string]bool{"filter": true, "seq": true, "keep": true}

type purgeResponse struct {
	Type    string `json:"type"`
	Success bool   `json:"success"`
	Purged  uint64 `json:"purged"`
}

func (s *Server) streamPurge(name string, body []byte) any {
	var req purgeRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if e := decodeStrict(body, &req, purgeRequestKeys); e != nil {
			return errResp(typeStreamPurge, e)
		}
	}
	st, err := s.js.b.Stream(name)
	if err != nil {
		return errResp(typeStreamPurge, streamAPIError(err))
	}
	filter := req.Filter
	if filter == ">" {
		filter = ""
	}
	n, err := st.Purge(broker.PurgeRequest{Filter: filter, Seq: req.Seq, Keep: req.Keep})
	if err != nil {
		return errResp(typeStreamPurge, streamAPIError(err))
	}
	return purgeResponse{Type: typeStreamPurge, Success: true, Purged: n}
}

type msgGetRequest struct {
	Seq        uint64 `json:"seq"`
	LastBySubj string `json:"last_by_subj"`
	NextBySubj string `json:"next_by_subj"`
}

var msgGetRequestKeys = map[string]bool{"seq": true, "last_by_subj": true, "next_by_subj": true}

type storedMsgJSON struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Header  []byte    `json:"hdrs,omitempty"`
	Data    []byte    `json:"data,omitempty"`
	Time    time.Time `json:"time"`
}

type msgGetResponse struct {
	Type    string         `json:"type"`
	Message *storedMsgJSON `json:"message"`
}

// getMsg finds the message a get request names.
func (s *Server) getMsg(stream string, body []byte) (*broker.StoredMsg, *apiError) {
	var req msgGetRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, newAPIError(400, errCodeBadRequest, "empty request")
	}
	if e := decodeStrict(body, &req, msgGetRequestKeys); e != nil {
		return nil, e
	}
	st, err := s.js.b.Stream(stream)
	if err != nil {
		return nil, streamAPIError(err)
	}
	var m *broker.StoredMsg
	switch {
	case req.LastBySubj != "" && req.NextBySubj == "" && req.Seq == 0:
		m, err = st.GetLastMsg(req.LastBySubj)
	case req.NextBySubj != "" && req.LastBySubj == "":
		m, err = st.GetNextMsg(max(req.Seq, 1), req.NextBySubj)
	case req.Seq > 0 && req.LastBySubj == "":
		m, err = st.GetMsg(req.Seq)
	default:
		return nil, newAPIError(400, errCodeBadRequest, "bad request")
	}
	if err != nil {
		return nil, streamAPIError(err)
	}
	return m, nil
}

func (s *Server) msgGet(stream string, body []byte) any {
	m, e := s.getMsg(stream, body)
	if e != nil {
		return errResp(typeMsgGet, e)
	}
	out := &storedMsgJSON{Subject: m.Subject, Seq: m.Seq, Data: m.Payload, Time: m.Time}
	if len(m.Headers) > 0 {
		out.Header = appendHeaderBlock(nil, "", m.Headers)
	}
	return msgGetResponse{Type: typeMsgGet, Message: out}
}

// directGet answers $JS.API.DIRECT.GET.<stream>[.<subject>] with the
// message itself, its place in the stream in headers, as nats-server does
// for streams that allow direct access.
func (s *Server) directGet(stream, lastFor, reply string, body []byte) {
	var m *broker.StoredMsg
	var e *apiError
	if lastFor != "" {
		st, err := s.js.b.Stream(stream)
		if err == nil {
			m, err = st.GetLastMsg(lastFor)
		}
		if err != nil {
			e = streamAPIError(err)
		}
	} else {
		m, e = s.getMsg(stream, body)
	}
	if e != nil {
		line := "404 Message Not Found"
		if e.Code != 404 {
			line = "400 Bad Request"
		}
		s.sendStatus(reply, line)
		return
	}
	hdr := append([]byte(nil), headerVersion...)
	hdr = append(hdr, crlf...)
	for _, h := range m.Headers {
		hdr = appendHeaderLine(hdr, string(h.Key), h.Value)
	}
	hdr = appendHeaderLine(hdr, "Nats-Stream", []byte(stream))
	hdr = appendHeaderLine(hdr, "Nats-Subject", []byte(m.Subject))
	hdr = appendHeaderInt(hdr, "Nats-Sequence", int64(m.Seq))
	hdr = appendHeaderLine(hdr, "Nats-Time-Stamp", []byte(m.Time.Format(time.RFC3339Nano)))
	hdr = append(hdr, crlf...)
	rs := getScratch()
	s.deliverServerMsg(rs, reply, nil, hdr, m.Payload, false)
	putScratch(rs)
}

type msgDeleteRequest struct {
	Seq     uint64 `json:"seq"`
	NoErase bool   `json:"no_erase"`
}

func (s *Server) msgDelete(stream string, body []byte) any {
	var req msgDeleteRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return errResp(typeMsgDelete, errInvalidJSON(err))
	}
	st, err := s.js.b.Stream(stream)
	if err == nil {
		err = st.DeleteMsg(req.Seq)
	}
	if err != nil {
		e := streamAPIError(err)
		if errors.Is(err, broker.ErrNoMessage) {
			e = newAPIError(400, errCodeMsgDeleteFailed, "no message found")
		}
		return errResp(typeMsgDelete, e)
	}
	return successResponse{Type: typeMsgDelete, Success: true}
}

// consumerCreateRequest is the body of the CONSUMER.CREATE requests.
type consumerCreateRequest struct {
	Stream string          `json:"stream_name"`
	Config json.RawMessage `json:"config"`
	Action string          `json:"action"`
}

func (s *Server) consumerCreate(stream, consumer, filter string, durable bool, body []byte) any {
	typ := typeConsumerCreate
	var req consumerCreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return errResp(typ, errInvalidJSON(err))
	}
	if req.Stream != "" && req.Stream != stream {
		return errResp(typ, newAPIError(400, errCodeStreamMismatch, "stream name in subject does not match request"))
	}
	var jc consumerConfig
	if len(req.Config) == 0 {
		return errResp(typ, newAPIError(400, errCodeConsumerCreate, "consumer config required"))
	}
	if e := decodeStrict(req.Config, &jc, consumerConfigKeys); e != nil {
		return errResp(typ, e)
	}
	if consumer != "" {
		if durable && jc.Durable == "" {
			jc.Durable = consumer
		}
		if jc.Name == "" && jc.Durable == "" {
			jc.Name = consumer
		}
		if (jc.Name != "" && jc.Name != consumer) || (jc.Durable != "" && jc.Durable != consumer) {
			return errResp(typ, newAPIError(400, errCodeDurableNameDiffer, "consumer name in subject does not match durable name in request"))
		}
	}
	if filter != "" && !(jc.FilterSubject == filter || (len(jc.FilterSubjects) == 1 && jc.FilterSubjects[0] == filter)) {
		return errResp(typ, newAPIError(400, errCodeFilterMismatch, "Consumer create request did not match filtered subject from create subject"))
	}
	if jc.MemoryStorage && jc.Durable == "" {
		// An ephemeral consumer keeps its state in memory anyway
		// (nats.go's ordered consumers ask for it).
		jc.MemoryStorage = false
	}
	cfg, e := jc.toBroker()
	if e != nil {
		return errResp(typ, e)
	}
	action := broker.CreateOrUpdate
	switch req.Action {
	case "":
	case "create":
		action = broker.CreateOnly
	case "update":
		action = broker.UpdateOnly
	default:
		return errResp(typ, newAPIError(400, errCodeBadRequest, "invalid consumer action %q", req.Action))
	}
	st, err := s.js.b.Stream(stream)
	if err != nil {
		return errResp(typ, streamAPIError(err))
	}
	if st.Config().Retention == broker.WorkQueuePolicy {
		// nats-server's rules for work queues, with its codes: one
		// consumer per message, from the start of the queue.
		if cfg.AckPolicy != broker.AckExplicit {
			return errResp(typ, newAPIError(400, errCodeWQExplicitAck, "workqueue stream requires explicit ack"))
		}
		if cfg.DeliverPolicy != broker.DeliverAll {
			return errResp(typ, newAPIError(400, errCodeWQDeliverAll, "consumer must be deliver all on workqueue stream"))
		}
	}
	c, err := st.AddConsumer(cfg, action)
	if err != nil {
		e := consumerAPIError(err, &cfg)
		if action == broker.UpdateOnly && errors.Is(err, broker.ErrConsumerNotFound) {
			e = newAPIError(400, errCodeConsumerNotExist, "consumer does not exist")
		}
		return errResp(typ, e)
	}
	info := c.Info()
	return consumerInfoResponse{Type: typ, consumerInfo: consumerInfoFrom(&info)}
}

func (s *Server) lookupConsumer(stream, name string) (*broker.Consumer, *apiError) {
	st, err := s.js.b.Stream(stream)
	if err != nil {
		return nil, streamAPIError(err)
	}
	c, err := st.Consumer(name)
	if err != nil {
		return nil, consumerAPIError(err, nil)
	}
	return c, nil
}

type consumerNamesResponse struct {
	Type      string   `json:"type"`
	Total     int      `json:"total"`
	Offset    int      `json:"offset"`
	Limit     int      `json:"limit"`
	Consumers []string `json:"consumers"`
}

type consumerListResponse struct {
	Type      string          `json:"type"`
	Total     int             `json:"total"`
	Offset    int             `json:"offset"`
	Limit     int             `json:"limit"`
	Consumers []*consumerInfo `json:"consumers"`
	Missing   []string        `json:"missing,omitempty"`
}

func (s *Server) consumerList(stream string, names bool, body []byte) any {
	typ := typeConsumerList
	if names {
		typ = typeConsumerNames
	}
	req, e := parseListRequest(body)
	if e != nil {
		return errResp(typ, e)
	}
	st, err := s.js.b.Stream(stream)
	if err != nil {
		return errResp(typ, streamAPIError(err))
	}
	all := st.Consumers()
	if req.Subject != "" {
		kept := all[:0]
		for _, c := range all {
			f := c.Config().FilterSubjects
			if len(f) == 0 {
				kept = append(kept, c)
				continue
			}
			for _, p := range f {
				if subjectsCollide(p, req.Subject) {
					kept = append(kept, c)
					break
				}
			}
		}
		all = kept
	}
	off := min(req.Offset, len(all))
	if names {
		resp := consumerNamesResponse{Type: typ, Total: len(all), Offset: off, Limit: namesLimit, Consumers: []string{}}
		for _, c := range all[off:min(off+namesLimit, len(all))] {
			resp.Consumers = append(resp.Consumers, c.Name())
		}
		return resp
	}
	resp := consumerListResponse{Type: typ, Total: len(all), Offset: off, Limit: listLimit, Consumers: []*consumerInfo{}}
	for _, c := range all[off:min(off+listLimit, len(all))] {
		info := c.Info()
		resp.Consumers = append(resp.Consumers, consumerInfoFrom(&info))
	}
	return resp
}

// subjectsCollide reports whether some subject matches both patterns
// (NATS wildcards: '*' one token, '>' one or more at the end).
func subjectsCollide(a, b string) bool {
	ta, tb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(ta) && i == len(tb):
			return true
		case i < len(ta) && ta[i] == ">":
			return i < len(tb)
		case i < len(tb) && tb[i] == ">":
			return i < len(ta)
		case i == len(ta) || i == len(tb):
			return false
		case ta[i] == "*" || tb[i] == "*" || ta[i] == tb[i]:
			continue
		default:
			return false
		}
	}
}

// pullNext serves $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> on the
// publisher's loop.
func (ss *Session) pullNext(names, body, reply []byte) {
	srv := ss.srv
	if len(reply) == 0 {
		return
	}
	dot := bytes.IndexByte(names, '.')
	if dot < 0 {
		srv.sendStatus(string(reply), "400 Bad Request")
		return
	}
	c := ss.lookupCached(names[:dot], names[dot+1:])
	if c == nil {
		// nats-server has no responder for a consumer it does not have.
		srv.sendStatus(string(reply), "503")
		return
	}
	req, ok := parsePullRequest(body)
	if !ok {
		srv.sendStatus(string(reply), "400 Bad Request")
		return
	}
	req.Reply = string(reply)
	ss.pull(c, req)
}

// pull queues a pull request and answers a refusal with nats-server's
// status.
func (ss *Session) pull(c *broker.Consumer, req broker.PullRequest) {
	err := c.Pull(req)
	if errors.Is(err, broker.ErrConsumerNotFound) {
		if c2 := ss.fresh(c); c2 != nil {
			err = c2.Pull(req)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, broker.ErrMaxWaiting):
		ss.srv.sendStatus(req.Reply, "409 Exceeded MaxWaiting")
	case errors.Is(err, broker.ErrNotPull):
		ss.srv.sendStatus(req.Reply, "409 Consumer is push based")
	case errors.Is(err, broker.ErrConsumerNotFound):
		ss.ackCons = nil
		ss.srv.sendStatus(req.Reply, "409 Consumer Deleted")
	default:
		d := strings.TrimPrefix(describe(err), "bad request: ")
		if d != "" {
			d = strings.ToUpper(d[:1]) + d[1:]
		}
		ss.srv.sendStatus(req.Reply, "409 "+d)
	}
}

// parsePullRequest reads a pull request's body: empty for one message, a
// number for a batch, or JSON.
func parsePullRequest(body []byte) (broker.PullRequest, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return broker.PullRequest{Batch: 1}, true
	}
	if n, ok := parseUint(body); ok {
		return broker.PullRequest{Batch: int(min(n, 1<<30))}, true
	}
	var j pullRequestJSON
	if decodeStrict(body, &j, pullRequestKeys) != nil {
		return broker.PullRequest{}, false
	}
	if j.Batch <= 0 {
		j.Batch = 1
	}
	return broker.PullRequest{
		Batch:     j.Batch,
		MaxBytes:  j.MaxBytes,
		Expires:   time.Duration(j.Expires),
		NoWait:    j.NoWait,
		Heartbeat: time.Duration(j.Heartbeat),
	}, true
}

// lookupCached returns the consumer, from the session's one-entry cache
// when it is the last one this session acknowledged or pulled from. The
// names are compared without allocating.
func (ss *Session) lookupCached(stream, consumer []byte) *broker.Consumer {
	if c := ss.ackCons; c != nil && string(consumer) == c.Name() && string(stream) == c.Stream().Name() {
		return c
	}
	st, err := ss.srv.js.b.Stream(string(stream))
	if err != nil {
		return nil
	}
	c, err := st.Consumer(string(consumer))
	if err != nil {
		return nil
	}
	ss.ackCons = c
	return c
}

// fresh is called when c, perhaps from the session's cache, has been
// deleted: it returns the consumer now registered under the same names
// (deleted and made again), or nil, and caches it.
func (ss *Session) fresh(c *broker.Consumer) *broker.Consumer {
	ss.ackCons = nil
	st, err := ss.srv.js.b.Stream(c.Stream().Name())
	if err != nil {
		return nil
	}
	c2, err := st.Consumer(c.Name())
	if err != nil || c2 == c {
		return nil
	}
	ss.ackCons = c2
	return c2
}

// ack serves a publish to $JS.ACK.<stream>.<consumer>.<deliveries>.<sseq>.
// <cseq>.<time>.<pending> (and the longer form with a domain and account
// that nats.go also parses).
func (ss *Session) ack(op *Op) {
	var tok [14][]byte
	n := 0
	rest := op.Subject
	for n < len(tok) {
		i := bytes.IndexByte(rest, '.')
		if i < 0 {
			tok[n] = rest
			n++
			break
		}
		tok[n] = rest[:i]
		n++
		rest = rest[i+1:]
	}
	var stream, consumer, sseq []byte
	switch {
	case n == 9:
		stream, consumer, sseq = tok[2], tok[3], tok[5]
	case n >= 12:
		stream, consumer, sseq = tok[4], tok[5], tok[7]
	default:
		ss.ackError(op.Reply, newAPIError(400, errCodeBadRequest, "malformed ack subject"))
		return
	}
	seq, ok := parseUint(sseq)
	c := ss.lookupCached(stream, consumer)
	if !ok || c == nil {
		ss.ackError(op.Reply, newAPIError(404, errCodeConsumerNotFound, "consumer not found"))
		return
	}
	kind, delay, next := broker.Ack, time.Duration(0), false
	body := op.Payload
	var arg []byte
	if i := bytes.IndexByte(body, ' '); i >= 0 {
		body, arg = body[:i], bytes.TrimSpace(body[i+1:])
	}
	switch string(body) {
	case "", "+ACK":
	case "+NXT":
		next = true
	case "-NAK":
		kind = broker.Nak
		if len(arg) > 0 {
			var d struct {
				Delay int64 `json:"delay"`
			}
			if json.Unmarshal(arg, &d) == nil {
				delay = time.Duration(d.Delay)
			}
		}
	case "+WPI":
		kind = broker.InProgress
	case "+TERM":
		kind = broker.Term
	default:
		ss.ackError(op.Reply, newAPIError(400, errCodeBadRequest, "unknown acknowledgement %q", body))
		return
	}
	apply := func(c *broker.Consumer) error {
		if kind == broker.Term {
			return c.Terminate(seq, string(arg))
		}
		return c.Ack(seq, kind, delay)
	}
	err := apply(c)
	if errors.Is(err, broker.ErrConsumerNotFound) {
		if c2 := ss.fresh(c); c2 != nil {
			c = c2
			err = apply(c)
		}
	}
	if next {
		if len(op.Reply) == 0 {
			return
		}
		req, ok := parsePullRequest(arg)
		if !ok {
			ss.srv.sendStatus(string(op.Reply), "400 Bad Request")
			return
		}
		req.Reply = string(op.Reply)
		ss.pull(c, req)
		return
	}
	if len(op.Reply) == 0 {
		return
	}
	if err != nil {
		ss.ackError(op.Reply, consumerAPIError(err, nil))
		return
	}
	ss.srv.reply(string(op.Reply), nil)
}

// ackError answers an acknowledgement sent as a request.
func (ss *Session) ackError(reply []byte, e *apiError) {
	if len(reply) == 0 {
		return
	}
	ss.srv.replyJSON(string(reply), errorResponse{Type: typeAPIError, Error: e})
}

// flowControlReply serves a publish to $JS.FC.<stream>.<consumer>.<n>.
func (ss *Session) flowControlReply(op *Op) {
	rest := op.Subject[len(fcPrefix):]
	i := bytes.IndexByte(rest, '.')
	if i < 0 {
		return
	}
	j := bytes.IndexByte(rest[i+1:], '.')
	if j < 0 {
		return
	}
	if c := ss.lookupCached(rest[:i], rest[i+1:i+1+j]); c != nil {
		c.FlowControlReply(string(op.Subject))
	}
}

// capture stores a publish in the stream st and answers its reply subject
// with the PubAck once the message is durable, or at once with the error
// that refused it. The publish counts as delivered (for no-responders).
func (ss *Session) capture(st *broker.Stream, op *Op) bool {
	m := &ss.jsMsg
	*m = broker.Message{Subject: op.Subject, Payload: op.Payload}
	if len(op.Header) > 0 {
		hdrs, ok := ParseHeaders(ss.jsHdrs[:0], op.Header)
		ss.jsHdrs = hdrs
		if !ok {
			ss.pubError(op.Reply, st.Name(), newAPIError(400, errCodeBadRequest, "malformed message headers"))
			return true
		}
		m.Headers = hdrs
		for _, h := range hdrs {
			switch {
			case bytes.Equal(h.Key, hdrMsgID):
				if len(h.Value) > 0 {
					m.MsgID = h.Value
				}
			case bytes.Equal(h.Key, hdrExpStream):
				m.ExpectedStream = string(h.Value)
			case bytes.Equal(h.Key, hdrExpLastSeq):
				n, ok := parseUint(h.Value)
				if !ok {
					ss.pubError(op.Reply, st.Name(), newAPIError(400, errCodeBadRequest, "invalid Nats-Expected-Last-Sequence"))
					return true
				}
				ss.jsExpSeq = n
				m.ExpectedLastSeq = &ss.jsExpSeq
			case bytes.Equal(h.Key, hdrExpSubjSeq):
				n, ok := parseUint(h.Value)
				if !ok {
					ss.pubError(op.Reply, st.Name(), newAPIError(400, errCodeBadRequest, "invalid Nats-Expected-Last-Subject-Sequence"))
					return true
				}
				ss.jsExpSubjSeq = n
				m.ExpectedLastSubjectSeq = &ss.jsExpSubjSeq
			case bytes.Equal(h.Key, hdrExpLastID):
				m.ExpectedLastMsgID = string(h.Value)
			case bytes.HasPrefix(h.Key, hdrNatsPrefix):
				for _, u := range unsupportedHeaders {
					if string(h.Key) == u.key {
						ss.pubError(op.Reply, st.Name(), newAPIError(u.code, u.errCode, "%s", u.descr))
						return true
					}
				}
			}
		}
	}
	var pa *pubAck
	var done func(broker.PubAck, error)
	if len(op.Reply) > 0 && !st.Config().NoAck {
		pa = pubAckPool.Get().(*pubAck)
		pa.srv, pa.stream = ss.srv, st
		pa.reply = append(pa.reply[:0], op.Reply...)
		done = pa.done
	}
	if err := st.Publish(m, done); err != nil {
		if pa != nil {
			pa.release()
		}
		ss.pubError(op.Reply, st.Name(), publishAPIError(err))
	}
	m.Headers, m.MsgID = nil, nil
	// A stream took it: like nats-server, whose streams subscribe to their
	// subjects, that is interest even when no PubAck is sent (NoAck).
	return true
}

// pubAck is a publish waiting for its PubAck. It is pooled and its
// callback made once, so that a confirmed publish allocates nothing here.
type pubAck struct {
	srv    *Server
	stream *broker.Stream
	reply  []byte
	buf    []byte
	done   func(broker.PubAck, error)
}

var pubAckPool sync.Pool

func init() {
	// Set here: the pool's New refers, through complete, to the pool.
	pubAckPool.New = func() any {
		p := new(pubAck)
		p.done = p.complete
		return p
	}
}

// complete answers the publisher once the stream reports the message
// durable (or lost), from whatever goroutine the log calls it on.
func (p *pubAck) complete(ack broker.PubAck, err error) {
	if err != nil {
		p.srv.replyJSON(string(p.reply), pubErrorResponse{Stream: p.stream.Name(), Error: newAPIError(503, errCodeStoreFailed, "%s", describe(err))})
	} else {
		p.buf = appendPubAck(p.buf[:0], ack)
		rs := getScratch()
		p.srv.deliverServerMsgBytes(rs, p.reply, nil, nil, p.buf, false)
		putScratch(rs)
	}
	p.release()
}

func (p *pubAck) release() {
	p.srv, p.stream = nil, nil
	pubAckPool.Put(p)
}

// appendPubAck appends {"stream":"S","seq":N[,"duplicate":true]}.
func appendPubAck(dst []byte, ack broker.PubAck) []byte {
	dst = append(dst, `{"stream":`...)
	dst = strconv.AppendQuote(dst, ack.Stream)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, ack.Seq, 10)
	if ack.Duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	return append(dst, '}')
}

type pubErrorResponse struct {
	Stream string    `json:"stream"`
	Seq    uint64    `json:"seq"`
	Error  *apiError `json:"error"`
}

func (ss *Session) pubError(reply []byte, stream string, e *apiError) {
	if len(reply) == 0 {
		return
	}
	ss.srv.replyJSON(string(reply), pubErrorResponse{Stream: stream, Error: e})
}
