package packet

// AppendPacket appends the packet p.Type names, taken from the matching
// field of p, at the given level to dst and returns the extended slice. A
// CONNECT is written at its own Connect.Level. It is the encoder for code
// that handles packets generically (tests, proxies); the typed AppendX
// functions are the same without the switch. An unknown type appends
// nothing.
func AppendPacket(dst []byte, level Level, p *Packet) []byte {
	switch p.Type {
	case TypeConnect:
		return AppendConnect(dst, &p.Connect)
	case TypeConnack:
		return AppendConnack(dst, level, &p.Connack)
	case TypePublish:
		return AppendPublish(dst, level, &p.Publish)
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		a := p.Ack
		a.Type = p.Type
		return AppendAck(dst, level, &a)
	case TypeSubscribe:
		return AppendSubscribe(dst, level, &p.Subscribe)
	case TypeSuback:
		return AppendSuback(dst, level, &p.Suback)
	case TypeUnsubscribe:
		return AppendUnsubscribe(dst, level, &p.Unsubscribe)
	case TypeUnsuback:
		return AppendUnsuback(dst, level, &p.Unsuback)
	case TypePingreq:
		return AppendPingreq(dst)
	case TypePingresp:
		return AppendPingresp(dst)
	case TypeDisconnect:
		return AppendDisconnect(dst, level, &p.Disconnect)
	case TypeAuth:
		return AppendAuth(dst, &p.Auth)
	}
	return dst
}
