package ec2sim

// EC2 key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs and
// DeleteKeyPair. Key pairs belong to a region, by name. CreateKeyPair
// makes a real key (RSA 2048 or ed25519, as KeyType asks) so that its
// material is usable; the simulator keeps only the public half, as EC2
// does.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Error codes of the key pair actions.
const (
	CodeInvalidKeyPairNotFound  = "InvalidKeyPair.NotFound"
	CodeInvalidKeyPairDuplicate = "InvalidKeyPair.Duplicate"
	CodeInvalidKeyFormat        = "InvalidKey.Format"
)

// maxKeyNameLen is EC2's bound on a key pair's name (ASCII, 255 characters).
const maxKeyNameLen = 255

type keyPair struct {
	id          string
	name        string
	keyType     string // "rsa" or "ed25519"
	fingerprint string
	publicKey   string // OpenSSH authorized_keys form, "TYPE BASE64"
	created     time.Time
	seq         int64
	tags        map[string]string
}

// keyPairsOf returns r's key pairs by name, made on first use so that a
// region needs nothing new at creation.
func (r *region) keyPairsOf() map[string]*keyPair {
	if r.keyPairs == nil {
		r.keyPairs = map[string]*keyPair{}
	}
	return r.keyPairs
}

type createKeyPairResponse struct {
	meta
	KeyName        string      `xml:"keyName"`
	KeyFingerprint string      `xml:"keyFingerprint"`
	KeyMaterial    string      `xml:"keyMaterial,omitempty"`
	KeyPairID      string      `xml:"keyPairId"`
	TagSet         set[xmlTag] `xml:"tagSet"`
}

// checkKeyName validates a new key pair's name as EC2 does: present, ASCII,
// at most 255 characters.
func checkKeyName(p params) (string, *apiError) {
	name, ok := p.get("KeyName")
	if !ok || name == "" {
		return "", missing("KeyName")
	}
	if len(name) > maxKeyNameLen {
		return "", invalidValue("KeyName", name, fmt.Sprintf("Length exceeds maximum of %d.", maxKeyNameLen))
	}
	for _, c := range name {
		if c < 0x20 || c > 0x7e {
			return "", invalidValue("KeyName", name, "Character sets beyond ASCII are not supported.")
		}
	}
	return name, nil
}

// createKeyPair makes a key of KeyType (rsa, the default, or ed25519) and
// returns its private half once: RSA as PKCS#1 PEM, ed25519 in OpenSSH's
// format, as EC2 does. KeyFormat ppk is refused: PuTTY's format is not
// modelled.
func (s *Server) createKeyPair(r *region, p params) (response, *apiError) {
	name, aerr := checkKeyName(p)
	if aerr != nil {
		return nil, aerr
	}
	kt := p.str("KeyType")
	if kt == "" {
		kt = "rsa"
	}
	if kt != "rsa" && kt != "ed25519" {
		return nil, invalidValue("KeyType", kt, "Valid values are rsa and ed25519.")
	}
	switch f := p.str("KeyFormat"); f {
	case "", "pem":
	case "ppk":
		return nil, errf(CodeUnsupportedOperation, "KeyFormat ppk is not modelled by ec2sim.")
	default:
		return nil, invalidValue("KeyFormat", f, "Valid values are pem and ppk.")
	}
	tags, aerr := p.tagSpecs("key-pair")
	if aerr != nil {
		return nil, aerr
	}
	if _, dup := r.keyPairsOf()[name]; dup {
		return nil, errf(CodeInvalidKeyPairDuplicate, "The keypair '%s' already exists.", name)
	}
	var material, pub, fp string
	switch kt {
	case "rsa":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, errf(CodeInternalError, "generate key: %v", err)
		}
		material = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
		pub = "ssh-rsa " + base64.StdEncoding.EncodeToString(sshRSAWire(&key.PublicKey))
		// EC2 fingerprints a key it made by the SHA-1 of its PKCS#8 form.
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, errf(CodeInternalError, "encode key: %v", err)
		}
		sum := sha1.Sum(der)
		fp = colonHex(sum[:])
	case "ed25519":
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, errf(CodeInternalError, "generate key: %v", err)
		}
		wire := sshEd25519Wire(pk)
		material = openSSHPrivateKey(wire, pk, sk, name)
		pub = "ssh-ed25519 " + base64.StdEncoding.EncodeToString(wire)
		fp = sha256Fingerprint(wire)
	}
	k := s.addKeyPair(r, name, kt, pub, fp, tags)
	return &createKeyPairResponse{KeyName: name, KeyFingerprint: fp, KeyMaterial: material, KeyPairID: k.id, TagSet: tagSet(tags)}, nil
}

