package natsgw

import (
	"errors"

	"github.com/valyala/bytebufferpool"

	lnet "github.com/ledgemq/ledge/net"
)

// A read from a publisher often holds hundreds of small PUBs for the same
// few subscribers. Writing each MSG to its receiver's connection on its own
// costs a lock, a copy into the queue and a loop wake-up per message, which
// profiling showed to be a quarter of the broker's time in pub/sub. So the
// deliveries of one Feed call are gathered per receiver and written once at
// its end, as nats-server flushes its per-client pending data after each
// read.
const (
	// maxBatches is how many receivers one Feed gathers for; deliveries to
	// further receivers are written directly.
	maxBatches = 4
	// maxBatchSize is the size at which a batch is written before the Feed
	// ends, which bounds the memory a publisher holds.
	maxBatchSize = 64 << 10
)

// outBatch is what one Feed call delivers to one receiver. The first
// delivery is written directly and only later ones are gathered, so that a
// read holding a single message (a request, a reply) pays nothing for
// batching.
type outBatch struct {
	to    *Session
	buf   *bytebufferpool.ByteBuffer // from the second delivery on
	msgs  int64
	bytes int64 // headers and payloads, for the statistics
}

// batchFor returns the batch for receiver to, starting one if there is
// room, and reports whether it already had one in this Feed. It returns nil
// when this Feed already gathers for maxBatches other receivers.
func (ss *Session) batchFor(to *Session) (b *outBatch, seen bool) {
	for i := 0; i < ss.nbatch; i++ {
		if ss.batches[i].to == to {
			return &ss.batches[i], true
		}
	}
	if ss.nbatch == maxBatches {
		return nil, false
	}
	b = &ss.batches[ss.nbatch]
	ss.nbatch++
	b.to = to
	return b, false
}

// deliverTo writes or gathers the MSG of op for subscription sid of
// receiver to.
func (ss *Session) deliverTo(to *Session, op *Op, sid string, header []byte) {
	size := int64(len(header) + len(op.Payload))
	b, seen := ss.batchFor(to)
	if b == nil || !seen {
		ss.out = appendMsg(ss.out[:0], op, sid, header)
		ss.write(to, ss.out, 1, size)
		return
	}
	if b.buf == nil {
		b.buf = bytebufferpool.Get()
	}
	b.buf.B = appendMsg(b.buf.B, op, sid, header)
	b.msgs++
	b.bytes += size
	if len(b.buf.B) >= maxBatchSize {
		ss.flushBatch(b)
	}
}

// flushBatch writes what b holds and empties it.
func (ss *Session) flushBatch(b *outBatch) {
	if len(b.buf.B) > 0 {
		ss.write(b.to, b.buf.B, b.msgs, b.bytes)
	}
	b.buf.B = b.buf.B[:0]
	b.msgs, b.bytes = 0, 0
}

// flushBatches writes every batch and gives the buffers back to the pool,
// so a session holds none between reads. It runs at the end of each Feed
// and before the session writes anything to its own client, which keeps
// messages to itself in order with its PONGs and +OKs.
func (ss *Session) flushBatches() {
	for i := 0; i < ss.nbatch; i++ {
		b := &ss.batches[i]
		if b.buf != nil {
			if len(b.buf.B) > 0 {
				ss.write(b.to, b.buf.B, b.msgs, b.bytes)
			}
			// Put with the length still set: the pool sizes the buffers
			// it keeps from what was used, and would drop every grown
			// buffer if it were told they come back empty.
			bytebufferpool.Put(b.buf)
		}
		*b = outBatch{}
	}
	ss.nbatch = 0
}

// write sends deliveries to a receiver and keeps the accounts: a full queue
// is a slow consumer (a closing one is not), and a queue left over half
// full stalls this publisher (see stallPause).
func (ss *Session) write(to *Session, p []byte, msgs, bytes int64) {
	c := to.conn
	if err := c.Write(p); err != nil {
		if errors.Is(err, lnet.ErrSlowConsumer) {
			ss.srv.stats.SlowConsumers.Add(1)
		}
		return
	}
	ss.srv.stats.OutMsgs.Add(msgs)
	ss.srv.stats.OutBytes.Add(bytes)
	to.mon.outMsgs.Add(msgs)
	if ss.stalledOn == nil && c.Congested() {
		ss.stalledOn = c
	}
}
