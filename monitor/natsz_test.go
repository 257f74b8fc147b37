package monitor

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// decodeStrict decodes a body into one of nats-server's own monitoring
// types, refusing any field that type does not have: every name ledge
// writes is one nats-server writes, with a type its readers accept.
func decodeStrict(t *testing.T, path string, body []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s does not decode as nats-server's %T: %v\n%s", path, v, err, body)
	}
}

func (r *rig) getStrict(t *testing.T, path string, v any) {
	t.Helper()
	status, body := r.do(t, http.MethodGet, path)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	decodeStrict(t, path, body, v)
}

// TestNATSMonitoringEndpoints reads /varz, /connz, /subsz and /jsz as
// nats-top and prometheus-nats-exporter do, into nats-server's types.
func TestNATSMonitoringEndpoints(t *testing.T) {
	r := newRig(t, Options{HTTPHost: "127.0.0.1", HTTPPort: 8222})
	tr := r.makeTraffic(t)

	var v server.Varz
	r.getStrict(t, "/varz", &v)
	if v.ID != r.src.NATS.ServerID || v.Version != "2.10.0" || v.Connections != 4 || v.InMsgs < 14 || v.OutMsgs == 0 ||
		v.MaxPayload != 1<<20 || v.HTTPPort != 8222 || v.Mem == 0 || v.Cores == 0 || v.Subscriptions < 3 || v.Start.IsZero() ||
		v.JetStream.Config == nil || !v.JetStream.Config.SyncAlways || v.JetStream.Stats == nil || v.JetStream.Stats.Store == 0 {
		t.Errorf("varz: %+v", v)
	}
	if v.Uptime == "" || v.Now.Before(v.Start) {
		t.Errorf("varz times: uptime %q, start %v, now %v", v.Uptime, v.Start, v.Now)
	}

	var c server.Connz
	r.getStrict(t, "/connz?subs=1&auth=true", &c)
	if c.NumConns != 1 || c.Total != 1 || c.Limit != 1024 || len(c.Conns) != 1 {
		t.Fatalf("connz: %+v", c)
	}
	ci := c.Conns[0]
	if ci.Name != "golden-client" || ci.Lang != "go" || ci.IP != "127.0.0.1" || ci.Port == 0 ||
		ci.NumSubs < 2 || len(ci.Subs) != int(ci.NumSubs) || ci.InMsgs < 10 || ci.Uptime == "" || ci.Idle == "" || ci.Kind != "Client" || ci.Type != "nats" {
		t.Errorf("connz connection: %+v", ci)
	}
	if id, err := tr.nc.GetClientID(); err != nil || id != ci.Cid {
		t.Errorf("connz cid %d, the client was told %d (%v)", ci.Cid, id, err)
	}
	r.getStrict(t, "/connz?subs=detail&sort=msgs_from&limit=5&offset=0", &c)
	if len(c.Conns) != 1 || len(c.Conns[0].SubsDetail) < 2 || c.Conns[0].SubsDetail[0].Sid == "" || c.Limit != 5 {
		t.Errorf("connz detail: %+v", c)
	}
	r.getStrict(t, "/connz?cid=999999", &c)
	if c.NumConns != 0 || len(c.Conns) != 0 {
		t.Errorf("connz of an unknown cid: %+v", c)
	}
	r.getStrict(t, "/connz?state=closed", &c)
	if len(c.Conns) != 0 {
		t.Errorf("connz closed: %+v", c)
	}

	var s server.Subsz
	r.getStrict(t, "/subsz?subs=1", &s)
	if s.SublistStats == nil || s.NumSubs < 3 || s.Total < 2 || len(s.Subs) != s.Total {
		t.Errorf("subsz: %+v %+v", s, s.SublistStats)
	}
	r.getStrict(t, "/subsz?subs=1&test=orders.new", &s)
	if s.Total != 2 {
		t.Errorf("subsz test=orders.new: %d subscriptions, want orders.* and the billing group", s.Total)
	}

	var j server.JSInfo
	r.getStrict(t, "/jsz?accounts=true&streams=true&consumers=true&config=true", &j)
	if j.Streams < 5 || j.Consumers < 2 || j.Messages < 7 || j.Store == 0 || len(j.AccountDetails) != 1 {
		t.Fatalf("jsz: %+v", j)
	}
	var jobs *server.StreamDetail
	for i := range j.AccountDetails[0].Streams {
		if sd := &j.AccountDetails[0].Streams[i]; sd.Name == "JOBS" {
			jobs = sd
		}
	}
	if jobs == nil || jobs.Config == nil || jobs.Config.Retention != server.WorkQueuePolicy || jobs.State.Msgs != 7 ||
		len(jobs.Consumer) != 1 || jobs.Consumer[0].NumPending != 5 || jobs.Consumer[0].NumAckPending != 2 ||
		jobs.Consumer[0].Config == nil || jobs.Consumer[0].Config.Durable != "workers" {
		t.Errorf("jsz JOBS: %+v", jobs)
	}
	j = server.JSInfo{}
	r.getStrict(t, "/jsz", &j)
	if j.AccountDetails != nil {
		t.Errorf("jsz without accounts lists them")
	}

	var h server.HealthStatus
	status, body := r.do(t, http.MethodGet, "/healthz")
	if err := json.Unmarshal(body, &h); status != 200 || err != nil || h.Status != "ok" {
		t.Errorf("healthz as nats-server's: %d %+v %v", status, h, err)
	}

}
