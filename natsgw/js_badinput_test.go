package natsgw

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestAPIBadInput: each bad request is answered with nats-server's error
// code, and nothing stored changes.
func TestAPIBadInput(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond})
	js.Publish(ctx, "s.1", []byte("one"))
	before, _ := s.Info(ctx)

	cases := []struct {
		name, subject, body string
		code                int
	}{
		{"malformed stream JSON", "$JS.API.STREAM.CREATE.X", `{"name":"X",`, 10025},
		{"empty create", "$JS.API.STREAM.CREATE.X", ``, 10025},
		{"name differs from subject", "$JS.API.STREAM.CREATE.X", `{"name":"Y"}`, 10056},
		{"overlapping subjects", "$JS.API.STREAM.CREATE.X", `{"name":"X","subjects":["s.*"]}`, 10065},
		{"name in use", "$JS.API.STREAM.CREATE.S", `{"name":"S","subjects":["other"]}`, 10058},
		{"replicas", "$JS.API.STREAM.CREATE.X", `{"name":"X","num_replicas":3}`, 10074},
		{"sealed", "$JS.API.STREAM.CREATE.X", `{"name":"X","sealed":true}`, 10052},
		{"rollups", "$JS.API.STREAM.CREATE.X", `{"name":"X","allow_rollup_hdrs":true}`, 10052},
		{"mirror", "$JS.API.STREAM.CREATE.X", `{"name":"X","mirror":{"name":"S"}}`, 10003},
		{"sources", "$JS.API.STREAM.CREATE.X", `{"name":"X","sources":[{"name":"S"}]}`, 10003},
		{"republish", "$JS.API.STREAM.CREATE.X", `{"name":"X","republish":{"src":">","dest":"r.>"}}`, 10003},
		{"subject transform", "$JS.API.STREAM.CREATE.X", `{"name":"X","subject_transform":{"src":">","dest":"t.>"}}`, 10003},
		{"zstd", "$JS.API.STREAM.CREATE.X", `{"name":"X","compression":"zstd"}`, 10052},
		{"bad retention", "$JS.API.STREAM.CREATE.X", `{"name":"X","retention":"forever"}`, 10052},
		{"unknown stream info", "$JS.API.STREAM.INFO.NOPE", ``, 10059},
		{"unknown stream delete", "$JS.API.STREAM.DELETE.NOPE", ``, 10059},
		{"unknown stream purge", "$JS.API.STREAM.PURGE.NOPE", ``, 10059},
		{"update unknown stream", "$JS.API.STREAM.UPDATE.NOPE", `{"name":"NOPE"}`, 10059},
		{"retention change", "$JS.API.STREAM.UPDATE.S", `{"name":"S","subjects":["s.>"],"retention":"workqueue"}`, 10052},
		{"msg get missing", "$JS.API.STREAM.MSG.GET.S", `{"seq":99}`, 10037},
		{"msg get malformed", "$JS.API.STREAM.MSG.GET.S", `{"seq":`, 10025},
		{"msg delete missing", "$JS.API.STREAM.MSG.DELETE.S", `{"seq":99}`, 10057},
		{"purge both seq and keep", "$JS.API.STREAM.PURGE.S", `{"seq":2,"keep":1}`, 10003},
		{"consumer on unknown stream", "$JS.API.CONSUMER.CREATE.NOPE.c", `{"stream_name":"NOPE","config":{"durable_name":"c"}}`, 10059},
		{"malformed consumer JSON", "$JS.API.CONSUMER.CREATE.S.c", `{"stream_name":"S","config":`, 10025},
		{"unknown consumer info", "$JS.API.CONSUMER.INFO.S.nope", ``, 10014},
		{"unknown consumer delete", "$JS.API.CONSUMER.DELETE.S.nope", ``, 10014},
		{"consumer exists", "$JS.API.CONSUMER.CREATE.S.c", `{"stream_name":"S","config":{"durable_name":"c","ack_policy":"none"},"action":"create"}`, 10148},
		{"update missing consumer", "$JS.API.CONSUMER.CREATE.S.d", `{"stream_name":"S","config":{"durable_name":"d"},"action":"update"}`, 10149},
		{"durable and name differ", "$JS.API.CONSUMER.CREATE.S", `{"stream_name":"S","config":{"durable_name":"a","name":"b"}}`, 10132},
		{"filter differs from subject", "$JS.API.CONSUMER.CREATE.S.f.s.x", `{"stream_name":"S","config":{"name":"f","filter_subject":"s.y"}}`, 10131},
		{"replay original", "$JS.API.CONSUMER.CREATE.S.r", `{"stream_name":"S","config":{"name":"r","replay_policy":"original"}}`, 10012},
		{"rate limit", "$JS.API.CONSUMER.CREATE.S.r", `{"stream_name":"S","config":{"name":"r","rate_limit_bps":1000}}`, 10012},
		{"sample frequency", "$JS.API.CONSUMER.CREATE.S.r", `{"stream_name":"S","config":{"name":"r","sample_freq":"50%"}}`, 10012},
		{"consumer replicas", "$JS.API.CONSUMER.CREATE.S.r", `{"stream_name":"S","config":{"name":"r","num_replicas":3}}`, 10074},
		{"priority groups", "$JS.API.CONSUMER.CREATE.S.r", `{"stream_name":"S","config":{"name":"r","priority_groups":["g"],"priority_policy":"pinned_client"}}`, 10003},
		{"bad deliver policy", "$JS.API.CONSUMER.CREATE.S.r", `{"stream_name":"S","config":{"name":"r","deliver_policy":"sometimes"}}`, 10094},
		{"unknown API", "$JS.API.STREAM.TEMPLATE.CREATE.X", `{}`, 10003},
	}
	for _, c := range cases {
		resp := apiCall(t, nc, c.subject, c.body)
		if got := errCode(resp); got != c.code {
			t.Errorf("%s: err_code %d, want %d (%v)", c.name, got, c.code, resp["error"])
		}
	}
	for _, name := range []string{"X", "Y"} {
		if _, err := g.b.Stream(name); err == nil {
			t.Errorf("a refused request created stream %s", name)
		}
	}
	if _, err := s.Consumer(ctx, "r"); err == nil {
		t.Error("a refused request created consumer r")
	}

	// Acknowledgements for deliveries the consumer does not hold.
	for _, subj := range []string{
		"$JS.ACK.S.c.1.1.1.0.0",   // never delivered
		"$JS.ACK.S.c.1.99.99.0.0", // no such message
		"$JS.ACK.S.nope.1.1.1.0.0",
		"$JS.ACK.NOPE.c.1.1.1.0.0",
		"$JS.ACK.S.c.1.x.1.0.0",
		"$JS.ACK.too.short",
	} {
		m, err := nc.Request(subj, []byte("+ACK"), 5*time.Second)
		if err != nil {
			t.Errorf("ack %s: %v", subj, err)
			continue
		}
		var resp map[string]any
		if json.Unmarshal(m.Data, &resp) != nil || errCode(resp) == 0 {
			t.Errorf("ack %s answered %q, want a JSON error", subj, m.Data)
		}
	}
	// A second acknowledgement of a message already acknowledged is
	// answered with an error.
	c, _ := s.Consumer(ctx, "c")
	b, _ := c.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	var reply string
	for m := range b.Messages() {
		reply = m.Reply()
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m, err := nc.Request(reply, []byte("+ACK"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Data), "no pending delivery") {
		t.Errorf("second ack of %s answered %q", reply, m.Data)
	}
	// A pull request with a bad body is refused with a status.
	sub, _ := nc.SubscribeSync("_INBOX.badpull")
	nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.S.c", "_INBOX.badpull", []byte(`{"batch":`))
	if m := nextMsg(t, sub); m.Header.Get("Status") != "400" {
		t.Errorf("bad pull request answered %v %q", m.Header, m.Data)
	}
	nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.S.c", "_INBOX.badpull", []byte(`{"batch":1,"priority":3}`))
	if m := nextMsg(t, sub); m.Header.Get("Status") != "400" {
		t.Errorf("pull request with an unsupported option answered %v %q", m.Header, m.Data)
	}

	after, _ := s.Info(ctx)
	if after.State.Msgs != before.State.Msgs || after.State.LastSeq != before.State.LastSeq || after.Config.Subjects[0] != "s.>" {
		t.Errorf("bad input changed the stream: %+v -> %+v", before.State, after.State)
	}
}

