package broker

import "errors"

// Errors callers branch on; gateways map them to their protocol's codes.
var (
	ErrClosed            = errors.New("broker: closed")
	ErrInvalidConfig     = errors.New("broker: invalid configuration")
	ErrInvalidUpdate     = errors.New("broker: configuration change not allowed")
	ErrStreamNotFound    = errors.New("broker: stream not found")
	ErrStreamNameInUse   = errors.New("broker: stream name already in use with a different configuration")
	ErrSubjectsOverlap   = errors.New("broker: subjects overlap with an existing stream")
	ErrConsumerNotFound  = errors.New("broker: consumer not found")
	ErrConsumerNameInUse = errors.New("broker: consumer already exists with a different configuration")
	ErrMaxConsumers      = errors.New("broker: maximum consumers limit reached")
	// ErrWorkQueueOverlap: a work queue's consumers must not want the same
	// messages, or one ack would remove a message another still waits for.
	ErrWorkQueueOverlap = errors.New("broker: work queue consumers must not overlap")
	ErrNoMessage        = errors.New("broker: no message found")
	ErrStreamFull       = errors.New("broker: maximum messages exceeded")
	ErrBytesFull        = errors.New("broker: maximum bytes exceeded")
	ErrSubjectFull      = errors.New("broker: maximum messages per subject exceeded")
	ErrMessageTooLarge  = errors.New("broker: message size exceeds maximum allowed")
	ErrWrongLastSeq     = errors.New("broker: wrong last sequence")
	ErrWrongLastMsgID   = errors.New("broker: wrong last msg ID")
	ErrWrongStream      = errors.New("broker: expected stream does not match")
	ErrDeleteDenied     = errors.New("broker: message delete not permitted")
	ErrPurgeDenied      = errors.New("broker: stream purge not permitted")
	ErrNotPull          = errors.New("broker: consumer is push based")
	ErrNotPush          = errors.New("broker: consumer is pull based")
	ErrMaxWaiting       = errors.New("broker: exceeded max waiting pull requests")
	ErrBadRequest       = errors.New("broker: bad request")
	// ErrUnknownDelivery answers an acknowledgement for a message the
	// consumer does not hold as pending: never delivered, already
	// acknowledged, or past its delivery limit.
	ErrUnknownDelivery = errors.New("broker: no pending delivery for that sequence")
)
