package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// SSHLoginInput is what `latch ssh` sends for a grant it holds.
type SSHLoginInput struct {
	PublicKey []byte // one OpenSSH public key, authorized_keys format; latch never sees the private key
	Login     string // the OS user wanted; "" means the rule's first principal
}

// SSHLogin is a short-lived SSH credential for a grant.
type SSHLogin struct {
	Method      latch.SSHMethod
	Login       string         // the OS user to log in as
	Principals  []string       // every user the credential allows
	Certificate []byte         // certificate method: the certificate, authorized_keys format
	Serial      uint64         // certificate method: its serial, as sshd logs it
	ValidBefore time.Time      // when the credential stops working for new logins
	AccessUntil time.Time      // when the grant ends and open sessions should close
	Instance    latch.Instance // the grant's instance, with its addresses; zero for a group grant
	// HostKeys are the instance's SSH host keys as read from outside it
	// ("TYPE BASE64"); none when they could not be read.
	HostKeys []string
}

// SSHLogin issues the credential the grant's rule names: a certificate for
// the grant's window and source, or a key pushed with Instance Connect.
// Only the grant's requester may ask, and only while the grant is active.
func (a *Access) SSHLogin(ctx context.Context, who latch.Identity, id latch.GrantID, in SSHLoginInput) (SSHLogin, error) {
	g, r, rule, err := a.sshGrant(ctx, who, id)
	if err != nil {
		return SSHLogin{}, err
	}
	login := in.Login
	if login == "" {
		login = rule.SSH.Principals[0]
	}
	if !slices.Contains(rule.SSH.Principals, login) {
		return SSHLogin{}, latch.Errorf(latch.EFORBIDDEN, "rule %q allows logging in as %s, not %q", rule.Name, strings.Join(rule.SSH.Principals, ", "), login)
	}
	out := SSHLogin{Method: rule.SSH.Method, Login: login, ValidBefore: g.ExpiresAt, AccessUntil: g.ExpiresAt}
	if r.Target.InstanceID != "" {
		if out.Instance, err = a.instance(ctx, r.Target); err != nil {
			return SSHLogin{}, err
		}
		out.HostKeys = a.hostKeys(ctx, r.Target)
	}
	if out.Method == latch.SSHCertificate {
		err = a.certify(ctx, g, r.Target, rule, in.PublicKey, &out)
	} else {
		err = a.pushKey(ctx, g, r.Target, in.PublicKey, &out)
	}
	if err != nil {
		return SSHLogin{}, err
	}
	a.log.InfoContext(ctx, "ssh login issued", "grant_id", g.ID, "requester", who.Subject, "method", out.Method,
		"login", login, "instance_id", r.Target.InstanceID, "serial", out.Serial)
	return out, nil
}

// sshGrant checks that who may log in with grant id now, and returns the
// grant, the request that opened it and the rule it was opened under.
func (a *Access) sshGrant(ctx context.Context, who latch.Identity, id latch.GrantID) (latch.Grant, latch.Request, policy.Rule, error) {
	g, err := a.store.Grant(ctx, id)
	if err != nil {
		return g, latch.Request{}, policy.Rule{}, err
	}
	if !a.ownsGrant(who, g) {
		// Not even an admin: a login is personal, and tied to the requester's address.
		return g, latch.Request{}, policy.Rule{}, latch.Errorf(latch.EFORBIDDEN, "only the requester of grant %s may log in with it", id)
	}
	if g.State != latch.StateActive || !a.now().Before(g.ExpiresAt) {
		return g, latch.Request{}, policy.Rule{}, latch.Errorf(latch.ECONFLICT, "grant %s is %s; an SSH login needs an active grant", id, g.State)
	}
	if g.Access == latch.AccessSSM && g.Document != latch.DocSSH {
		return g, latch.Request{}, policy.Rule{}, latch.Errorf(latch.EFORBIDDEN, "grant %s gives %s sessions; an SSH login goes with an ssh session (latch ssh --via ssm)", id, g.Document)
	}
	rs, err := a.store.Requests(ctx, latch.RequestFilter{GrantID: id, Limit: 1})
	if err != nil {
		return g, latch.Request{}, policy.Rule{}, err
	}
	if len(rs) == 0 {
		return g, latch.Request{}, policy.Rule{}, latch.Errorf(latch.EFORBIDDEN, "grant %s was not opened by a request, so no rule gives it an SSH login", id)
	}
	rule, ok := a.policy.Policy().Rule(rs[0].Rule)
	switch {
	case !ok:
		return g, rs[0], rule, latch.Errorf(latch.EFORBIDDEN, "rule %q, which opened grant %s, is no longer in the policy", rs[0].Rule, id)
	case rule.SSH == nil:
		return g, rs[0], rule, latch.Errorf(latch.EFORBIDDEN, "rule %q gives no SSH login; an admin can add ssh: {principals: [...]} to it", rule.Name)
	case g.Access == latch.AccessSSM && rule.SSH.Method != latch.SSHCertificate:
		// A pushed key works from any address that reaches sshd; a
		// certificate for a session is valid from the instance's loopback.
		return g, rs[0], rule, latch.Errorf(latch.EFORBIDDEN, "rule %q logs in with %s, which works from any address; SSH over Session Manager needs the certificate method", rule.Name, rule.SSH.Method)
	}
	return g, rs[0], rule, nil
}