// TestAPIAdmin: names and lists with paging and subject filters, stream
// info with subject counts, purge variants, message get and delete, and
// account info.
func TestAPIAdmin(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	for i := 0; i < 1030; i++ {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: fmt.Sprintf("S%04d", i), Subjects: []string{fmt.Sprintf("s.%d.>", i)}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
	}
	names := js.StreamNames(ctx)
	n := 0
	for range names.Name() {
		n++
	}
	if names.Err() != nil || n != 1030 {
		t.Errorf("stream names: %d, %v", n, names.Err())
	}
	list := js.ListStreams(ctx, jetstream.WithStreamListSubject("s.7.x"))
	var found []string
	for si := range list.Info() {
		found = append(found, si.Config.Name)
	}
	if list.Err() != nil || strings.Join(found, ",") != "S0007" {
		t.Errorf("streams for subject s.7.x: %v %v", found, list.Err())
	}
	resp := apiCall(t, nc, "$JS.API.STREAM.NAMES", `{"offset":1024}`)
	if resp["total"].(float64) != 1030 || len(resp["streams"].([]any)) != 6 {
		t.Errorf("names page 2: total %v, %d names", resp["total"], len(resp["streams"].([]any)))
	}

	s, _ := js.Stream(ctx, "S0001")
	for i := 0; i < 10; i++ {
		js.Publish(ctx, fmt.Sprintf("s.1.%c", 'a'+i%3), []byte(fmt.Sprint(i)))
	}
	info, _ := s.Info(ctx, jetstream.WithSubjectFilter("s.1.a"))
	if len(info.State.Subjects) != 1 || info.State.Subjects["s.1.a"] != 4 || info.State.NumSubjects != 3 {
		t.Errorf("subject counts: %v (%d subjects)", info.State.Subjects, info.State.NumSubjects)
	}
	m, err := s.GetLastMsgForSubject(ctx, "s.1.b")
	if err != nil || string(m.Data) != "7" || m.Sequence != 8 {
		t.Errorf("last for s.1.b: %+v %v", m, err)
	}
	resp = apiCall(t, nc, "$JS.API.STREAM.MSG.GET.S0001", `{"seq":2,"next_by_subj":"s.1.a"}`)
	if msg, ok := resp["message"].(map[string]any); !ok || msg["seq"].(float64) != 4 {
		t.Errorf("next by subject: %v", resp)
	}
	if err := s.DeleteMsg(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMsg(ctx, 1); err == nil {
		t.Error("deleted message still there")
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("s.1.c")); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeKeep(2)); err != nil {
		t.Fatal(err)
	}
	info, _ = s.Info(ctx)
	if info.State.Msgs != 2 || info.State.LastSeq != 10 {
		t.Errorf("after purges: %+v", info.State)
	}

	for _, name := range []string{"a", "b", "c"} {
		s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, FilterSubject: "s.1." + name})
	}
	cn := s.ConsumerNames(ctx)
	var cnames []string
	for name := range cn.Name() {
		cnames = append(cnames, name)
	}
	if strings.Join(cnames, ",") != "a,b,c" {
		t.Errorf("consumer names %v %v", cnames, cn.Err())
	}
	if err := s.DeleteConsumer(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	cl := s.ListConsumers(ctx)
	cnames = nil
	for ci := range cl.Info() {
		cnames = append(cnames, ci.Name+"="+ci.Config.FilterSubject)
	}
	if strings.Join(cnames, ",") != "a=s.1.a,c=s.1.c" {
		t.Errorf("consumer list %v %v", cnames, cl.Err())
	}

	ai, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ai.Streams != 1030 || ai.Consumers != 2 || ai.Memory == 0 || ai.API.Total == 0 || ai.Limits.MaxStreams != -1 {
		t.Errorf("account info %+v", ai)
	}
	if err := js.DeleteStream(ctx, "S0001"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, "S0001"); err == nil {
		t.Error("deleted stream still there")
	}
}
