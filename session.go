package latch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Access is how a grant reaches its target.
type Access string

// The kinds of access.
const (
	// AccessNetwork opens a security-group rule for the requester's
	// address. The zero value means it too.
	AccessNetwork Access = "network"
	// AccessSSM opens no port at all: latch starts AWS Systems Manager
	// Session Manager sessions to the instance for the requester, and
	// terminates them when the grant ends.
	AccessSSM Access = "ssm"
)

// SSMDocument is a Session Manager document latch may start a session
// with, by latch's short name.
type SSMDocument string

// The documents latch knows.
const (
	DocShell       SSMDocument = "shell"        // SSM-SessionManagerRunShell: an interactive shell
	DocPortForward SSMDocument = "port-forward" // AWS-StartPortForwardingSession: a local port to a port on the instance
	DocSSH         SSMDocument = "ssh"          // AWS-StartSSHSession: ssh's ProxyCommand to a port on the instance
)

var ssmDocuments = map[SSMDocument]string{
	DocShell:       "SSM-SessionManagerRunShell",
	DocPortForward: "AWS-StartPortForwardingSession",
	DocSSH:         "AWS-StartSSHSession",
}

// SSMDocuments are the documents latch knows, in the order help lists them.
var SSMDocuments = []SSMDocument{DocShell, DocPortForward, DocSSH}

// ParseSSMDocument checks that s names a document latch knows, by its
// short name or its AWS name.
func ParseSSMDocument(s string) (SSMDocument, error) {
	for d, name := range ssmDocuments {
		if s == string(d) || s == name {
			return d, nil
		}
	}
	return "", Invalidf("document", "%q is not a Session Manager document latch starts; want shell, port-forward or ssh", s)
}

// AWSName is the document's name in Systems Manager.
func (d SSMDocument) AWSName() string { return ssmDocuments[d] }

// TakesPort reports whether sessions with d reach one port on the
// instance, which policy must allow.
func (d SSMDocument) TakesPort() bool { return d == DocPortForward || d == DocSSH }

// SSMSessionID is a Session Manager session ID. AWS names a session after
// the caller that started it (an IAM user or a role session) and a
// random suffix; latch's sessions are started under a role session named
// for the requester, so the ID says who it was.
type SSMSessionID string

var ssmSessionIDPattern = regexp.MustCompile(`^[\w+=,.@-]{1,64}-[0-9a-z]{1,32}$`)

// ParseSSMSessionID checks that s is a well-formed session ID.
func ParseSSMSessionID(s string) (SSMSessionID, error) {
	if !ssmSessionIDPattern.MatchString(s) {
		return "", Invalidf("session", "%q is not a Session Manager session ID; want NAME-SUFFIX, as AWS names sessions", s)
	}
	return SSMSessionID(s), nil
}

