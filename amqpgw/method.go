package amqpgw

import (
	"encoding/binary"
	"fmt"
)

// Class and method ids of the methods this gateway speaks (spec 1.4 to
// 1.11, with RabbitMQ's confirm class and its basic.nack).
const (
	classConnection = 10
	classChannel    = 20
	classExchange   = 40
	classQueue      = 50
	classBasic      = 60
	classConfirm    = 85
	classTx         = 90
)

// methodID packs class and method into one number for switches.
type methodID uint32

func mid(class, method uint16) methodID { return methodID(class)<<16 | methodID(method) }

var (
	connStart     = mid(10, 10)
	connStartOk   = mid(10, 11)
	connSecure    = mid(10, 20)
	connSecureOk  = mid(10, 21)
	connTune      = mid(10, 30)
	connTuneOk    = mid(10, 31)
	connOpen      = mid(10, 40)
	connOpenOk    = mid(10, 41)
	connClose     = mid(10, 50)
	connCloseOk   = mid(10, 51)
	connBlocked   = mid(10, 60)
	connUnblocked = mid(10, 61)
	connUpdSecret = mid(10, 70)

	chanOpen    = mid(20, 10)
	chanOpenOk  = mid(20, 11)
	chanFlow    = mid(20, 20)
	chanFlowOk  = mid(20, 21)
	chanClose   = mid(20, 40)
	chanCloseOk = mid(20, 41)

	exDeclare   = mid(40, 10)
	exDeclareOk = mid(40, 11)
	exDelete    = mid(40, 20)
	exDeleteOk  = mid(40, 21)
	exBind      = mid(40, 30)
	exBindOk    = mid(40, 31)
	exUnbind    = mid(40, 40)
	exUnbindOk  = mid(40, 51)

	qDeclare   = mid(50, 10)
	qDeclareOk = mid(50, 11)
	qBind      = mid(50, 20)
	qBindOk    = mid(50, 21)
	qPurge     = mid(50, 30)
	qPurgeOk   = mid(50, 31)
	qDelete    = mid(50, 40)
	qDeleteOk  = mid(50, 41)
	qUnbind    = mid(50, 50)
	qUnbindOk  = mid(50, 51)

	bQos          = mid(60, 10)
	bQosOk        = mid(60, 11)
	bConsume      = mid(60, 20)
	bConsumeOk    = mid(60, 21)
	bCancel       = mid(60, 30)
	bCancelOk     = mid(60, 31)
	bPublish      = mid(60, 40)
	bReturn       = mid(60, 50)
	bDeliver      = mid(60, 60)
	bGet          = mid(60, 70)
	bGetOk        = mid(60, 71)
	bGetEmpty     = mid(60, 72)
	bAck          = mid(60, 80)
	bReject       = mid(60, 90)
	bRecoverAsync = mid(60, 100)
	bRecover      = mid(60, 110)
	bRecoverOk    = mid(60, 111)
	bNack         = mid(60, 120)

	confSelect   = mid(85, 10)
	confSelectOk = mid(85, 11)

	txSelect     = mid(90, 10)
	txSelectOk   = mid(90, 11)
	txCommit     = mid(90, 20)
	txCommitOk   = mid(90, 21)
	txRollback   = mid(90, 30)
	txRollbackOk = mid(90, 31)
)

// Method is a decoded method frame: the arguments of whichever method it
// is, each in the field the spec names. Byte slices point into the frame
// and are valid only while it is; a Method is reused from frame to frame,
// so decoding allocates nothing.
type Method struct {
	ID methodID

	// Short strings.
	Exchange, Queue, RoutingKey, ConsumerTag, Type []byte
	Destination, Source                            []byte
	Mechanism, Locale, VirtualHost, ReplyText      []byte
	// Long strings and field tables, tables raw and validated.
	Response, Arguments, ClientProperties []byte

	DeliveryTag   uint64
	ReplyCode     uint16
	CloseClass    uint16
	CloseMethod   uint16
	ChannelMax    uint16
	FrameMax      uint32
	Heartbeat     uint16
	PrefetchSize  uint32
	PrefetchCount uint16

	Passive, Durable, AutoDelete, Internal, NoWait bool
	Exclusive, IfUnused, IfEmpty, NoLocal, NoAck   bool
	Mandatory, Immediate, Multiple, Requeue        bool
	Active, Global                                 bool
}

// reader walks a method's arguments; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = &frameError{codeSyntaxError, "SYNTAX_ERROR - malformed method arguments"}
	}
	r.b = nil
}