func (s *Server) addKeyPair(r *region, name, kt, pub, fp string, tags map[string]string) *keyPair {
	k := &keyPair{
		id: s.ids.resource("key"), name: name, keyType: kt, fingerprint: fp, publicKey: pub,
		created: s.now().UTC().Truncate(time.Millisecond), seq: s.nextSeq(), tags: cloneTags(tags),
	}
	r.keyPairsOf()[name] = k
	return k
}

// importKeyPair stores a public key given in OpenSSH's authorized_keys
// form (ssh-rsa or ssh-ed25519). PublicKeyMaterial is base64 on the wire,
// as the SDK sends a blob; plain text is accepted too.
func (s *Server) importKeyPair(r *region, p params) (response, *apiError) {
	name, aerr := checkKeyName(p)
	if aerr != nil {
		return nil, aerr
	}
	raw, ok := p.get("PublicKeyMaterial")
	if !ok || raw == "" {
		return nil, missing("PublicKeyMaterial")
	}
	text := raw
	if b, err := base64.StdEncoding.DecodeString(raw); err == nil {
		text = string(b)
	}
	kt, pub, fp, aerr := parseAuthorizedKey(text)
	if aerr != nil {
		return nil, aerr
	}
	tags, aerr := p.tagSpecs("key-pair")
	if aerr != nil {
		return nil, aerr
	}
	if _, dup := r.keyPairsOf()[name]; dup {
		return nil, errf(CodeInvalidKeyPairDuplicate, "The keypair '%s' already exists.", name)
	}
	k := s.addKeyPair(r, name, kt, pub, fp, tags)
	return &createKeyPairResponse{KeyName: name, KeyFingerprint: fp, KeyPairID: k.id, TagSet: tagSet(tags)}, nil
}

// parseAuthorizedKey reads "TYPE BASE64 [comment]" and returns the key's
// type as EC2 names it, the key without its comment, and the fingerprint
// EC2 gives an imported key: MD5 of the DER public key for RSA, SHA-256
// of the key for ed25519.
func parseAuthorizedKey(text string) (kt, pub, fp string, aerr *apiError) {
	bad := errf(CodeInvalidKeyFormat, "Key is not in valid OpenSSH public key format")
	f := strings.Fields(strings.TrimSpace(text))
	if len(f) < 2 {
		return "", "", "", bad
	}
	wire, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return "", "", "", bad
	}
	parts, ok := sshStrings(wire)
	if !ok || len(parts) == 0 || string(parts[0]) != f[0] {
		return "", "", "", bad
	}
	pub = f[0] + " " + f[1]
	switch f[0] {
	case "ssh-rsa":
		if len(parts) != 3 {
			return "", "", "", bad
		}
		e := new(big.Int).SetBytes(parts[1])
		if !e.IsInt64() || e.Int64() < 3 {
			return "", "", "", bad
		}
		key := &rsa.PublicKey{N: new(big.Int).SetBytes(parts[2]), E: int(e.Int64())}
		if key.N.BitLen() < 1024 {
			return "", "", "", errf(CodeInvalidKeyFormat, "Key is not in valid OpenSSH public key format (RSA keys must be at least 1024 bits)")
		}
		der, err := x509.MarshalPKIXPublicKey(key)
		if err != nil {
			return "", "", "", bad
		}
		sum := md5.Sum(der)
		return "rsa", pub, colonHex(sum[:]), nil
	case "ssh-ed25519":
		if len(parts) != 2 || len(parts[1]) != ed25519.PublicKeySize {
			return "", "", "", bad
		}
		return "ed25519", pub, sha256Fingerprint(wire), nil
	}
	return "", "", "", errf(CodeInvalidKeyFormat, "Key is not in valid OpenSSH public key format (only ssh-rsa and ssh-ed25519 keys are supported)")
}

