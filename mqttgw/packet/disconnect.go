package packet

// Disconnect is a DISCONNECT packet (MQTT 3.1.1 §3.14, 5.0 §3.14). Before
// 5.0 it is empty and only a client sends it; at Level5 either side may,
// with a reason code and properties.
type Disconnect struct {
	Reason     ReasonCode
	Properties Properties
}

func (d *Disconnect) decode(body []byte, level Level) error {
	return decodeReasoned(TypeDisconnect, body, level, &d.Reason, &d.Properties)
}

// AppendDisconnect appends d as a DISCONNECT packet at the given level to
// dst and returns the extended slice. At Level5 it omits what §3.14.2.1
// lets it omit: everything for a normal disconnection without properties,
// the property length when there are none. It allocates only if dst must
// grow.
func AppendDisconnect(dst []byte, level Level, d *Disconnect) []byte {
	if level != Level5 {
		return append(dst, byte(TypeDisconnect)<<4, 0)
	}
	return appendReasoned(dst, TypeDisconnect, d.Reason, &d.Properties)
}

// Auth is an AUTH packet (MQTT 5.0 §3.15), a step of extended
// authentication. It does not exist before 5.0.
type Auth struct {
	Reason     ReasonCode // Success, ContinueAuthentication or ReAuthenticate
	Properties Properties
}

func (a *Auth) decode(body []byte) error {
	if err := decodeReasoned(TypeAuth, body, Level5, &a.Reason, &a.Properties); err != nil {
		return err
	}
	// MQTT 5.0 §3.15.2.2.2: an AUTH must name its method, except the short
	// form of a bare Success, which has no properties at all.
	if (a.Reason != Success || !a.Properties.Empty()) && !a.Properties.Present.Has(PropAuthenticationMethod) {
		return newError(TypeAuth, ProtocolError, "MQTT 5.0 §3.15.2.2.2", "AUTH without an Authentication Method")
	}
	return nil
}

// AppendAuth appends a as an AUTH packet to dst and returns the extended
// slice, omitting reason code and properties for a bare Success (MQTT 5.0
// §3.15.2.1). It allocates only if dst must grow.
func AppendAuth(dst []byte, a *Auth) []byte {
	return appendReasoned(dst, TypeAuth, a.Reason, &a.Properties)
}

// decodeReasoned decodes the body shared by DISCONNECT and AUTH: an
// optional reason code, then optional properties (MQTT 5.0 §3.14.2,
// §3.15.2). A missing reason code means Success.
func decodeReasoned(t Type, body []byte, level Level, rc *ReasonCode, p *Properties) error {
	*rc = Success
	p.clear()
	if level != Level5 {
		if len(body) != 0 {
			return trailing(t)
		}
		return nil
	}
	r := reader{b: body, t: t}
	if len(r.b) > 0 {
		c, _ := r.byte1("reason code")
		*rc = ReasonCode(c)
		if !rc.ValidFor(t) {
			return newError(t, MalformedPacket, "MQTT 5.0 §2.4", "reason code 0x"+hex2(c)+" is not a reason code of "+t.String())
		}
		if len(r.b) > 0 {
			if err := p.decode(&r, t); err != nil {
				return err
			}
		}
	}
	if len(r.b) != 0 {
		return trailing(t)
	}
	return nil
}

func appendReasoned(dst []byte, t Type, rc ReasonCode, p *Properties) []byte {
	switch {
	case p.Empty() && rc == Success:
		return append(dst, byte(t)<<4, 0)
	case p.Empty() && t == TypeDisconnect:
		return append(dst, byte(t)<<4, 1, byte(rc))
	}
	dst = appendFixedHeader(dst, t, 0, 1+p.wireSize())
	dst = append(dst, byte(rc))
	return p.appendTo(dst)
}

// AppendPingreq appends a PINGREQ packet (MQTT 5.0 §3.12) to dst.
func AppendPingreq(dst []byte) []byte { return append(dst, byte(TypePingreq)<<4, 0) }

// AppendPingresp appends a PINGRESP packet (MQTT 5.0 §3.13) to dst.
func AppendPingresp(dst []byte) []byte { return append(dst, byte(TypePingresp)<<4, 0) }