// RoleSessionName turns a requester into a name STS accepts for a role
// session and a source identity: 2 to 64 characters of letters, digits
// and +=,.@_-. Other characters become '-'; a name cut to fit keeps a
// hash of the whole, so two long names never collide.
func RoleSessionName(requester string) string {
	// An IAM principal's ARN is named by its path and name
	// (assumed-role/dev/alice reads dev-alice), the rest being the same
	// for every principal of the account.
	short := requester
	if strings.HasPrefix(short, "arn:") {
		if i := strings.LastIndex(short, ":"); i >= 0 {
			short = short[i+1:]
		}
		for _, kind := range []string{"assumed-role/", "user/", "role/", "federated-user/"} {
			short = strings.TrimPrefix(short, kind)
		}
	}
	var b strings.Builder
	for _, r := range short {
		switch {
		case r < 128 && (r == '+' || r == '=' || r == ',' || r == '.' || r == '@' || r == '_' || r == '-' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if name != requester || len(name) > 64 {
		// Changed or cut: add a digest of the original so that the name
		// still identifies exactly one requester.
		sum := shortDigest(requester)
		name = strings.Trim(name, "-")
		if len(name) > 64-len(sum)-1 {
			name = name[:64-len(sum)-1]
		}
		name += "-" + sum
	}
	for len(name) < 2 {
		name += "-"
	}
	return name
}

// DefaultSessionRole is the session role's name unless an operator names
// another: sweeps not told the role recognise latch's sessions by it.
const DefaultSessionRole = "latch-session"

// SessionReasonPrefix starts the reason latch gives every session it
// starts. With the grant and expiry after it, it is the cloud's record of
// the session (DescribeSessions returns it), so a sweep with no database
// knows which sessions are latch's and when each must end.
const SessionReasonPrefix = "latch "

// SessionReason is the reason latch starts a session with.
func SessionReason(g GrantID, expires time.Time) string {
	return fmt.Sprintf("%s%s until %s", SessionReasonPrefix, g, FormatExpiry(expires))
}

// ParseSessionReason reads the grant and expiry back from a session's
// reason. ok is false for a session latch did not start.
func ParseSessionReason(reason string) (g GrantID, expires time.Time, ok bool) {
	rest, found := strings.CutPrefix(reason, SessionReasonPrefix)
	if !found {
		return "", time.Time{}, false
	}
	id, at, found := strings.Cut(rest, " until ")
	if !found {
		return "", time.Time{}, false
	}
	g, err := ParseGrantID(id)
	if err != nil {
		return "", time.Time{}, false
	}
	expires, err = time.Parse(time.RFC3339, at)
	if err != nil {
		return "", time.Time{}, false
	}
	return g, expires, true
}

// SSMSession is a Session Manager session latch started, or found.
type SSMSession struct {
	ID        SSMSessionID
	GrantID   GrantID // from the store, or from the session's reason
	Region    string
	Target    InstanceID
	Document  SSMDocument
	Owner     string // the ARN that started it: the session role, with the requester as session name
	Reason    string
	StartedAt time.Time
	Expires   time.Time // from the reason; zero when it has none
	EndedAt   time.Time // when latch saw it end; zero while it may be running
	// Status is Session Manager's: Connected, Connecting, Disconnected,
	// Terminating, Terminated, Failed.
	Status string
}

// SessionStart asks Session Manager for a session.
type SessionStart struct {
	Grant     GrantID
	Target    InstanceID
	Document  SSMDocument
	Port      int // the port on the instance, for port-forward and ssh
	LocalPort int // for port-forward: the plugin's local port; 0 lets it choose
	Requester string
	Expires   time.Time
}

// SessionHandle is what a client needs to run the session with the
// standard session-manager-plugin, as StartSession returns it. TokenValue
// is a secret: it is never logged or stored.
type SessionHandle struct {
	SessionID  SSMSessionID
	Owner      string // the role session that started it, as DescribeSessions names it
	TokenValue string
	StreamURL  string
	Region     string
	Target     InstanceID
	Document   SSMDocument
	Parameters map[string][]string // the StartSession parameters, which the plugin also reads
}

// AgentStatus is what Session Manager knows of an instance's agent.
type AgentStatus struct {
	Registered bool   // the instance has an agent Systems Manager knows
	PingStatus string // Online, ConnectionLost or Inactive
	Platform   string
	Version    string
}

// Online reports whether sessions can start.
func (a AgentStatus) Online() bool { return a.Registered && a.PingStatus == "Online" }

// SessionManager is one region's Session Manager, as latch uses it.
type SessionManager interface {
	// Agent reports the instance's agent.
	Agent(ctx context.Context, id InstanceID) (AgentStatus, error)
	// Start starts a session under a role session named for the
	// requester, with the grant and expiry as its reason.
	Start(ctx context.Context, s SessionStart) (SessionHandle, error)
	// Terminate ends a session. Ending one that has ended, or that Session
	// Manager no longer knows, succeeds.
	Terminate(ctx context.Context, id SSMSessionID) error
	// Sessions lists the active sessions latch started (by their reason).
	Sessions(ctx context.Context) ([]SSMSession, error)
}

// shortDigest is 8 hex digits of s's SHA-256.
func shortDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}
