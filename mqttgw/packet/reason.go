package packet

// ReasonCode is an MQTT 5.0 reason code (§2.4): the result of an operation,
// carried in CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK,
// DISCONNECT and AUTH. Codes below 0x80 are successes. The same value can
// have a different name in different packets (0x00 is Success, Normal
// disconnection and Granted QoS 0).
type ReasonCode byte

// The reason codes of MQTT 5.0 §2.4, Table 2-6.
const (
	Success                             ReasonCode = 0x00
	NormalDisconnection                 ReasonCode = 0x00
	GrantedQoS0                         ReasonCode = 0x00
	GrantedQoS1                         ReasonCode = 0x01
	GrantedQoS2                         ReasonCode = 0x02
	DisconnectWithWillMessage           ReasonCode = 0x04
	NoMatchingSubscribers               ReasonCode = 0x10
	NoSubscriptionExisted               ReasonCode = 0x11
	ContinueAuthentication              ReasonCode = 0x18
	ReAuthenticate                      ReasonCode = 0x19
	UnspecifiedError                    ReasonCode = 0x80
	MalformedPacket                     ReasonCode = 0x81
	ProtocolError                       ReasonCode = 0x82
	ImplementationSpecificError         ReasonCode = 0x83
	UnsupportedProtocolVersion          ReasonCode = 0x84
	ClientIdentifierNotValid            ReasonCode = 0x85
	BadUserNameOrPassword               ReasonCode = 0x86
	NotAuthorized                       ReasonCode = 0x87
	ServerUnavailable                   ReasonCode = 0x88
	ServerBusy                          ReasonCode = 0x89
	Banned                              ReasonCode = 0x8A
	ServerShuttingDown                  ReasonCode = 0x8B
	BadAuthenticationMethod             ReasonCode = 0x8C
	KeepAliveTimeout                    ReasonCode = 0x8D
	SessionTakenOver                    ReasonCode = 0x8E
	TopicFilterInvalid                  ReasonCode = 0x8F
	TopicNameInvalid                    ReasonCode = 0x90
	PacketIdentifierInUse               ReasonCode = 0x91
	PacketIdentifierNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded              ReasonCode = 0x93
	TopicAliasInvalid                   ReasonCode = 0x94
	PacketTooLarge                      ReasonCode = 0x95
	MessageRateTooHigh                  ReasonCode = 0x96
	QuotaExceeded                       ReasonCode = 0x97
	AdministrativeAction                ReasonCode = 0x98
	PayloadFormatInvalid                ReasonCode = 0x99
	RetainNotSupported                  ReasonCode = 0x9A
	QoSNotSupported                     ReasonCode = 0x9B
	UseAnotherServer                    ReasonCode = 0x9C
	ServerMoved                         ReasonCode = 0x9D
	SharedSubscriptionsNotSupported     ReasonCode = 0x9E
	ConnectionRateExceeded              ReasonCode = 0x9F
	MaximumConnectTime                  ReasonCode = 0xA0
	SubscriptionIdentifiersNotSupported ReasonCode = 0xA1
	WildcardSubscriptionsNotSupported   ReasonCode = 0xA2
)

// String returns the reason code's name from the specification; for 0x00
// it is "success", whatever the packet.
func (rc ReasonCode) String() string {
	switch rc {
	case Success:
		return "success"
	case GrantedQoS1:
		return "granted QoS 1"
	case GrantedQoS2:
		return "granted QoS 2"
	case DisconnectWithWillMessage:
		return "disconnect with will message"
	case NoMatchingSubscribers:
		return "no matching subscribers"
	case NoSubscriptionExisted:
		return "no subscription existed"
	case ContinueAuthentication:
		return "continue authentication"
	case ReAuthenticate:
		return "re-authenticate"
	case UnspecifiedError:
		return "unspecified error"
	case MalformedPacket:
		return "malformed packet"
	case ProtocolError:
		return "protocol error"
	case ImplementationSpecificError:
		return "implementation specific error"
	case UnsupportedProtocolVersion:
		return "unsupported protocol version"
	case ClientIdentifierNotValid:
		return "client identifier not valid"
	case BadUserNameOrPassword:
		return "bad user name or password"
	case NotAuthorized:
		return "not authorized"
	case ServerUnavailable:
		return "server unavailable"
	case ServerBusy:
		return "server busy"
	case Banned:
		return "banned"
	case ServerShuttingDown:
		return "server shutting down"
	case BadAuthenticationMethod:
		return "bad authentication method"
	case KeepAliveTimeout:
		return "keep alive timeout"
	case SessionTakenOver:
		return "session taken over"
	case TopicFilterInvalid:
		return "topic filter invalid"
	case TopicNameInvalid:
		return "topic name invalid"
	case PacketIdentifierInUse:
		return "packet identifier in use"
	case PacketIdentifierNotFound:
		return "packet identifier not found"
	case ReceiveMaximumExceeded:
		return "receive maximum exceeded"
	case TopicAliasInvalid:
		return "topic alias invalid"
	case PacketTooLarge:
		return "packet too large"
	case MessageRateTooHigh:
		return "message rate too high"
	case QuotaExceeded:
		return "quota exceeded"
	case AdministrativeAction:
		return "administrative action"
	case PayloadFormatInvalid:
		return "payload format invalid"
	case RetainNotSupported:
		return "retain not supported"
	case QoSNotSupported:
		return "QoS not supported"
	case UseAnotherServer:
		return "use another server"
	case ServerMoved:
		return "server moved"
	case SharedSubscriptionsNotSupported:
		return "shared subscriptions not supported"
	case ConnectionRateExceeded:
		return "connection rate exceeded"
	case MaximumConnectTime:
		return "maximum connect time"
	case SubscriptionIdentifiersNotSupported:
		return "subscription identifiers not supported"
	case WildcardSubscriptionsNotSupported:
		return "wildcard subscriptions not supported"
	}
	return "reason code 0x" + hex2(byte(rc))
}

