package main

// The AMQP 0-9-1 wire format as the load tool's client needs it (spec
// 4.2): it encodes the methods a client sends and decodes those a server
// sends. Encoders append to a caller's buffer; the decoder reads a frame
// in place into a reused amqpMethod whose byte slices point into the
// input, so neither allocates. ledge's gateway has its own codec for the
// other direction (amqpgw/frame.go, method.go); this one is small enough
// to keep with the client.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	amqpFrameMethod    = 1
	amqpFrameHeader    = 2
	amqpFrameBody      = 3
	amqpFrameHeartbeat = 8
	amqpFrameEnd       = 0xCE
	amqpFrameOverhead  = 8 // type, channel, size and frame-end

	// amqpFrameMax is the frame-max the client asks for (RabbitMQ's
	// default); the server's, when smaller, wins.
	amqpFrameMax = 128 << 10
	// amqpMinFrameMax is the spec's lowest frame-max (4.2.3).
	amqpMinFrameMax = 4096

	amqpClassBasic = 60
)

// amqpProtocolHeader opens an AMQP 0-9-1 connection.
var amqpProtocolHeader = []byte{'A', 'M', 'Q', 'P', 0, 0, 9, 1}

// amqpMID packs a class and method id into one number.
func amqpMID(class, method uint16) uint32 { return uint32(class)<<16 | uint32(method) }

// The methods the client sends or receives.
var (
	amqpConnStart    = amqpMID(10, 10)
	amqpConnStartOk  = amqpMID(10, 11)
	amqpConnSecure   = amqpMID(10, 20)
	amqpConnTune     = amqpMID(10, 30)
	amqpConnTuneOk   = amqpMID(10, 31)
	amqpConnOpen     = amqpMID(10, 40)
	amqpConnOpenOk   = amqpMID(10, 41)
	amqpConnClose    = amqpMID(10, 50)
	amqpConnCloseOk  = amqpMID(10, 51)
	amqpConnBlocked  = amqpMID(10, 60)
	amqpConnUnblock  = amqpMID(10, 61)
	amqpChanOpen     = amqpMID(20, 10)
	amqpChanOpenOk   = amqpMID(20, 11)
	amqpChanFlow     = amqpMID(20, 20)
	amqpChanFlowOk   = amqpMID(20, 21)
	amqpChanClose    = amqpMID(20, 40)
	amqpChanCloseOk  = amqpMID(20, 41)
	amqpExDeclare    = amqpMID(40, 10)
	amqpExDeclareOk  = amqpMID(40, 11)
	amqpQDeclare     = amqpMID(50, 10)
	amqpQDeclareOk   = amqpMID(50, 11)
	amqpQBind        = amqpMID(50, 20)
	amqpQBindOk      = amqpMID(50, 21)
	amqpQPurge       = amqpMID(50, 30)
	amqpQPurgeOk     = amqpMID(50, 31)
	amqpBQos         = amqpMID(60, 10)
	amqpBQosOk       = amqpMID(60, 11)
	amqpBConsume     = amqpMID(60, 20)
	amqpBConsumeOk   = amqpMID(60, 21)
	amqpBCancel      = amqpMID(60, 30)
	amqpBCancelOk    = amqpMID(60, 31)
	amqpBPublish     = amqpMID(60, 40)
	amqpBReturn      = amqpMID(60, 50)
	amqpBDeliver     = amqpMID(60, 60)
	amqpBAck         = amqpMID(60, 80)
	amqpBNack        = amqpMID(60, 120)
	amqpConfSelect   = amqpMID(85, 10)
	amqpConfSelectOk = amqpMID(85, 11)
)

// Content properties the client writes or reads (spec 1.8, basic class):
// flag bits from the highest, in the order the values follow.
const (
	amqpPropContentType     = 1 << 15
	amqpPropContentEncoding = 1 << 14
	amqpPropHeaders         = 1 << 13
	amqpPropDeliveryMode    = 1 << 12
	amqpPropPriority        = 1 << 11
	amqpPropCorrelationID   = 1 << 10
	amqpPropReplyTo         = 1 << 9
)

