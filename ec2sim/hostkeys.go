package ec2sim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"gopkg.in/yaml.v3"
)

// hostKeyTypes are the SSH host key types an instance may have, with the
// label ssh-keygen -l puts after a fingerprint. DSA is left out: OpenSSH
// no longer makes or accepts it.
var hostKeyTypes = map[string]string{
	"ssh-ed25519":         "ED25519",
	"ecdsa-sha2-nistp256": "ECDSA",
	"ecdsa-sha2-nistp384": "ECDSA",
	"ecdsa-sha2-nistp521": "ECDSA",
	"ssh-rsa":             "RSA",
}

const hostKeyTypeList = "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 or ssh-rsa"

// hostKey is one parsed public host key. The comment given with it is
// dropped: cloud-init prints root@HOSTNAME whatever the file said.
type hostKey struct {
	typ  string
	blob []byte // SSH wire format, as in the base64 of the key line
	bits int    // as ssh-keygen -l reports the size
}

// line is the key as an authorized_keys line with comment.
func (k hostKey) line(comment string) string {
	return k.typ + " " + base64.StdEncoding.EncodeToString(k.blob) + " " + comment
}

// fingerprint is what ssh-keygen -l prints: unpadded base64 of the blob's
// SHA-256.
func (k hostKey) fingerprint() string {
	sum := sha256.Sum256(k.blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// parseHostKey reads "TYPE BASE64 [comment]" and checks that the blob is
// a well-formed key of TYPE, so that the console never shows a key that
// ssh would refuse.
func parseHostKey(s string) (hostKey, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return hostKey{}, fmt.Errorf("%q is not a public key line (want TYPE BASE64 [comment], TYPE one of %s)", shorten(s), hostKeyTypeList)
	}
	k := hostKey{typ: f[0]}
	if _, ok := hostKeyTypes[k.typ]; !ok {
		return k, fmt.Errorf("%q has key type %q (want one of %s)", shorten(s), k.typ, hostKeyTypeList)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return k, fmt.Errorf("%q: key data is not base64 (standard encoding, padded): %v", shorten(s), err)
	}
	k.blob = blob
	switch inner, rest, ok := sshString(blob); {
	case !ok:
		return k, fmt.Errorf("%q: key data does not start with the SSH string %q", shorten(s), k.typ)
	case string(inner) != k.typ:
		return k, fmt.Errorf("%q: key data is of type %q, not %s", shorten(s), shorten(string(inner)), k.typ)
	default:
		blob = rest
	}
	if k.bits, err = keyBits(k.typ, blob); err != nil {
		return k, fmt.Errorf("%q: %s key data: %v", shorten(s), k.typ, err)
	}
	return k, nil
}

// keyBits checks the fields after the type name and returns the key size.
func keyBits(typ string, b []byte) (int, error) {
	var n int
	switch typ {
	case "ssh-ed25519":
		pub, rest, ok := sshString(b)
		if !ok || len(pub) != 32 {
			return 0, errors.New("want a 32-byte public key")
		}
		b, n = rest, 256
	case "ssh-rsa":
		e, rest, ok := sshString(b)
		if !ok || len(e) == 0 {
			return 0, errors.New("want mpint e, mpint n")
		}
		mod, rest, ok := sshString(rest)
		if n = mpintBits(mod); !ok || n == 0 {
			return 0, errors.New("want mpint e, mpint n")
		}
		b = rest
	default: // ecdsa-sha2-nistpNNN
		curve := strings.TrimPrefix(typ, "ecdsa-sha2-")
		name, rest, ok := sshString(b)
		if !ok || string(name) != curve {
			return 0, fmt.Errorf("want curve name %q", curve)
		}
		n = map[string]int{"nistp256": 256, "nistp384": 384, "nistp521": 521}[curve]
		point, rest, ok := sshString(rest)
		if size := (n + 7) / 8; !ok || len(point) != 1+2*size || point[0] != 4 {
			return 0, errors.New("want an uncompressed curve point")
		}
		b = rest
	}
	if len(b) > 0 {
		return 0, fmt.Errorf("%d bytes of trailing data", len(b))
	}
	return n, nil
}

// sshString splits an SSH wire-format string (uint32 length, bytes) off b.
func sshString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// mpintBits is the bit length of a non-negative SSH mpint (big-endian,
// with a leading zero byte when the top bit is set); 0 if it is zero or
// negative.
func mpintBits(m []byte) int {
	if len(m) == 0 || m[0]&0x80 != 0 {
		return 0
	}
	for len(m) > 0 && m[0] == 0 {
		m = m[1:]
	}
	if len(m) == 0 {
		return 0
	}
	return 8*(len(m)-1) + bits.Len8(m[0])
}

// shorten keeps error messages readable: key lines run to hundreds of
// characters, and the type and the start of the data are what identify one.
func shorten(s string) string {
	const limit = 40
	r := []rune(s)
	if len(r) <= limit {
		return s
	}
	return string(r[:limit]) + "..."
}

// parseHostKeys parses an instance's keys; the error says which one is bad.
func parseHostKeys(lines []string) ([]hostKey, int, error) {
	keys := make([]hostKey, 0, len(lines))
	for i, l := range lines {
		k, err := parseHostKey(l)
		if err != nil {
			return nil, i, err
		}
		keys = append(keys, k)
	}
	return keys, 0, nil
}

// checkFleetHostKeys validates an instance's host_keys, pointing at the
// line of the bad key when the fleet came from YAML.
func checkFleetHostKeys(in FleetInstance, path string) ([]hostKey, error) {
	keys, i, err := parseHostKeys(in.HostKeys)
	if err != nil {
		field := fmt.Sprintf("host_keys[%d]", i)
		line, ok := in.fields[field]
		if !ok {
			line = in.lineOf("host_keys")
		}
		return nil, &FleetError{Line: line, Field: path + "." + field, Err: err}
	}
	return keys, nil
}

// decodeHostKeys reads host_keys and records each key's line, so that an
// error points at the key rather than at the start of the list.
func decodeHostKeys(in *FleetInstance) decodeFunc {
	return func(n *yaml.Node, path string) error {
		in.HostKeys = nil
		return decodeSeq(n, path, func(n *yaml.Node, path string) error {
			var k string
			if err := scalar(&k)(n, path); err != nil {
				return err
			}
			in.fields[fmt.Sprintf("host_keys[%d]", len(in.HostKeys))] = n.Line
			in.HostKeys = append(in.HostKeys, k)
			return nil
		})
	}
}

// SetHostKeys replaces the SSH host keys of an instance, as if it had
// booted with them: what GetConsoleOutput shows from then on. Keys are
// validated as a fleet's host_keys are; nil or empty clears them. It is
// for tests that start an sshd (and so learn its keys) after loading the
// fleet.
func (s *Server) SetHostKeys(region, instanceID string, keys []string) error {
	parsed, i, err := parseHostKeys(keys)
	if err != nil {
		return fmt.Errorf("ec2sim: SetHostKeys %s: keys[%d]: %w", instanceID, i, err)
	}
	s.lock()
	defer s.unlock()
	var in *instance
	if r, ok := s.regions[region]; ok {
		in = r.instances[instanceID]
	}
	if in == nil {
		return fmt.Errorf("ec2sim: SetHostKeys: no instance %s in region %s", instanceID, region)
	}
	in.hostKeys = parsed
	return nil
}