// IsError reports whether the code reports a failure (0x80 and above).
func (rc ReasonCode) IsError() bool { return rc >= 0x80 }

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

// ValidFor reports whether a packet of type t may carry the reason code, by
// the tables of MQTT 5.0 §3.2.2.2 (CONNACK), §3.4.2.1 (PUBACK), §3.5.2.1
// (PUBREC), §3.6.2.1 (PUBREL), §3.7.2.1 (PUBCOMP), §3.9.3 (SUBACK), §3.11.3
// (UNSUBACK), §3.14.2.1 (DISCONNECT) and §3.15.2.1 (AUTH). A sender MUST use
// one of these (MQTT-3.2.2-8, MQTT-3.4.2-1 and the like).
func (rc ReasonCode) ValidFor(t Type) bool {
	switch t {
	case TypeConnack:
		switch rc {
		case Success, UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecificError,
			UnsupportedProtocolVersion, ClientIdentifierNotValid, BadUserNameOrPassword, NotAuthorized,
			ServerUnavailable, ServerBusy, Banned, BadAuthenticationMethod, TopicNameInvalid,
			PacketTooLarge, QuotaExceeded, PayloadFormatInvalid, RetainNotSupported, QoSNotSupported,
			UseAnotherServer, ServerMoved, ConnectionRateExceeded:
			return true
		}
	case TypePuback, TypePubrec:
		switch rc {
		case Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecificError, NotAuthorized,
			TopicNameInvalid, PacketIdentifierInUse, QuotaExceeded, PayloadFormatInvalid:
			return true
		}
	case TypePubrel, TypePubcomp:
		return rc == Success || rc == PacketIdentifierNotFound
	case TypeSuback:
		switch rc {
		case GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError, ImplementationSpecificError,
			NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse, QuotaExceeded,
			SharedSubscriptionsNotSupported, SubscriptionIdentifiersNotSupported,
			WildcardSubscriptionsNotSupported:
			return true
		}
	case TypeUnsuback:
		switch rc {
		case Success, NoSubscriptionExisted, UnspecifiedError, ImplementationSpecificError, NotAuthorized,
			TopicFilterInvalid, PacketIdentifierInUse:
			return true
		}
	case TypeDisconnect:
		switch rc {
		case NormalDisconnection, DisconnectWithWillMessage, UnspecifiedError, MalformedPacket,
			ProtocolError, ImplementationSpecificError, NotAuthorized, ServerBusy, ServerShuttingDown,
			KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid, TopicNameInvalid,
			ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge, MessageRateTooHigh,
			QuotaExceeded, AdministrativeAction, PayloadFormatInvalid, RetainNotSupported,
			QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubscriptionsNotSupported,
			ConnectionRateExceeded, MaximumConnectTime, SubscriptionIdentifiersNotSupported,
			WildcardSubscriptionsNotSupported:
			return true
		}
	case TypeAuth:
		return rc == Success || rc == ContinueAuthentication || rc == ReAuthenticate
	}
	return false
}

// ConnectReturnCode is the MQTT 3.1.1 CONNACK return code (§3.2.2.3).
type ConnectReturnCode byte

// The return codes of MQTT 3.1.1 Table 3.1; 6 to 255 are reserved.
const (
	Accepted                     ConnectReturnCode = 0
	RefusedProtocolVersion       ConnectReturnCode = 1
	RefusedIdentifierRejected    ConnectReturnCode = 2
	RefusedServerUnavailable     ConnectReturnCode = 3
	RefusedBadUserNameOrPassword ConnectReturnCode = 4
	RefusedNotAuthorized         ConnectReturnCode = 5
)

// String returns the return code's meaning as 3.1.1 words it.
func (c ConnectReturnCode) String() string {
	switch c {
	case Accepted:
		return "connection accepted"
	case RefusedProtocolVersion:
		return "connection refused, unacceptable protocol version"
	case RefusedIdentifierRejected:
		return "connection refused, identifier rejected"
	case RefusedServerUnavailable:
		return "connection refused, server unavailable"
	case RefusedBadUserNameOrPassword:
		return "connection refused, bad user name or password"
	case RefusedNotAuthorized:
		return "connection refused, not authorized"
	}
	return "reserved return code 0x" + hex2(byte(c))
}

// validSubackV3 reports whether a 3.1.1 SUBACK return code is defined
// (MQTT-3.9.3-2): a granted QoS or 0x80 failure.
func validSubackV3(rc ReasonCode) bool {
	return rc <= GrantedQoS2 || rc == UnspecifiedError
}