var errAMQPIncomplete = errors.New("amqp: incomplete frame")

// amqpFrame is one decoded frame; Payload points into the input.
type amqpFrame struct {
	Type    byte
	Channel uint16
	Payload []byte
}

// decodeAMQPFrame reads one frame from in: the bytes used, or
// errAMQPIncomplete, or an error for a frame larger than max or without
// its frame-end octet.
func decodeAMQPFrame(in []byte, max int, f *amqpFrame) (int, error) {
	if len(in) < 7 {
		return 0, errAMQPIncomplete
	}
	size := binary.BigEndian.Uint32(in[3:7])
	if uint64(size) > uint64(max-amqpFrameOverhead) {
		return 0, fmt.Errorf("frame of %d bytes exceeds frame-max %d", size, max)
	}
	end := 7 + int(size)
	if len(in) < end+1 {
		return 0, errAMQPIncomplete
	}
	if in[end] != amqpFrameEnd {
		return 0, errors.New("frame without its frame-end octet")
	}
	f.Type = in[0]
	f.Channel = binary.BigEndian.Uint16(in[1:3])
	f.Payload = in[7:end]
	return end + 1, nil
}

// amqpMethod is a decoded method from the server: the arguments of
// whichever it is. Slices point into the frame.
type amqpMethod struct {
	ID uint32

	Mechanisms   []byte // connection.start
	ChannelMax   uint16 // connection.tune
	FrameMax     uint32
	Heartbeat    uint16
	ReplyCode    uint16 // connection.close, channel.close, basic.return
	ReplyText    []byte
	FailClass    uint16
	FailMethod   uint16
	Queue        []byte // queue.declare-ok
	MessageCount uint32 // queue.declare-ok, queue.purge-ok
	ConsumerTag  []byte // basic.consume-ok, basic.cancel(-ok), basic.deliver
	DeliveryTag  uint64 // basic.deliver, basic.ack, basic.nack
	Redelivered  bool
	Multiple     bool // basic.ack, basic.nack
	Active       bool // channel.flow
	Exchange     []byte
	RoutingKey   []byte
}

// amqpReader reads the arguments of a method in order; the first
// shortage is kept in err and every later read returns zero.
type amqpReader struct {
	b   []byte
	err error
}

var errAMQPShort = errors.New("method arguments end early")

func (r *amqpReader) need(n int) bool {
	if r.err != nil || len(r.b) < n {
		r.err = errAMQPShort
		return false
	}
	return true
}

