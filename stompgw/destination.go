package stompgw

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// destKind is what a destination names, in RabbitMQ's conventions.
type destKind uint8

const (
	// /queue/name: a queue the gateway declares (durable) if missing,
	// through the default exchange.
	destQueue destKind = iota + 1
	// /amq/queue/name: an existing queue, declared by anyone.
	destAmqQueue
	// /topic/key: amq.topic, the exchange every protocol shares.
	destTopic
	// /exchange/name/key: any exchange, with a routing or binding key.
	destExchange
	// /temp-queue/name: the connection's private queue of that name.
	destTempQueue
	// /reply-queue/name: another connection's temporary queue, as a
	// rewritten reply-to names it.
	destReplyQueue
)

// dest is a parsed destination; its slices alias the header.
type dest struct {
	kind destKind
	// name is the queue or exchange; key the routing or binding key.
	name, key []byte
}

var destPrefixes = []struct {
	prefix string
	kind   destKind
}{
	{"/queue/", destQueue},
	{"/amq/queue/", destAmqQueue},
	{"/topic/", destTopic},
	{"/exchange/", destExchange},
	{"/temp-queue/", destTempQueue},
	{"/reply-queue/", destReplyQueue},
}

// parseDest reads a destination header.
func parseDest(b []byte) (dest, bool) {
	for _, p := range destPrefixes {
		if !bytes.HasPrefix(b, []byte(p.prefix)) {
			continue
		}
		rest := b[len(p.prefix):]
		if len(rest) == 0 {
			return dest{}, false
		}
		d := dest{kind: p.kind, name: rest}
		switch p.kind {
		case destTopic:
			d.name, d.key = nil, rest
		case destExchange:
			if i := bytes.IndexByte(rest, '/'); i >= 0 {
				d.name, d.key = rest[:i], rest[i+1:]
			}
			if len(d.name) == 0 {
				return dest{}, false
			}
		}
		return d, true
	}
	return dest{}, false
}

const destHelp = "a destination is /queue/NAME, /amq/queue/NAME, /topic/KEY, /exchange/NAME[/KEY], /temp-queue/NAME or /reply-queue/NAME"

// appendDestination appends the destination header of a MESSAGE: where
// its exchange and routing key say it was sent, as RabbitMQ writes it.
func appendDestination(b []byte, v frame.Version, exchange, key []byte) []byte {
	b = append(b, "destination:"...)
	switch string(exchange) {
	case "":
		b = append(b, "/queue/"...)
	case "amq.topic":
		b = append(b, "/topic/"...)
	default:
		b = append(b, "/exchange/"...)
		b = frame.AppendValue(b, v, frame.MESSAGE, exchange)
		b = append(b, '/')
	}
	b = frame.AppendValue(b, v, frame.MESSAGE, key)
	return append(b, '\n')
}

// Reply-to addresses between the protocols: a STOMP /reply-queue/NAME
// (or a rewritten /temp-queue/) is the queue NAME to AMQP, which a
// responder answers through the default exchange; an AMQP reply-to that
// is not a STOMP destination is shown to STOMP as /reply-queue/NAME.
const replyQueuePrefix = "/reply-queue/"

// amqpReplyTo returns the AMQP reply-to of a STOMP one.
func amqpReplyTo(v []byte) []byte {
	if bytes.HasPrefix(v, []byte(replyQueuePrefix)) {
		return v[len(replyQueuePrefix):]
	}
	return v
}

// appendStompReplyTo appends the STOMP reply-to of an AMQP one.
func appendStompReplyTo(b []byte, ver frame.Version, v []byte) []byte {
	b = append(b, "reply-to:"...)
	if len(v) > 0 && v[0] != '/' {
		b = append(b, replyQueuePrefix...)
	}
	b = frame.AppendValue(b, ver, frame.MESSAGE, v)
	return append(b, '\n')
}

// numericArgs are the queue arguments RabbitMQ's STOMP plugin reads from
// headers as numbers.
var numericArgs = map[string]bool{
	"x-message-ttl": true, "x-expires": true, "x-max-length": true, "x-max-length-bytes": true,
	"x-max-priority": true, "x-delivery-limit": true,
}

// queueHeaders reads the queue properties of a SEND or SUBSCRIBE:
// durable, auto-delete, exclusive and x- arguments, with defaults given.
// given says whether any was there.
func queueHeaders(f *frame.Frame, opts amqpgw.QueueOptions) (amqpgw.QueueOptions, bool, string) {
	given := false
	flag := func(name string, dst *bool) string {
		v, ok := f.Get(name)
		if !ok {
			return ""
		}
		given = true
		switch string(v) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			return "header " + name + " must be true or false, not " + printable(v)
		}
		return ""
	}
	for _, p := range []struct {
		name string
		dst  *bool
	}{{"durable", &opts.Durable}, {"auto-delete", &opts.AutoDelete}, {"exclusive", &opts.Exclusive}} {
		if e := flag(p.name, p.dst); e != "" {
			return opts, true, e
		}
	}
	// The arguments in name order, so that two declarations with the same
	// headers in another order are the same queue.
	var names []string
	for _, h := range f.Headers {
		if bytes.HasPrefix(h.Key, []byte("x-")) && string(h.Key) != "x-queue-name" {
			names = append(names, string(h.Key))
		}
	}
	sort.Strings(names)
	for i, n := range names {
		if i > 0 && names[i-1] == n {
			continue
		}
		given = true
		v, _ := f.Get(n)
		if numericArgs[n] {
			x, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
			if err != nil {
				return opts, true, "header " + n + " must be a number, not " + printable(v)
			}
			opts.Arguments.SetInt(n, x)
		} else {
			opts.Arguments.SetString(n, string(v))
		}
	}
	return opts, given, ""
}
