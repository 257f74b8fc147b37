package monitor

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/ledgemq/ledge/broker"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics with Prometheus's own parser.
func (r *rig) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(r.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != expoContentType {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("Prometheus cannot parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name with the given
// labels (name, value pairs), failing when there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func TestMetricsCountTheTraffic(t *testing.T) {
	r := newRig(t, Options{})
	r.makeTraffic(t)
	fams := r.scrape(t)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ledge_queue_messages_ready", []string{"stream", "JOBS", "consumer", "workers"}, 5},
		{"ledge_queue_messages_unacknowledged", []string{"stream", "JOBS", "consumer", "workers"}, 2},
		{"ledge_queue_messages_ready", []string{"queue", "task_queue", "protocol", "amqp"}, 2},
		{"ledge_queue_messages_unacknowledged", []string{"queue", "task_queue"}, 1},
		{"ledge_queue_consumers", []string{"queue", "task_queue"}, 1},
		{"ledge_stream_messages", []string{"stream", "JOBS"}, 7},
		{"ledge_stream_stored_messages_total", []string{"stream", "JOBS"}, 7},
		{"ledge_connections", []string{"protocol", "nats"}, 1},
		{"ledge_connections", []string{"protocol", "mqtt"}, 1},
		{"ledge_connections", []string{"protocol", "amqp"}, 1},
		{"ledge_messages_received_total", []string{"protocol", "amqp"}, 3},
		{"ledge_messages_received_total", []string{"protocol", "mqtt"}, 1},
		{"ledge_retained_messages", []string{"protocol", "mqtt"}, 1},
		{"ledge_ready", nil, 1},
		{"ledge_degraded", nil, 0},
		{"ledge_queues_messages_unacknowledged", nil, 4},
		{"ledge_connections", []string{"protocol", "stomp"}, 1},
		{"ledge_messages_received_total", []string{"protocol", "stomp"}, 2},
		{"ledge_messages_sent_total", []string{"protocol", "stomp"}, 1},
		{"ledge_received_bytes_total", []string{"protocol", "stomp"}, 6},
		{"ledge_queue_messages_ready", []string{"queue", "stomp_jobs", "protocol", "amqp"}, 1},
		{"ledge_queue_messages_unacknowledged", []string{"queue", "stomp_jobs"}, 1},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := value(t, fams, "ledge_listener_accepted_connections_total", "listener", "nats"); v < 1 {
		t.Errorf("nats listener accepted %v connections", v)
	}
	for _, h := range []string{"ledge_publish_durable_seconds", "ledge_fsync_seconds"} {
		f := fams[h]
		if f == nil || f.GetType() != dto.MetricType_HISTOGRAM || f.Metric[0].Histogram.GetSampleCount() == 0 {
			t.Errorf("histogram %s: %v", h, f)
			continue
		}
		hist := f.Metric[0].Histogram
		if n := len(hist.Bucket); n != 16 || hist.GetSampleSum() <= 0 {
			t.Errorf("%s: %d buckets, sum %v", h, n, hist.GetSampleSum())
		}
	}
	for name, f := range fams {
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s without _total", name)
		}
		if !strings.HasPrefix(name, "ledge_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "go_") {
			t.Errorf("family %s outside ledge_, process_ and go_", name)
		}
	}
	if _, ok := fams["ledge_connection_messages_received_total"]; ok {
		t.Errorf("per-connection series without MetricsConnections")
	}
}

// TestMetricsSeriesAreBounded: a thousand queues make MetricsTop series,
// the busiest; the totals still count all of them.
func TestMetricsSeriesAreBounded(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("all=", all), func(t *testing.T) {
			r := newRig(t, Options{MetricsTop: 5, MetricsAllQueues: all, MetricsConnections: true})
			r.makeTraffic(t)
			st, err := r.b.AddStream(broker.StreamConfig{Name: "MANY", Subjects: []string{"many.>"}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 40 {
				if _, err := st.AddConsumer(consumerConfig(fmt.Sprintf("c%02d", i)), 0); err != nil {
					t.Fatal(err)
				}
			}
			fams := r.scrape(t)
			n := len(fams["ledge_queue_messages_ready"].Metric)
			if total := value(t, fams, "ledge_queues", nil...); total < 41 {
				t.Errorf("ledge_queues %v, want every queue counted", total)
			}
			switch {
			case !all && n != 5:
				t.Errorf("%d queue series, want the 5 busiest", n)
			case all && n < 41:
				t.Errorf("%d queue series with every queue asked for", n)
			}
			if !all && value(t, fams, "ledge_queue_messages_ready", "stream", "JOBS", "consumer", "workers") != 5 {
				t.Errorf("the busiest queue is not among the series")
			}
			if c := fams["ledge_connection_messages_received_total"]; c == nil || len(c.Metric) != 4 {
				t.Errorf("per-connection series: %v", c)
			}
		})
	}
}

func TestExpositionEscapesNames(t *testing.T) {
	e := &expo{}
	e.family("ledge_test", "gauge", "A help with \\ and\na newline.")
	e.sample("ledge_test", 1.5, "queue", "a \"quoted\"\\name\nwith a newline", "bad", "\xff")
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(e.b))
	if err != nil {
		t.Fatalf("%v\n%s", err, e.b)
	}
	m := fams["ledge_test"].Metric[0]
	if got := m.Label[0].GetValue(); got != "a \"quoted\"\\name\nwith a newline" {
		t.Errorf("label read back as %q", got)
	}
	if fams["ledge_test"].GetHelp() != "A help with \\ and\na newline." || m.Gauge.GetValue() != 1.5 {
		t.Errorf("help %q value %v", fams["ledge_test"].GetHelp(), m.Gauge.GetValue())
	}
}

func consumerConfig(name string) broker.ConsumerConfig {
	return broker.ConsumerConfig{Name: name, Durable: true, FilterSubjects: []string{"many." + name}}
}