func (r *amqpReader) u8() byte {
	if !r.need(1) {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *amqpReader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *amqpReader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *amqpReader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *amqpReader) short() []byte {
	if !r.need(1) {
		return nil
	}
	n := int(r.b[0])
	if len(r.b) < 1+n {
		r.err = errAMQPShort
		return nil
	}
	v := r.b[1 : 1+n]
	r.b = r.b[1+n:]
	return v
}

// long reads a long string or a field table (both a 32-bit length and
// bytes); tables are skipped whole, the client reads none of them.
func (r *amqpReader) long() []byte {
	n := int64(r.u32())
	if r.err != nil {
		return nil
	}
	if int64(len(r.b)) < n {
		r.err = errAMQPShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// decodeAMQPMethod decodes the method frame payload p into m.
func decodeAMQPMethod(p []byte, m *amqpMethod) error {
	if len(p) < 4 {
		return errors.New("method frame shorter than its class and method ids")
	}
	*m = amqpMethod{ID: amqpMID(binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]))}
	r := amqpReader{b: p[4:]}
	switch m.ID {
	case amqpConnStart:
		r.u8() // version major, minor
		r.u8()
		r.long() // server properties
		m.Mechanisms = r.long()
		r.long() // locales
	case amqpConnTune:
		m.ChannelMax = r.u16()
		m.FrameMax = r.u32()
		m.Heartbeat = r.u16()
	case amqpConnClose, amqpChanClose:
		m.ReplyCode = r.u16()
		m.ReplyText = r.short()
		m.FailClass = r.u16()
		m.FailMethod = r.u16()
	case amqpChanFlow:
		m.Active = r.u8()&1 != 0
	case amqpQDeclareOk:
		m.Queue = r.short()
		m.MessageCount = r.u32()
		r.u32() // consumer count
	case amqpQPurgeOk:
		m.MessageCount = r.u32()
	case amqpBConsumeOk, amqpBCancelOk:
		m.ConsumerTag = r.short()
	case amqpBCancel:
		m.ConsumerTag = r.short()
		r.u8()
	case amqpBDeliver:
		m.ConsumerTag = r.short()
		m.DeliveryTag = r.u64()
		m.Redelivered = r.u8()&1 != 0
		m.Exchange = r.short()
		m.RoutingKey = r.short()
	case amqpBReturn:
		m.ReplyCode = r.u16()
		m.ReplyText = r.short()
		m.Exchange = r.short()
		m.RoutingKey = r.short()
	case amqpBAck, amqpBNack:
		m.DeliveryTag = r.u64()
		bits := r.u8()
		m.Multiple = bits&1 != 0
	case amqpConnOpenOk, amqpConnCloseOk, amqpChanOpenOk, amqpChanFlowOk, amqpChanCloseOk,
		amqpExDeclareOk, amqpQBindOk, amqpBQosOk, amqpConfSelectOk, amqpConnBlocked, amqpConnUnblock,
		amqpConnSecure:
		// Arguments the client has no use for.
		return nil
	default:
		return fmt.Errorf("unexpected method %d.%d from the server", m.ID>>16, m.ID&0xffff)
	}
	if r.err != nil {
		return fmt.Errorf("method %d.%d: %w", m.ID>>16, m.ID&0xffff, r.err)
	}
	return nil
}

// amqpContent is a decoded content header: the body's size and the
// properties the load tool reads (the RPC scenario's).
type amqpContent struct {
	BodySize      uint64
	CorrelationID []byte
	ReplyTo       []byte
}

// decodeAMQPContent decodes a content header frame payload.
func decodeAMQPContent(p []byte, h *amqpContent) error {
	*h = amqpContent{}
	r := amqpReader{b: p}
	class := r.u16()
	r.u16() // weight
	h.BodySize = r.u64()
	flags := r.u16()
	if r.err != nil {
		return fmt.Errorf("content header: %w", r.err)
	}
	if class != amqpClassBasic {
		return fmt.Errorf("content header of class %d", class)
	}
	// Properties in flag order; the client stops after reply-to.
	if flags&amqpPropContentType != 0 {
		r.short()
	}
	if flags&amqpPropContentEncoding != 0 {
		r.short()
	}
	if flags&amqpPropHeaders != 0 {
		r.long()
	}
	if flags&amqpPropDeliveryMode != 0 {
		r.u8()
	}
	if flags&amqpPropPriority != 0 {
		r.u8()
	}
	if flags&amqpPropCorrelationID != 0 {
		h.CorrelationID = r.short()
	}
	if flags&amqpPropReplyTo != 0 {
		h.ReplyTo = r.short()
	}
	if r.err != nil {
		return fmt.Errorf("content properties: %w", r.err)
	}
	return nil
}

// Encoders. Each appends one whole frame to dst.

func amqpFrameStart(dst []byte, typ byte, ch uint16) ([]byte, int) {
	at := len(dst)
	return append(dst, typ, byte(ch>>8), byte(ch), 0, 0, 0, 0), at
}

func amqpFrameFinish(dst []byte, at int) []byte {
	binary.BigEndian.PutUint32(dst[at+3:], uint32(len(dst)-at-7))
	return append(dst, amqpFrameEnd)
}

func amqpMethodStart(dst []byte, ch uint16, id uint32) ([]byte, int) {
	dst, at := amqpFrameStart(dst, amqpFrameMethod, ch)
	return binary.BigEndian.AppendUint32(dst, id), at
}

// appendShort appends a short string; callers keep s under 256 bytes.
func appendShort(dst []byte, s string) []byte {
	return append(append(dst, byte(len(s))), s...)
}

func appendLong(dst []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(len(s))), s...)
}

// appendBits packs flags into one octet, the first in the lowest bit.
func appendBits(dst []byte, flags ...bool) []byte {
	var b byte
	for i, f := range flags {
		if f {
			b |= 1 << i
		}
	}
	return append(dst, b)
}

