package ec2sim

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// InstanceConnectTarget prefixes EC2 Instance Connect's X-Amz-Target (JSON
// 1.1 protocol).
const InstanceConnectTarget = "AWSEC2InstanceConnectService."

// PushedKeyLifetime is how long a key sent with SendSSHPublicKey stays on
// the instance.
const PushedKeyLifetime = 60 * time.Second

// PushedKey is a public key sent to an instance with SendSSHPublicKey.
type PushedKey struct {
	InstanceID string
	OSUser     string
	PublicKey  string // authorized_keys format
	Expires    time.Time
}

var osUserPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9@._-]{0,31}$`)

// serveInstanceConnect answers EC2 Instance Connect; false if r is not for it.
func (s *Server) serveInstanceConnect(w http.ResponseWriter, r *http.Request) bool {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), InstanceConnectTarget)
	if !ok {
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	region, _ := credentialScope(r)
	s.lock()
	requestID := s.ids.request()
	s.calls[op]++
	fault, _ := s.drawFault(op)
	s.unlock()
	w.Header().Set("x-amzn-RequestId", requestID)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	fail := func(status int, code, msg string) bool {
		w.WriteHeader(status)
		_, _ = w.Write(marshalJSON(map[string]string{"__type": code, "Message": msg}))
		return true
	}
	switch {
	case fault == faultThrottle:
		return fail(400, "ThrottlingException", "Rate exceeded")
	case fault == faultServerError:
		return fail(500, "ServiceException", "An internal error has occurred. (injected by ec2sim)")
	case op != "SendSSHPublicKey":
		return fail(400, "UnknownOperationException", "ec2sim models SendSSHPublicKey only")
	}
	var in struct {
		InstanceID, InstanceOSUser, SSHPublicKey, AvailabilityZone string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return fail(400, "SerializationException", "the request body is not JSON: "+err.Error())
	}
	if code, msg := s.pushKey(region, in.InstanceID, in.InstanceOSUser, in.SSHPublicKey); code != "" {
		return fail(400, code, msg)
	}
	if fault == faultLostResponse {
		return fail(500, "ServiceException", "An internal error has occurred. (injected by ec2sim)")
	}
	_, _ = w.Write(marshalJSON(map[string]any{"RequestId": requestID, "Success": true}))
	return true
}

// pushKey checks and records one pushed key; it returns an error code and
// message as EC2 Instance Connect would.
func (s *Server) pushKey(region, id, user, key string) (code, msg string) {
	switch {
	case id == "":
		return "InvalidArgsException", "InstanceId is required"
	case !osUserPattern.MatchString(user):
		return "InvalidArgsException", "InstanceOSUser '" + user + "' is not a valid user name"
	case !validPublicKey(key):
		return "InvalidArgsException", "SSHPublicKey is not an OpenSSH public key (ssh-ed25519, ecdsa-sha2-nistp*, or ssh-rsa of 2048 bits or more)"
	}
	s.lock()
	defer s.unlock()
	in, ok := s.region(region).instances[id]
	if !ok {
		return "EC2InstanceNotFoundException", "Instance " + id + " not found in " + region
	}
	if in.state != "running" {
		return "EC2InstanceStateInvalidException", "Instance " + id + " is " + in.state + ", not running"
	}
	if s.pushed == nil {
		s.pushed = map[string][]PushedKey{}
	}
	k := region + "/" + id
	s.pushed[k] = append(s.pushed[k], PushedKey{InstanceID: id, OSUser: user, PublicKey: key, Expires: s.now().Add(PushedKeyLifetime)})
	return "", ""
}

// validPublicKey accepts one well-formed key of a type Instance Connect
// takes: the host key types, and RSA of 2048 bits or more.
func validPublicKey(key string) bool {
	if strings.ContainsAny(strings.TrimRight(key, "\r\n"), "\r\n") {
		return false // one key, one line
	}
	k, err := parseHostKey(key)
	return err == nil && (k.typ != "ssh-rsa" || k.bits >= 2048)
}

// PushedKeys returns the keys pushed to an instance that have not yet
// expired on the simulator's clock.
func (s *Server) PushedKeys(region, instanceID string) []PushedKey {
	s.lock()
	defer s.unlock()
	now := s.now()
	var out []PushedKey
	for _, k := range s.pushed[region+"/"+instanceID] {
		if now.Before(k.Expires) {
			out = append(out, k)
		}
	}
	return out
}

// serveAdminPushedKeys answers GET /_sim/instance-connect/keys?region=&instance=&user=
// with the user's unexpired pushed keys, one authorized_keys line each: what
// an instance reads from its metadata (managed-ssh-keys/active-keys/USER)
// when sshd's AuthorizedKeysCommand asks, so a test's sshd can accept them.
func (s *Server) serveAdminPushedKeys(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	region, id, user := q.Get("region"), q.Get("instance"), q.Get("user")
	if region == "" {
		region = DefaultRegion
	}
	if id == "" || !osUserPattern.MatchString(user) {
		http.Error(w, "instance (an instance ID) and user (an OS user name) are required", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, k := range s.PushedKeys(region, id) {
		if k.OSUser == user {
			_, _ = io.WriteString(w, strings.TrimSpace(k.PublicKey)+"\n")
		}
	}
}
