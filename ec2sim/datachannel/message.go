package datachannel

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Message types of the data channel's binary messages.
const (
	typeInput         = "input_stream_data"  // client to agent
	typeOutput        = "output_stream_data" // agent to client
	typeAcknowledge   = "acknowledge"
	typeChannelClosed = "channel_closed"
	typeStartPub      = "start_publication"
	typePausePub      = "pause_publication"
)

// Payload types of stream messages.
const (
	payloadOutput            = 1
	payloadError             = 2
	payloadSize              = 3
	payloadParameter         = 4
	payloadHandshakeRequest  = 5
	payloadHandshakeResponse = 6
	payloadHandshakeComplete = 7
	payloadFlag              = 10
	payloadStdErr            = 11
	payloadExitCode          = 12
)

// Flags a payloadFlag message carries, as a big-endian uint32.
const (
	flagDisconnectToPort   = 1
	flagTerminateSession   = 2
	flagConnectToPortError = 3
)

// The binary layout: every field big-endian, at fixed offsets.
//
//	0   HeaderLength   uint32 (offset of PayloadLength: 116)
//	4   MessageType    32 bytes, UTF-8, padded with spaces
//	36  SchemaVersion  uint32
//	40  CreatedDate    uint64, epoch milliseconds
//	48  SequenceNumber int64
//	56  Flags          uint64 (bit 0 SYN, bit 1 FIN)
//	64  MessageId      16 bytes: the UUID's last 8 bytes, then its first 8
//	80  PayloadDigest  SHA-256 of the payload
//	112 PayloadType    uint32
//	116 PayloadLength  uint32
//	120 Payload
const (
	offType          = 4
	offSchema        = 36
	offCreated       = 40
	offSeq           = 48
	offFlags         = 56
	offID            = 64
	offDigest        = 80
	offPayloadType   = 112
	offPayloadLength = 116
	offPayload       = 120
	lenType          = 32
)

// message is one binary data channel message.
type message struct {
	Type          string
	SchemaVersion uint32
	CreatedDate   uint64 // epoch milliseconds
	Seq           int64
	Flags         uint64
	ID            uuid
	PayloadType   uint32
	Payload       []byte
}

// uuid is a message ID in its canonical byte order.
type uuid [16]byte

func newUUID() uuid {
	var u uuid
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// String is the form acknowledgements carry: lower case, hyphenated.
func (u uuid) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (m *message) marshal() ([]byte, error) {
	if len(m.Type) > lenType {
		return nil, fmt.Errorf("message type %q is longer than %d bytes", m.Type, lenType)
	}
	b := make([]byte, offPayload+len(m.Payload))
	be := binary.BigEndian
	be.PutUint32(b[0:], offPayloadLength)
	copy(b[offType:offType+lenType], bytes.Repeat([]byte{' '}, lenType))
	copy(b[offType:], m.Type)
	be.PutUint32(b[offSchema:], m.SchemaVersion)
	be.PutUint64(b[offCreated:], m.CreatedDate)
	be.PutUint64(b[offSeq:], uint64(m.Seq))
	be.PutUint64(b[offFlags:], m.Flags)
	copy(b[offID:offID+8], m.ID[8:16])
	copy(b[offID+8:offID+16], m.ID[0:8])
	sum := sha256.Sum256(m.Payload)
	copy(b[offDigest:], sum[:])
	be.PutUint32(b[offPayloadType:], m.PayloadType)
	be.PutUint32(b[offPayloadLength:], uint32(len(m.Payload)))
	copy(b[offPayload:], m.Payload)
	return b, nil
}

// unmarshal parses b as the plugin writes it, checking the header length,
// payload length and digest.
func unmarshal(b []byte) (message, error) {
	var m message
	if len(b) < offPayload {
		return m, fmt.Errorf("message of %d bytes is shorter than its header", len(b))
	}
	be := binary.BigEndian
	hl := be.Uint32(b[0:])
	if hl != offPayloadLength {
		return m, fmt.Errorf("header length %d, want %d", hl, offPayloadLength)
	}
	m.Type = string(bytes.TrimSpace(bytes.Trim(b[offType:offType+lenType], "\x00")))
	m.SchemaVersion = be.Uint32(b[offSchema:])
	m.CreatedDate = be.Uint64(b[offCreated:])
	m.Seq = int64(be.Uint64(b[offSeq:]))
	m.Flags = be.Uint64(b[offFlags:])
	copy(m.ID[8:16], b[offID:offID+8])
	copy(m.ID[0:8], b[offID+8:offID+16])
	m.PayloadType = be.Uint32(b[offPayloadType:])
	n := be.Uint32(b[offPayloadLength:])
	m.Payload = b[offPayload:]
	if int(n) != len(m.Payload) {
		return m, fmt.Errorf("payload length %d, but %d bytes follow the header", n, len(m.Payload))
	}
	if n > 0 {
		if sum := sha256.Sum256(m.Payload); !bytes.Equal(sum[:], b[offDigest:offDigest+32]) {
			return m, errors.New("payload digest does not match the payload")
		}
	}
	if m.Type == "" {
		return m, errors.New("message type missing")
	}
	return m, nil
}
