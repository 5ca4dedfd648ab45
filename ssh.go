package latch

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// SSHMethod is how latch hands out an SSH login for a grant.
type SSHMethod string

const (
	// SSHCertificate: latch's SSH CA signs the caller's public key for the
	// grant's window and address; instances trust the CA (TrustedUserCAKeys).
	SSHCertificate SSHMethod = "certificate"
	// SSHInstanceConnect: latch pushes the caller's public key to the
	// instance with EC2 Instance Connect, usable for 60 seconds.
	SSHInstanceConnect SSHMethod = "instance-connect"
)

// ParseSSHMethod reads an SSH method by name.
func ParseSSHMethod(s string) (SSHMethod, error) {
	switch m := SSHMethod(s); m {
	case SSHCertificate, SSHInstanceConnect:
		return m, nil
	}
	return "", Invalidf("method", "%q is not an SSH method; want certificate or instance-connect", s)
}

// SSHCertRequest says what a user certificate allows.
type SSHCertRequest struct {
	// KeyID names the certificate in sshd's logs, for example
	// "grant=g-123;requester=alice@example.com". Required.
	KeyID string
	// Principals are the user names the certificate may log in as. At least one.
	Principals []string
	// ValidAfter and ValidBefore bound when the certificate is valid; both
	// are required and ValidBefore must be later. Times are kept to the second.
	ValidAfter, ValidBefore time.Time
	// SourceAddress is the only client address the certificate is valid
	// from (the "source-address" critical option). It must be a single
	// address (/32 or /128) unless AllowWideSource is set.
	SourceAddress netip.Prefix
	// AllowWideSource allows a SourceAddress wider than one address, or none
	// at all (the zero Prefix): a certificate usable from anywhere.
	AllowWideSource bool
	// AlsoFrom are more single addresses the certificate is valid from,
	// besides SourceAddress: a Session Manager login reaches sshd from the
	// instance's own loopback, IPv4 or IPv6.
	AlsoFrom []netip.Prefix
	// Skew moves ValidAfter back, to allow for a server clock behind ours.
	// Zero means the CA's default.
	Skew time.Duration
}

// SSHPrincipal is the certificate principal that lets login log in to
// instance and nowhere else: "LOGIN@INSTANCE_ID", e.g.
// "ec2-user@i-0123456789abcdef0". A login name holds no '@' and an
// instance ID has a fixed form, so it reads back one way only. An
// instance accepts it when sshd's AuthorizedPrincipalsFile for the user
// lists exactly that line (the README's user data writes it from the
// instance's own ID); sshd without a principals file refuses it, since it
// is no user's name.
func SSHPrincipal(login string, instance InstanceID) string {
	return login + "@" + string(instance)
}

// GrantCertRequest is the certificate grant g allows on instance for
// logins: valid for its window, from its source only, for each login on
// that instance alone (see [SSHPrincipal]), and named in sshd's logs by
// the grant and its requester. A grant on a security group names no
// instance, and a certificate not bound to one would log in to every
// instance that trusts the CA, so it gets none: EINVALID, field grant.
func GrantCertRequest(g Grant, instance InstanceID, logins []string) (SSHCertRequest, error) {
	if instance == "" {
		return SSHCertRequest{}, Invalidf("grant", "grant %s is for security group %s, not an instance; "+
			"a certificate names the one instance it logs in to, so ask for access to the instance", g.ID, g.GroupID)
	}
	if _, err := ParseInstanceID(string(instance)); err != nil {
		return SSHCertRequest{}, err
	}
	if len(logins) == 0 {
		return SSHCertRequest{}, Invalidf("login", "none given; a certificate needs at least one login")
	}
	principals := make([]string, len(logins))
	for i, l := range logins {
		if err := CheckLogin("login", l); err != nil {
			return SSHCertRequest{}, err
		}
		principals[i] = SSHPrincipal(l, instance)
	}
	req := SSHCertRequest{
		KeyID:      fmt.Sprintf("grant=%s;requester=%s", g.ID, g.Requester),
		Principals: principals, ValidAfter: g.CreatedAt, ValidBefore: g.ExpiresAt,
		SourceAddress: g.Source, AllowWideSource: !g.Source.IsSingleIP(),
	}
	if g.Access == AccessSSM {
		// Session Manager's agent connects to sshd from the instance
		// itself; nothing else may use the certificate.
		req.SourceAddress, req.AllowWideSource = netip.MustParsePrefix("127.0.0.1/32"), false
		req.AlsoFrom = []netip.Prefix{netip.MustParsePrefix("::1/128")}
	}
	return req, nil
}

// SSHCertifier signs SSH user certificates. Keys and certificates are in
// authorized_keys format, so this package needs no SSH library.
type SSHCertifier interface {
	// Certify signs publicKey and returns the certificate and its serial.
	// A key that does not parse is EINVALID with field public_key.
	Certify(ctx context.Context, publicKey []byte, c SSHCertRequest) (cert []byte, serial uint64, err error)
}

// SSHKeyPusher makes a public key (authorized_keys format) able to log in
// to an instance as osUser for a short while: EC2 Instance Connect.
type SSHKeyPusher interface {
	PushSSHKey(ctx context.Context, instance InstanceID, osUser string, publicKey []byte) error
}

// HostKeySource reads an instance's SSH host keys from outside its SSH
// server, so a first connection need not trust whatever key it is shown.
// On EC2 that is the console output, where cloud-init prints them at boot.
type HostKeySource interface {
	// HostKeys returns the keys in authorized_keys format without
	// comments ("ssh-ed25519 AAAA…"); none is not an error. Returns
	// ENOTFOUND for an unknown instance.
	HostKeys(ctx context.Context, instance InstanceID) ([]string, error)
}

// CheckLogin returns an EINVALID naming field unless s can be a Unix login
// name.
func CheckLogin(field, s string) error {
	if !ValidLogin(s) {
		return Invalidf(field, "%q is not a login name; want 1-32 letters, digits, '_', '-' or '.', not starting with '-'", s)
	}
	return nil
}

// ValidLogin reports whether s can be a Unix login name: the portable
// set POSIX and useradd accept, at most 32 characters.
func ValidLogin(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