func appendAMQPHeartbeat(dst []byte) []byte {
	return append(dst, amqpFrameHeartbeat, 0, 0, 0, 0, 0, 0, amqpFrameEnd)
}

// appendStartOk answers connection.start with PLAIN credentials and the
// client's properties: its name, and the capabilities it relies on.
func appendStartOk(dst []byte, name, user, pass string) []byte {
	dst, at := amqpMethodStart(dst, 0, amqpConnStartOk)
	tl := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendShort(dst, "product")
	dst = appendLong(append(dst, 'S'), "ledge-bench")
	dst = appendShort(dst, "version")
	dst = appendLong(append(dst, 'S'), version)
	if name != "" {
		dst = appendShort(dst, "connection_name")
		dst = appendLong(append(dst, 'S'), name)
	}
	dst = appendShort(dst, "capabilities")
	dst = append(dst, 'F')
	cl := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, c := range []string{"publisher_confirms", "basic.nack"} {
		dst = append(appendShort(dst, c), 't', 1)
	}
	binary.BigEndian.PutUint32(dst[cl:], uint32(len(dst)-cl-4))
	binary.BigEndian.PutUint32(dst[tl:], uint32(len(dst)-tl-4))
	dst = appendShort(dst, "PLAIN")
	dst = appendLong(dst, "\x00"+user+"\x00"+pass)
	dst = appendShort(dst, "en_US")
	return amqpFrameFinish(dst, at)
}

func appendTuneOk(dst []byte, channelMax uint16, frameMax uint32, heartbeat uint16) []byte {
	dst, at := amqpMethodStart(dst, 0, amqpConnTuneOk)
	dst = binary.BigEndian.AppendUint16(dst, channelMax)
	dst = binary.BigEndian.AppendUint32(dst, frameMax)
	dst = binary.BigEndian.AppendUint16(dst, heartbeat)
	return amqpFrameFinish(dst, at)
}

func appendConnOpen(dst []byte, vhost string) []byte {
	dst, at := amqpMethodStart(dst, 0, amqpConnOpen)
	dst = appendShort(dst, vhost)
	dst = appendShort(dst, "")
	dst = append(dst, 0)
	return amqpFrameFinish(dst, at)
}

// appendClose appends connection.close (ch 0) or channel.close.
func appendClose(dst []byte, ch uint16, code uint16, text string) []byte {
	id := amqpConnClose
	if ch != 0 {
		id = amqpChanClose
	}
	dst, at := amqpMethodStart(dst, ch, id)
	dst = binary.BigEndian.AppendUint16(dst, code)
	dst = appendShort(dst, text)
	dst = append(dst, 0, 0, 0, 0)
	return amqpFrameFinish(dst, at)
}

// appendEmptyMethod appends a method without arguments (close-ok, ...).
func appendEmptyMethod(dst []byte, ch uint16, id uint32) []byte {
	dst, at := amqpMethodStart(dst, ch, id)
	return amqpFrameFinish(dst, at)
}

func appendChanOpen(dst []byte, ch uint16) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpChanOpen)
	dst = appendShort(dst, "")
	return amqpFrameFinish(dst, at)
}

func appendFlowOk(dst []byte, ch uint16, active bool) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpChanFlowOk)
	dst = appendBits(dst, active)
	return amqpFrameFinish(dst, at)
}

func appendConfirmSelect(dst []byte, ch uint16) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpConfSelect)
	dst = append(dst, 0) // no-wait off
	return amqpFrameFinish(dst, at)
}

func appendQos(dst []byte, ch uint16, prefetch uint16) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpBQos)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, prefetch)
	dst = append(dst, 0) // per consumer, not global
	return amqpFrameFinish(dst, at)
}

// amqpQueueDecl is a queue.declare.
type amqpQueueDecl struct {
	Name                                    string
	Passive, Durable, Exclusive, AutoDelete bool
}

