package natsgw

import (
	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
)

// errCodeStorageExceeded is nats-server's "insufficient storage resources
// available" (JSStorageResourcesExceededErr).
const errCodeStorageExceeded = 10047

// permitStream checks a stream that a client creates or updates. Whoever
// may publish $JS.API.STREAM.CREATE may ask, but a stream captures
// messages that its creator can read back through consumers, so every
// subject it captures must be within the creator's subscribe rules
// (auth.Client.Covers). A user with a disk quota owns the streams it
// creates (StreamConfig.Owner): their MaxBytes together stay within it,
// and a stream asked for without a limit gets what is left of the quota.
func (s *Server) permitStream(cl *auth.Client, cfg *broker.StreamConfig, update bool) *apiError {
	subjects := cfg.Subjects
	if len(subjects) == 0 {
		subjects = []string{cfg.Name}
	}
	for _, subj := range subjects {
		if !cl.Covers(subj) {
			s.stats.PermissionDenials.Add(1)
			cl.Denied("stream", subj)
			return newAPIError(403, errCodeBadRequest, "permissions violation: user %s may not read %s, which the stream would capture", cl.User(), subj)
		}
	}
	var old *broker.StreamConfig
	if update {
		if st, err := s.js.b.Stream(cfg.Name); err == nil {
			c := st.Config()
			old = &c
		}
	}
	cfg.Owner = cl.User()
	if old != nil {
		cfg.Owner = old.Owner
	}
	quota := cl.Limits().DiskQuota
	if quota == 0 || cfg.Owner == "" || cfg.Owner != cl.User() {
		return nil
	}
	var used int64
	for _, st := range s.js.b.Streams() {
		c := st.Config()
		if c.Owner == cfg.Owner && c.Name != cfg.Name {
			used += c.MaxBytes
		}
	}
	left := quota - used
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = left
	}
	if left <= 0 || cfg.MaxBytes > left {
		return newAPIError(500, errCodeStorageExceeded, "insufficient storage resources available: user %s's disk quota is %d bytes, %d in use by its other streams", cfg.Owner, quota, used)
	}
	return nil
}