// instance looks up the grant's instance for its current addresses.
func (a *Access) instance(ctx context.Context, t latch.Target) (latch.Instance, error) {
	inv, ok := a.inv[t.Region]
	if !ok {
		return latch.Instance{}, latch.Errorf(latch.EUNAVAILABLE, "region %s is no longer served here", t.Region)
	}
	return inv.Instance(ctx, t.InstanceID)
}

// hostKeys reads the instance's host keys. Failing to is no reason to
// refuse a login: the client then trusts the key it is first shown, and
// says so.
func (a *Access) hostKeys(ctx context.Context, t latch.Target) []string {
	src, ok := a.opts.HostKeys[t.Region]
	if !ok {
		return nil
	}
	keys, err := src.HostKeys(ctx, t.InstanceID)
	if err != nil {
		a.log.WarnContext(ctx, "cannot read host keys; the client will trust the key it is first shown",
			"instance_id", t.InstanceID, "err", err)
	}
	return keys
}

// certify signs the caller's key for the grant's window, from its source
// only, for every principal the rule names, each bound to the grant's
// instance: the certificate logs in there and nowhere else. A grant on a
// security group gets no certificate.
func (a *Access) certify(ctx context.Context, g latch.Grant, t latch.Target, rule policy.Rule, key []byte, out *SSHLogin) error {
	req, err := latch.GrantCertRequest(g, t.InstanceID, rule.SSH.Principals)
	if err != nil {
		return err
	}
	if a.opts.SSHCA == nil {
		return latch.Errorf(latch.EUNAVAILABLE, "rule %q logs in with a certificate, but this server has no SSH CA (start it with --ssh-ca-key)", rule.Name)
	}
	cert, serial, err := a.opts.SSHCA.Certify(ctx, key, req)
	if err != nil {
		return err
	}
	out.Certificate, out.Serial, out.Principals = cert, serial, rule.SSH.Principals
	from := []string{req.SourceAddress.String()}
	for _, p := range req.AlsoFrom {
		from = append(from, p.String())
	}
	target := string(g.GroupID)
	if g.Access == latch.AccessSSM {
		target = string(g.Target)
	}
	a.audit(ctx, latch.AuditEntry{Actor: g.Requester, Action: latch.AuditSSHCertificate, Target: target, GrantID: g.ID,
		Details: map[string]string{"serial": fmt.Sprint(serial), "principals": strings.Join(req.Principals, ","),
			"source": strings.Join(from, ","), "valid_before": g.ExpiresAt.UTC().Format(time.RFC3339), "instance_id": string(t.InstanceID)}})
	return nil
}

// pushKey pushes the caller's key to the grant's instance for one login.
func (a *Access) pushKey(ctx context.Context, g latch.Grant, t latch.Target, key []byte, out *SSHLogin) error {
	if t.InstanceID == "" {
		return latch.Invalidf("grant", "grant %s is for security group %s, not an instance; Instance Connect needs an instance", g.ID, g.GroupID)
	}
	pusher, ok := a.opts.KeyPushers[t.Region]
	if !ok {
		return latch.Errorf(latch.EUNAVAILABLE, "this server cannot use EC2 Instance Connect in %s", t.Region)
	}
	if err := pusher.PushSSHKey(ctx, t.InstanceID, out.Login, key); err != nil {
		return err
	}
	out.Principals = []string{out.Login}
	if v := a.now().Add(InstanceConnectKeyLife); v.Before(out.ValidBefore) {
		out.ValidBefore = v
	}
	a.audit(ctx, latch.AuditEntry{Actor: g.Requester, Action: latch.AuditSSHKeyPushed, Target: string(g.GroupID), GrantID: g.ID,
		Details: map[string]string{"login": out.Login, "instance_id": string(t.InstanceID)}})
	return nil
}

// InstanceConnectKeyLife is how long EC2 Instance Connect keeps a pushed key.
const InstanceConnectKeyLife = 60 * time.Second