func appendQueueDeclare(dst []byte, ch uint16, q amqpQueueDecl) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpQDeclare)
	dst = append(dst, 0, 0)
	dst = appendShort(dst, q.Name)
	dst = appendBits(dst, q.Passive, q.Durable, q.Exclusive, q.AutoDelete, false)
	dst = append(dst, 0, 0, 0, 0) // no arguments
	return amqpFrameFinish(dst, at)
}

func appendQueueBind(dst []byte, ch uint16, queue, exchange, key string) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpQBind)
	dst = append(dst, 0, 0)
	dst = appendShort(dst, queue)
	dst = appendShort(dst, exchange)
	dst = appendShort(dst, key)
	dst = append(dst, 0)          // no-wait off
	dst = append(dst, 0, 0, 0, 0) // no arguments
	return amqpFrameFinish(dst, at)
}

func appendQueuePurge(dst []byte, ch uint16, queue string) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpQPurge)
	dst = append(dst, 0, 0)
	dst = appendShort(dst, queue)
	dst = append(dst, 0)
	return amqpFrameFinish(dst, at)
}

// appendExchangeCheck appends a passive exchange.declare: the lightest
// synchronous method, which Flush uses as a round trip behind what was
// published.
func appendExchangeCheck(dst []byte, ch uint16, exchange string) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpExDeclare)
	dst = append(dst, 0, 0)
	dst = appendShort(dst, exchange)
	dst = appendShort(dst, "direct")
	dst = appendBits(dst, true, false, false, false, false) // passive
	dst = append(dst, 0, 0, 0, 0)
	return amqpFrameFinish(dst, at)
}

func appendConsume(dst []byte, ch uint16, queue, tag string, noAck bool) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpBConsume)
	dst = append(dst, 0, 0)
	dst = appendShort(dst, queue)
	dst = appendShort(dst, tag)
	dst = appendBits(dst, false, noAck, false, false)
	dst = append(dst, 0, 0, 0, 0)
	return amqpFrameFinish(dst, at)
}

func appendCancel(dst []byte, ch uint16, tag string) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpBCancel)
	dst = appendShort(dst, tag)
	dst = append(dst, 0)
	return amqpFrameFinish(dst, at)
}

func appendAck(dst []byte, ch uint16, tag uint64, multiple bool) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpBAck)
	dst = binary.BigEndian.AppendUint64(dst, tag)
	dst = appendBits(dst, multiple)
	return amqpFrameFinish(dst, at)
}

// amqpPublishing is what a basic.publish carries besides its body.
type amqpPublishing struct {
	Exchange, RoutingKey   string
	DeliveryMode           byte // 1 transient, 2 persistent
	CorrelationID, ReplyTo string
}

// appendPublish appends basic.publish, its content header and the body
// in frames of at most frameMax bytes.
func appendPublish(dst []byte, ch uint16, frameMax int, p *amqpPublishing, body []byte) []byte {
	dst, at := amqpMethodStart(dst, ch, amqpBPublish)
	dst = append(dst, 0, 0)
	dst = appendShort(dst, p.Exchange)
	dst = appendShort(dst, p.RoutingKey)
	dst = append(dst, 0) // neither mandatory nor immediate
	dst = amqpFrameFinish(dst, at)

	dst, at = amqpFrameStart(dst, amqpFrameHeader, ch)
	dst = append(dst, 0, amqpClassBasic, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(body)))
	flags := uint16(amqpPropDeliveryMode)
	if p.CorrelationID != "" {
		flags |= amqpPropCorrelationID
	}
	if p.ReplyTo != "" {
		flags |= amqpPropReplyTo
	}
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = append(dst, p.DeliveryMode)
	if p.CorrelationID != "" {
		dst = appendShort(dst, p.CorrelationID)
	}
	if p.ReplyTo != "" {
		dst = appendShort(dst, p.ReplyTo)
	}
	dst = amqpFrameFinish(dst, at)

	chunk := frameMax - amqpFrameOverhead
	for len(body) > 0 {
		n := min(len(body), chunk)
		dst, at = amqpFrameStart(dst, amqpFrameBody, ch)
		dst = append(dst, body[:n]...)
		dst = amqpFrameFinish(dst, at)
		body = body[n:]
	}
	return dst
}
