package datachannel

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// A message the plugin's own ClientMessage.SerializeClientMessage wrote
// (session-manager-plugin v0.0.0-20260401221635-b79d06c1d3a2): an
// input_stream_data of "hello", sequence 7, message ID
// dd01e56b-ff48-483e-a508-b5f073f31b16, created at 1700000000123.
const pluginVector = "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe5687b00000000000000070000000000000000a508b5f073f31b16dd01e56bff48483e2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824000000010000000568656c6c6f"

func TestMessageMatchesThePluginsEncoding(t *testing.T) {
	raw, err := hex.DecodeString(pluginVector)
	if err != nil {
		t.Fatal(err)
	}
	m, err := unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != typeInput || m.SchemaVersion != 1 || m.CreatedDate != 1700000000123 || m.Seq != 7 || m.Flags != 0 ||
		m.PayloadType != payloadOutput || string(m.Payload) != "hello" || m.ID.String() != "dd01e56b-ff48-483e-a508-b5f073f31b16" {
		t.Fatalf("decoded %+v (ID %s)", m, m.ID)
	}
	again, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Fatalf("re-encoded\n%x\nwant\n%x", again, raw)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, {0}, bytes.Repeat([]byte("x"), 5000)} {
		m := message{Type: typeOutput, SchemaVersion: 1, CreatedDate: 42, Seq: -1 << 40, Flags: 3, ID: newUUID(), PayloadType: payloadFlag, Payload: payload}
		b, err := m.marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != m.Type || got.SchemaVersion != m.SchemaVersion || got.CreatedDate != m.CreatedDate || got.Seq != m.Seq ||
			got.Flags != m.Flags || got.ID != m.ID || got.PayloadType != m.PayloadType || !bytes.Equal(got.Payload, m.Payload) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	raw, _ := hex.DecodeString(pluginVector)
	bad := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), raw...)) }
	for name, b := range map[string][]byte{
		"short":          raw[:100],
		"digest":         bad(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"header length":  bad(func(b []byte) []byte { b[3] = 0x70; return b }),
		"payload length": bad(func(b []byte) []byte { b[offPayloadLength+3] = 9; return b }),
	} {
		if _, err := unmarshal(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