func (r *reader) u8() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if len(r.b) < 2 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) shortstr() []byte {
	n := int(r.u8())
	if len(r.b) < n {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) longstr() []byte {
	n := r.u32()
	if uint64(len(r.b)) < uint64(n) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// table returns a field table's content (without its length), checked
// field by field.
func (r *reader) table() []byte {
	t := r.longstr()
	if r.err == nil && validateTable(t, 0) != nil {
		r.fail()
	}
	return t
}

// bits returns the next octet of packed bit arguments.
func (r *reader) bits() byte { return r.u8() }

// decodeMethod decodes a method frame's payload into m.
func decodeMethod(p []byte, m *Method) error {
	*m = Method{}
	r := reader{b: p}
	m.ID = mid(r.u16(), r.u16())
	if r.err != nil {
		return r.err
	}
	switch m.ID {
	case connStartOk:
		m.ClientProperties = r.table()
		m.Mechanism = r.shortstr()
		m.Response = r.longstr()
		m.Locale = r.shortstr()
	case connSecureOk:
		m.Response = r.longstr()
	case connTuneOk:
		m.ChannelMax = r.u16()
		m.FrameMax = r.u32()
		m.Heartbeat = r.u16()
	case connOpen:
		m.VirtualHost = r.shortstr()
		r.shortstr()
		r.bits()
	case connClose, chanClose:
		m.ReplyCode = r.u16()
		m.ReplyText = r.shortstr()
		m.CloseClass = r.u16()
		m.CloseMethod = r.u16()
	case connCloseOk, chanCloseOk, confSelect, txSelect, txCommit, txRollback, connUnblocked, bRecoverOk:
		if m.ID == confSelect {
			m.NoWait = r.bits()&1 != 0
		}
	case connBlocked:
		m.ReplyText = r.shortstr()
	case connUpdSecret:
		m.Response = r.longstr()
		m.ReplyText = r.shortstr()
	case chanOpen:
		r.shortstr()
	case chanFlow, chanFlowOk:
		m.Active = r.bits()&1 != 0
	case exDeclare:
		r.u16()
		m.Exchange = r.shortstr()
		m.Type = r.shortstr()
		b := r.bits()
		m.Passive, m.Durable, m.AutoDelete, m.Internal, m.NoWait = b&1 != 0, b&2 != 0, b&4 != 0, b&8 != 0, b&16 != 0
		m.Arguments = r.table()
	case exDelete:
		r.u16()
		m.Exchange = r.shortstr()
		b := r.bits()
		m.IfUnused, m.NoWait = b&1 != 0, b&2 != 0
	case exBind, exUnbind:
		r.u16()
		m.Destination = r.shortstr()
		m.Source = r.shortstr()
		m.RoutingKey = r.shortstr()
		m.NoWait = r.bits()&1 != 0
		m.Arguments = r.table()
	case qDeclare:
		r.u16()
		m.Queue = r.shortstr()
		b := r.bits()
		m.Passive, m.Durable, m.Exclusive, m.AutoDelete, m.NoWait = b&1 != 0, b&2 != 0, b&4 != 0, b&8 != 0, b&16 != 0
		m.Arguments = r.table()
	case qBind:
		r.u16()
		m.Queue = r.shortstr()
		m.Exchange = r.shortstr()
		m.RoutingKey = r.shortstr()
		m.NoWait = r.bits()&1 != 0
		m.Arguments = r.table()
	case qUnbind:
		r.u16()
		m.Queue = r.shortstr()
		m.Exchange = r.shortstr()
		m.RoutingKey = r.shortstr()
		m.Arguments = r.table()
	case qPurge:
		r.u16()
		m.Queue = r.shortstr()
		m.NoWait = r.bits()&1 != 0
	case qDelete:
		r.u16()
		m.Queue = r.shortstr()
		b := r.bits()
		m.IfUnused, m.IfEmpty, m.NoWait = b&1 != 0, b&2 != 0, b&4 != 0
	case bQos:
		m.PrefetchSize = r.u32()
		m.PrefetchCount = r.u16()
		m.Global = r.bits()&1 != 0
	case bConsume:
		r.u16()
		m.Queue = r.shortstr()
		m.ConsumerTag = r.shortstr()
		b := r.bits()
		m.NoLocal, m.NoAck, m.Exclusive, m.NoWait = b&1 != 0, b&2 != 0, b&4 != 0, b&8 != 0
		m.Arguments = r.table()
	case bCancel:
		m.ConsumerTag = r.shortstr()
		m.NoWait = r.bits()&1 != 0
	case bPublish:
		r.u16()
		m.Exchange = r.shortstr()
		m.RoutingKey = r.shortstr()
		b := r.bits()
		m.Mandatory, m.Immediate = b&1 != 0, b&2 != 0
	case bGet:
		r.u16()
		m.Queue = r.shortstr()
		m.NoAck = r.bits()&1 != 0
	case bAck:
		m.DeliveryTag = r.u64()
		m.Multiple = r.bits()&1 != 0
	case bReject:
		m.DeliveryTag = r.u64()
		m.Requeue = r.bits()&1 != 0
	case bNack:
		m.DeliveryTag = r.u64()
		b := r.bits()
		m.Multiple, m.Requeue = b&1 != 0, b&2 != 0
	case bRecover, bRecoverAsync:
		m.Requeue = r.bits()&1 != 0
	default:
		return &frameError{codeNotImplemented, fmt.Sprintf("NOT_IMPLEMENTED - unknown method %d.%d", m.ID>>16, m.ID&0xffff)}
	}
	return r.err
}

// Encoding: each server method is appended to a caller's buffer as a
// whole frame.

func appendMethodStart(dst []byte, ch uint16, id methodID) ([]byte, int) {
	dst, at := appendFrameStart(dst, frameMethod, ch)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	return dst, at
}

func appendShortstr(dst []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	return append(append(dst, byte(len(s))), s...)
}

func appendShortstrB(dst []byte, s []byte) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	return append(append(dst, byte(len(s))), s...)
}

func appendLongstr(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// appendEmpty appends a method without arguments.
func appendEmpty(dst []byte, ch uint16, id methodID) []byte {
	dst, at := appendMethodStart(dst, ch, id)
	return finishFrame(dst, at)
}

// appendClose appends connection.close or channel.close.
func appendClose(dst []byte, ch uint16, id methodID, code int, text string, cause methodID) []byte {
	dst, at := appendMethodStart(dst, ch, id)
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = appendShortstr(dst, text)
	dst = binary.BigEndian.AppendUint32(dst, uint32(cause))
	return finishFrame(dst, at)
}

// appendDeliver appends basic.deliver and its content.
func appendDeliver(dst []byte, ch uint16, frameMax int, tag string, dtag uint64, redelivered bool, exchange, key, props, body []byte) []byte {
	dst, at := appendMethodStart(dst, ch, bDeliver)
	dst = appendShortstr(dst, tag)
	dst = binary.BigEndian.AppendUint64(dst, dtag)
	dst = append(dst, boolBit(redelivered))
	dst = appendShortstrB(dst, exchange)
	dst = appendShortstrB(dst, key)
	dst = finishFrame(dst, at)
	return appendContent(dst, ch, frameMax, props, body)
}

// appendGetOk appends basic.get-ok and its content.
func appendGetOk(dst []byte, ch uint16, frameMax int, dtag uint64, redelivered bool, exchange, key []byte, count uint32, props, body []byte) []byte {
	dst, at := appendMethodStart(dst, ch, bGetOk)
	dst = binary.BigEndian.AppendUint64(dst, dtag)
	dst = append(dst, boolBit(redelivered))
	dst = appendShortstrB(dst, exchange)
	dst = appendShortstrB(dst, key)
	dst = binary.BigEndian.AppendUint32(dst, count)
	dst = finishFrame(dst, at)
	return appendContent(dst, ch, frameMax, props, body)
}

// appendReturn appends basic.return and its content.
func appendReturn(dst []byte, ch uint16, frameMax int, code int, text string, exchange, key, props, body []byte) []byte {
	dst, at := appendMethodStart(dst, ch, bReturn)
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = appendShortstr(dst, text)
	dst = appendShortstrB(dst, exchange)
	dst = appendShortstrB(dst, key)
	dst = finishFrame(dst, at)
	return appendContent(dst, ch, frameMax, props, body)
}

// appendConfirm appends basic.ack or basic.nack to a publisher.
func appendConfirm(dst []byte, ch uint16, nack bool, tag uint64, multiple bool) []byte {
	id := bAck
	if nack {
		id = bNack
	}
	dst, at := appendMethodStart(dst, ch, id)
	dst = binary.BigEndian.AppendUint64(dst, tag)
	dst = append(dst, boolBit(multiple))
	return finishFrame(dst, at)
}

// appendTag appends a method whose only argument is a consumer tag
// (consume-ok, cancel-ok), or a queue name (get-empty's reserved one).
func appendTag(dst []byte, ch uint16, id methodID, tag string) []byte {
	dst, at := appendMethodStart(dst, ch, id)
	dst = appendShortstr(dst, tag)
	return finishFrame(dst, at)
}

// appendCancel appends a server's basic.cancel (consumer cancel notify).
func appendCancel(dst []byte, ch uint16, tag string) []byte {
	dst, at := appendMethodStart(dst, ch, bCancel)
	dst = appendShortstr(dst, tag)
	dst = append(dst, 0)
	return finishFrame(dst, at)
}

// appendQueueDeclareOk appends queue.declare-ok.
func appendQueueDeclareOk(dst []byte, ch uint16, name string, msgs, consumers uint32) []byte {
	dst, at := appendMethodStart(dst, ch, qDeclareOk)
	dst = appendShortstr(dst, name)
	dst = binary.BigEndian.AppendUint32(dst, msgs)
	dst = binary.BigEndian.AppendUint32(dst, consumers)
	return finishFrame(dst, at)
}

// appendCount appends a method whose argument is a message count
// (purge-ok, delete-ok).
func appendCount(dst []byte, ch uint16, id methodID, n uint32) []byte {
	dst, at := appendMethodStart(dst, ch, id)
	dst = binary.BigEndian.AppendUint32(dst, n)
	return finishFrame(dst, at)
}

// appendFlag appends a method whose argument is one bit (flow-ok).
func appendFlag(dst []byte, ch uint16, id methodID, v bool) []byte {
	dst, at := appendMethodStart(dst, ch, id)
	dst = append(dst, boolBit(v))
	return finishFrame(dst, at)
}

func boolBit(v bool) byte {
	if v {
		return 1
	}
	return 0
}