type xmlKeyPair struct {
	KeyPairID      string      `xml:"keyPairId"`
	KeyFingerprint string      `xml:"keyFingerprint"`
	KeyName        string      `xml:"keyName"`
	KeyType        string      `xml:"keyType"`
	TagSet         set[xmlTag] `xml:"tagSet"`
	PublicKey      string      `xml:"publicKey,omitempty"`
	CreateTime     string      `xml:"createTime"`
}

type describeKeyPairsResponse struct {
	meta
	KeySet set[xmlKeyPair] `xml:"keySet"`
}

var keyPairFields = fields[*keyPair]{
	"key-pair-id": func(k *keyPair) []string { return []string{k.id} },
	"key-name":    func(k *keyPair) []string { return []string{k.name} },
	"fingerprint": func(k *keyPair) []string { return []string{k.fingerprint} },
	"key-type":    func(k *keyPair) []string { return []string{k.keyType} },
}

// describeKeyPairs lists key pairs, all or those named by KeyName.N or
// KeyPairId.N (each must exist), filtered. It does not page: EC2's
// DescribeKeyPairs has no MaxResults.
func (s *Server) describeKeyPairs(r *region, p params) (response, *apiError) {
	filters, aerr := p.filters()
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkFilters(filters, keyPairFields); aerr != nil {
		return nil, aerr
	}
	includePublic, aerr := p.optBoolean("IncludePublicKey")
	if aerr != nil {
		return nil, aerr
	}
	all := r.keyPairsOf()
	names, ids := p.list("KeyName"), p.list("KeyPairId")
	var candidates []*keyPair
	if len(names) == 0 && len(ids) == 0 {
		candidates = slices.Collect(maps.Values(all))
	}
	for _, n := range names {
		k, ok := all[n]
		if !ok {
			return nil, errf(CodeInvalidKeyPairNotFound, "The key pair '%s' does not exist", n)
		}
		candidates = append(candidates, k)
	}
	for _, id := range ids {
		k := r.keyPairByID(id)
		if k == nil {
			return nil, errf(CodeInvalidKeyPairNotFound, "The key pair ID '%s' does not exist", id)
		}
		candidates = append(candidates, k)
	}
	sortBySeq(candidates, func(k *keyPair) int64 { return k.seq })
	resp := &describeKeyPairsResponse{}
	seen := map[string]bool{}
	for _, k := range candidates {
		ok, aerr := match(filters, k, k.tags, keyPairFields)
		if aerr != nil {
			return nil, aerr
		}
		if !ok || seen[k.id] {
			continue
		}
		seen[k.id] = true
		x := xmlKeyPair{
			KeyPairID: k.id, KeyFingerprint: k.fingerprint, KeyName: k.name, KeyType: k.keyType,
			TagSet: tagSet(k.tags), CreateTime: k.created.Format("2006-01-02T15:04:05.000Z"),
		}
		if includePublic {
			x.PublicKey = k.publicKey
		}
		resp.KeySet.Items = append(resp.KeySet.Items, x)
	}
	return resp, nil
}

func (r *region) keyPairByID(id string) *keyPair {
	for _, k := range r.keyPairsOf() {
		if k.id == id {
			return k
		}
	}
	return nil
}

type deleteKeyPairResponse struct {
	meta
	Return    bool   `xml:"return"`
	KeyPairID string `xml:"keyPairId,omitempty"`
}

