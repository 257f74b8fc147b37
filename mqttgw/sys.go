package mqttgw

import (
	"strconv"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// sysTopics are the $SYS/broker/... topics, as mosquitto names them, that
// the gateway publishes every Options.SysInterval: retained, so that a
// dashboard that subscribes sees them at once, but kept in memory only,
// since writing them to flash every few seconds would wear it for nothing.
func (s *Server) publishSys(now time.Time) {
	st := &s.stats
	s.mu.Lock()
	parked := len(s.parked)
	s.mu.Unlock()
	values := []struct {
		topic string
		value int64
	}{
		{"$SYS/broker/uptime", int64(now.Sub(s.start) / time.Second)},
		{"$SYS/broker/clients/connected", st.Connections.Load()},
		{"$SYS/broker/clients/disconnected", int64(parked)},
		{"$SYS/broker/messages/received", st.InMsgs.Load()},
		{"$SYS/broker/messages/sent", st.OutMsgs.Load()},
		{"$SYS/broker/messages/dropped", st.Dropped.Load()},
		{"$SYS/broker/bytes/received", st.InBytes.Load()},
		{"$SYS/broker/bytes/sent", st.OutBytes.Load()},
		{"$SYS/broker/retained messages/count", int64(s.ret.count())},
	}
	for _, v := range values {
		subject, err := router.AppendSubjectFromMQTTTopic(nil, v.topic)
		if err != nil {
			continue
		}
		m := broker.Msg{Subject: subject, Payload: strconv.AppendInt(nil, v.value, 10), Retain: true}
		s.ret.setVolatile(&m)
		var res router.Result[broker.Receiver]
		if s.live.MatchBytes(subject, &res) == nil {
			deliverAll(&res, &m)
		}
	}
}

// run is the gateway's clock: $SYS topics and the bound on the backlog of
// absent persistent sessions.
func (s *Server) run() {
	defer close(s.done)
	every := s.opts.SysInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			if s.opts.SysInterval >= 0 {
				s.publishSys(now)
			}
			s.trimBacklogs()
		}
	}
}

// trimBacklogs applies MaxSessionBacklog to the persistent sessions: a
// session further behind loses its oldest messages, which are counted as
// dropped. The limit is what a box can afford to keep for one device that
// may never return before its session expires.
func (s *Server) trimBacklogs() {
	if s.persist == nil {
		return
	}
	for _, c := range s.persist.msgs.Consumers() {
		if n := c.TrimPending(uint64(s.opts.MaxSessionBacklog)); n > 0 {
			s.stats.Dropped.Add(int64(n))
			s.opts.Logger.Warn("mqtt: session backlog over its limit; oldest messages dropped", "consumer", c.Name(), "dropped", n, "limit", s.opts.MaxSessionBacklog)
		}
	}
}

// Close stops the gateway's clock. Sessions end with their connections.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
	})
}
