package mqttgw

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/router"
)

// Retained messages are kept in a stream of their own, one message per
// subject (MaxMsgsPerSubject 1), under the prefix retainedPrefix: the log
// makes them durable and the per-subject limit drops the one a new retained
// publish replaces. The gateway keeps the subjects in memory to answer a
// new subscription without reading the stream.
const (
	retainedStream = "MQTT_retained"
	retainedPrefix = "$MQTT.rmsgs."
	// Headers that carry what the retained message's PUBLISH had.
	qosHeader = "Mqtt-Qos"
)

// retainedMsg is one retained message as a subscriber receives it.
type retainedMsg struct {
	subject string
	qos     byte
	headers []log.Header
	payload []byte
}

type retained struct {
	stream *broker.Stream // nil: memory only

	mu   sync.RWMutex
	msgs map[string]*retainedMsg // by subject
}

func openRetained(b *broker.Broker) (*retained, error) {
	r := &retained{msgs: make(map[string]*retainedMsg)}
	if b == nil {
		return r, nil
	}
	s, err := b.Stream(retainedStream)
	if errors.Is(err, broker.ErrStreamNotFound) {
		s, err = b.AddStream(broker.StreamConfig{
			Name:              retainedStream,
			Description:       "MQTT retained messages, one per topic",
			Subjects:          []string{retainedPrefix + ">"},
			MaxMsgsPerSubject: 1,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("mqtt: retained messages: %w", err)
	}
	r.stream = s
	for subject := range s.Subjects("") {
		m, err := s.GetLastMsg(subject)
		if err != nil {
			continue
		}
		rm := &retainedMsg{subject: subject[len(retainedPrefix):], payload: m.Payload}
		for _, h := range m.Headers {
			if string(h.Key) == qosHeader {
				q, _ := strconv.Atoi(string(h.Value))
				rm.qos = byte(q)
				continue
			}
			rm.headers = append(rm.headers, h)
		}
		r.msgs[rm.subject] = rm
	}
	return r, nil
}

// set retains m for its subject, or clears the subject when the payload is
// empty (MQTT-3.3.1-6, -7). done is called once it is durable.
func (r *retained) set(m *broker.Msg, done func(error)) {
	subject := string(m.Subject)
	if len(m.Payload) == 0 {
		r.mu.Lock()
		delete(r.msgs, subject)
		r.mu.Unlock()
		var err error
		if r.stream != nil {
			_, err = r.stream.Purge(broker.PurgeRequest{Filter: retainedPrefix + subject})
		}
		done(err)
		return
	}
	rm := &retainedMsg{subject: subject, qos: m.QoS, payload: bytes.Clone(m.Payload)}
	for _, h := range m.Headers {
		rm.headers = append(rm.headers, log.Header{Key: bytes.Clone(h.Key), Value: bytes.Clone(h.Value)})
	}
	r.mu.Lock()
	r.msgs[subject] = rm
	r.mu.Unlock()
	if r.stream == nil {
		done(nil)
		return
	}
	hdrs := append(append([]log.Header(nil), rm.headers...), log.Header{Key: []byte(qosHeader), Value: []byte{'0' + rm.qos}})
	err := r.stream.Publish(&broker.Message{
		Subject: []byte(retainedPrefix + subject),
		Headers: hdrs,
		Payload: rm.payload,
	}, func(_ broker.PubAck, err error) { done(err) })
	if err != nil {
		done(err)
	}
}

// setVolatile retains m in memory only (the $SYS topics).
func (r *retained) setVolatile(m *broker.Msg) {
	rm := &retainedMsg{subject: string(m.Subject), qos: m.QoS, payload: bytes.Clone(m.Payload)}
	r.mu.Lock()
	r.msgs[rm.subject] = rm
	r.mu.Unlock()
}

// matching returns the retained messages whose subject p matches; MQTT's
// rule that a leading wildcard does not match '$' topics applies.
func (r *retained) matching(p router.Pattern, skipDollar bool) []*retainedMsg {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*retainedMsg
	for subject, m := range r.msgs {
		if skipDollar && len(subject) > 0 && subject[0] == '$' {
			continue
		}
		if p.Matches(subject) {
			out = append(out, m)
		}
	}
	return out
}

func (r *retained) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.msgs)
}