// deleteKeyPair deletes by KeyName or KeyPairId. Deleting a name that does
// not exist succeeds, as in EC2; an unknown ID is InvalidKeyPair.NotFound.
// Instances launched with the key keep its name, as in EC2.
func (s *Server) deleteKeyPair(r *region, p params) (response, *apiError) {
	name, id := p.str("KeyName"), p.str("KeyPairId")
	if name == "" && id == "" {
		return nil, missing("KeyName")
	}
	var k *keyPair
	if id != "" {
		if k = r.keyPairByID(id); k == nil {
			return nil, errf(CodeInvalidKeyPairNotFound, "The key pair ID '%s' does not exist", id)
		}
		if name != "" && k.name != name {
			return nil, errf(CodeInvalidParameterCombination, "The key pair ID '%s' does not name key pair '%s'.", id, name)
		}
	} else {
		k = r.keyPairsOf()[name]
	}
	if k == nil {
		return &deleteKeyPairResponse{Return: true}, nil
	}
	delete(r.keyPairs, k.name)
	return &deleteKeyPairResponse{Return: true, KeyPairID: k.id}, nil
}

// colonHex is a fingerprint as EC2 writes an MD5 or SHA-1 digest.
func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}

// sha256Fingerprint is the base64 SHA-256 of an SSH wire-format key, as
// EC2 shows ed25519 fingerprints.
func sha256Fingerprint(wire []byte) string {
	sum := sha256.Sum256(wire)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// putSSHString appends an SSH wire-format string (uint32 length, bytes).
func putSSHString(b *bytes.Buffer, s []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.Write(s)
}

// sshStrings splits wire into its length-prefixed strings (sshString).
func sshStrings(wire []byte) ([][]byte, bool) {
	var out [][]byte
	for len(wire) > 0 {
		s, rest, ok := sshString(wire)
		if !ok {
			return nil, false
		}
		out = append(out, s)
		wire = rest
	}
	return out, true
}

// sshMPInt is an SSH mpint: big-endian, with a leading zero byte when the
// top bit is set.
func sshMPInt(n *big.Int) []byte {
	b := n.Bytes()
	if len(b) > 0 && b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

func sshRSAWire(k *rsa.PublicKey) []byte {
	var b bytes.Buffer
	putSSHString(&b, []byte("ssh-rsa"))
	putSSHString(&b, sshMPInt(big.NewInt(int64(k.E))))
	putSSHString(&b, sshMPInt(k.N))
	return b.Bytes()
}

func sshEd25519Wire(pk ed25519.PublicKey) []byte {
	var b bytes.Buffer
	putSSHString(&b, []byte("ssh-ed25519"))
	putSSHString(&b, pk)
	return b.Bytes()
}

// openSSHPrivateKey writes an unencrypted ed25519 key in OpenSSH's
// "openssh-key-v1" format, which ssh and ssh-keygen read.
func openSSHPrivateKey(wire []byte, pk ed25519.PublicKey, sk ed25519.PrivateKey, comment string) string {
	var priv bytes.Buffer
	var check [4]byte
	_, _ = rand.Read(check[:])
	priv.Write(check[:])
	priv.Write(check[:])
	putSSHString(&priv, []byte("ssh-ed25519"))
	putSSHString(&priv, pk)
	putSSHString(&priv, sk)
	putSSHString(&priv, []byte(comment))
	for i := byte(1); priv.Len()%8 != 0; i++ {
		priv.WriteByte(i)
	}
	var b bytes.Buffer
	b.WriteString("openssh-key-v1\x00")
	putSSHString(&b, []byte("none"))
	putSSHString(&b, []byte("none"))
	putSSHString(&b, nil)
	_ = binary.Write(&b, binary.BigEndian, uint32(1))
	putSSHString(&b, wire)
	putSSHString(&b, priv.Bytes())
	return string(pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: b.Bytes()}))
}

// generateEd25519 makes an ed25519 key.
func generateEd25519() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}
