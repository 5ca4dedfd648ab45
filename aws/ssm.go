package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
)

// ssmAPI is the part of the Systems Manager client the server calls with
// its own credentials.
type ssmAPI interface {
	TerminateSession(context.Context, *ssm.TerminateSessionInput, ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error)
	DescribeSessions(context.Context, *ssm.DescribeSessionsInput, ...func(*ssm.Options)) (*ssm.DescribeSessionsOutput, error)
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

// sessionAPI is the call made with the session role's credentials, as the
// requester: never with the server's (the IAM test checks this).
type sessionAPI interface {
	StartSession(context.Context, *ssm.StartSessionInput, ...func(*ssm.Options)) (*ssm.StartSessionOutput, error)
}

// assumeAPI is the part of the STS client latch calls to act as a requester.
type assumeAPI interface {
	AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// SessionManager is one region's Systems Manager Session Manager:
// latch.SessionManager. The server's own credentials terminate and list
// sessions and read agents; sessions are started under the session role,
// assumed once per session with the requester as role session name and
// source identity, so that the session ID, DescribeSessions and
// CloudTrail all name the person.
type SessionManager struct {
	cfg     aws.Config
	ssm     ssmAPI
	sts     assumeAPI
	roleARN string
	log     *slog.Logger
	// asRole builds the Systems Manager client for the role session.
	asRole func(creds aws.CredentialsProvider) sessionAPI
	// warned is set once a sweep without a role was refused the list of
	// sessions, which it says once.
	warned atomic.Bool
}

var _ latch.SessionManager = (*SessionManager)(nil)

// roleSessionLife is how long the role session's credentials last: STS's
// minimum. They are used for one StartSession call; the session itself
// outlives them.
const roleSessionLife = 15 * time.Minute

// NewSessionManager returns Session Manager in cfg.Region, starting
// sessions under roleARN (the session role). With no role it starts none,
// but still lists and ends the sessions a role named
// [latch.DefaultSessionRole] started, so that a process not told the role
// still ends what a server given it left; and when it cannot list
// sessions (an account that never turned Session Manager access on, no
// permission, an endpoint without Systems Manager), it says so once and
// lists none. log may be nil.
func NewSessionManager(cfg aws.Config, roleARN string, log *slog.Logger) *SessionManager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SessionManager{
		cfg: cfg, ssm: ssm.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg), roleARN: roleARN, log: log,
		asRole: func(creds aws.CredentialsProvider) sessionAPI {
			return ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Credentials = creds })
		},
	}
}

// Region is the region sessions are started in.
func (m *SessionManager) Region() string { return m.cfg.Region }

// Agent reads the instance's agent from DescribeInstanceInformation.
func (m *SessionManager) Agent(ctx context.Context, id latch.InstanceID) (latch.AgentStatus, error) {
	out, err := m.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{string(id)}}},
	})
	if err != nil {
		return latch.AgentStatus{}, translateSSM("ssm:DescribeInstanceInformation for "+string(id), err)
	}
	for _, info := range out.InstanceInformationList {
		if aws.ToString(info.InstanceId) == string(id) {
			return latch.AgentStatus{Registered: true, PingStatus: string(info.PingStatus),
				Platform: string(info.PlatformType), Version: aws.ToString(info.AgentVersion)}, nil
		}
	}
	return latch.AgentStatus{}, nil
}

// Start assumes the session role as the requester and starts the session.
func (m *SessionManager) Start(ctx context.Context, s latch.SessionStart) (latch.SessionHandle, error) {
	if m.roleARN == "" {
		return latch.SessionHandle{}, latch.Errorf(latch.EUNAVAILABLE, "this server has no Session Manager role; start it with --ssm-session-role ARN")
	}
	name := latch.RoleSessionName(s.Requester)
	role, err := m.sts.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(m.roleARN), RoleSessionName: aws.String(name), SourceIdentity: aws.String(name),
		DurationSeconds: aws.Int32(int32(roleSessionLife / time.Second)),
	})
	if err != nil {
		return latch.SessionHandle{}, translateSSM("sts:AssumeRole "+m.roleARN+" as "+name, err)
	}
	c := role.Credentials
	if c == nil {
		return latch.SessionHandle{}, latch.Errorf(latch.EUNAVAILABLE, "sts:AssumeRole %s returned no credentials", m.roleARN)
	}
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
			SessionToken: aws.ToString(c.SessionToken), Source: "latch session role", CanExpire: c.Expiration != nil,
			Expires: aws.ToTime(c.Expiration)}, nil
	})
	h, err := m.startAsRequester(ctx, creds, s)
	if role.AssumedRoleUser != nil {
		h.Owner = aws.ToString(role.AssumedRoleUser.Arn)
	}
	return h, err
}

// startAsRequester is the one StartSession call, made with the role
// session's credentials, never the server's: the IAM test checks it
// against the session role's policy.
func (m *SessionManager) startAsRequester(ctx context.Context, creds aws.CredentialsProvider, s latch.SessionStart) (latch.SessionHandle, error) {
	params := SessionParameters(s.Document, s.Port, s.LocalPort)
	out, err := m.asRole(creds).StartSession(ctx, &ssm.StartSessionInput{
		Target: aws.String(string(s.Target)), DocumentName: aws.String(s.Document.AWSName()),
		Parameters: params, Reason: aws.String(latch.SessionReason(s.Grant, s.Expires)),
	})
	if err != nil {
		return latch.SessionHandle{}, translateSSM(fmt.Sprintf("ssm:StartSession %s on %s", s.Document, s.Target), err)
	}
	id, err := latch.ParseSSMSessionID(aws.ToString(out.SessionId))
	if err != nil {
		return latch.SessionHandle{}, latch.Errorf(latch.EUNAVAILABLE, "ssm:StartSession returned a session ID latch cannot read: %v", err)
	}
	return latch.SessionHandle{SessionID: id, TokenValue: aws.ToString(out.TokenValue), StreamURL: aws.ToString(out.StreamUrl),
		Region: m.cfg.Region, Target: s.Target, Document: s.Document, Parameters: params}, nil
}

// SessionParameters are StartSession's document parameters for a session
// to port (and, for port forwarding, from localPort; 0 lets the plugin
// choose).
func SessionParameters(doc latch.SSMDocument, port, localPort int) map[string][]string {
	switch doc {
	case latch.DocPortForward:
		p := map[string][]string{"portNumber": {strconv.Itoa(port)}}
		if localPort != 0 {
			p["localPortNumber"] = []string{strconv.Itoa(localPort)}
		}
		return p
	case latch.DocSSH:
		return map[string][]string{"portNumber": {strconv.Itoa(port)}}
	}
	return nil
}

// Terminate ends a session; one Session Manager no longer knows counts as
// ended.
func (m *SessionManager) Terminate(ctx context.Context, id latch.SSMSessionID) error {
	_, err := m.ssm.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(string(id))})
	if apiCode(err) == "DoesNotExistException" {
		return nil
	}
	return translateSSM("ssm:TerminateSession "+string(id), err)
}

// Sessions lists the active sessions latch started: those the session
// role started, read page by page. Their reasons say which grant each
// belongs to and until when; one without a readable reason has a zero
// Expires, and a sweep ends it. A session anyone else started is never
// listed, whatever its reason says.
func (m *SessionManager) Sessions(ctx context.Context) ([]latch.SSMSession, error) {
	var out []latch.SSMSession
	p := ssm.NewDescribeSessionsPaginator(m.ssm, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive, MaxResults: aws.Int32(200)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			err = translateSSM("ssm:DescribeSessions", err)
			if m.roleARN == "" {
				// Session Manager access is off here as far as this
				// process knows: looking is a courtesy, not its duty.
				if !m.warned.Swap(true) {
					m.log.WarnContext(ctx, "cannot list Session Manager sessions; if latch ever started any here, give this process ssm:DescribeSessions and ssm:TerminateSession, and --ssm-session-role",
						"region", m.cfg.Region, "err", err)
				}
				return nil, nil
			}
			return nil, err
		}
		for _, s := range page.Sessions {
			reason, owner := aws.ToString(s.Reason), aws.ToString(s.Owner)
			// Only the session role's sessions are latch's: a reason is
			// anyone's to write, and the server may end any session.
			if !m.owns(owner) {
				continue
			}
			grant, expires, _ := latch.ParseSessionReason(reason)
			doc, _ := latch.ParseSSMDocument(aws.ToString(s.DocumentName))
			out = append(out, latch.SSMSession{ID: latch.SSMSessionID(aws.ToString(s.SessionId)), GrantID: grant, Region: m.cfg.Region,
				Target: latch.InstanceID(aws.ToString(s.Target)), Document: doc, Owner: owner, Reason: reason,
				StartedAt: aws.ToTime(s.StartDate), Expires: expires, Status: string(s.Status)})
		}
	}
	return out, nil
}

// owns reports whether owner is a session of the session role: by its
// ARN when this process was given it, else by the default role's name in
// any account.
func (m *SessionManager) owns(owner string) bool {
	if prefix := assumedRolePrefix(m.roleARN); prefix != "" {
		return strings.HasPrefix(owner, prefix)
	}
	_, rest, ok := strings.Cut(owner, ":assumed-role/"+latch.DefaultSessionRole+"/")
	return ok && strings.HasPrefix(owner, "arn:") && rest != ""
}

// assumedRolePrefix is how STS names sessions of a role:
// arn:aws:iam::123456789012:role/path/NAME becomes
// arn:aws:sts::123456789012:assumed-role/NAME/ (the path is dropped).
func assumedRolePrefix(roleARN string) string {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) != 6 || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return ""
	}
	name := parts[5][strings.LastIndex(parts[5], "/")+1:]
	return fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/", parts[1], parts[4], name)
}

// translateSSM turns a Systems Manager or STS error into latch's
// vocabulary.
func translateSSM(op string, err error) error {
	if err == nil {
		return nil
	}
	msg := func() string {
		if apiErr, ok := asAPIError(err); ok {
			return strings.TrimSuffix(apiErr.ErrorMessage(), ".")
		}
		return ""
	}
	switch apiCode(err) {
	case "":
		return translate(op, err)
	case "TargetNotConnected":
		return latch.Errorf(latch.ECONFLICT, "%s: the instance's SSM agent is not connected (%s); check that it runs and can reach Systems Manager", op, msg())
	case "InvalidDocument", "InvalidParameters", "ValidationException", "ValidationError", "InvalidTarget":
		return latch.Errorf(latch.EINVALID, "%s: %s", op, msg())
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "IncompleteSignatureException":
		return latch.Errorf(latch.EUNAUTHENTICATED, "%s: AWS does not accept these credentials: %s", op, msg())
	case "AccessDeniedException", "AccessDenied":
		return latch.Errorf(latch.EFORBIDDEN, "%s: AWS refused: %s; latch's session role may start sessions only on instances tagged %s=true", op, msg(), latch.TagManaged)
	case "DoesNotExistException":
		return latch.Errorf(latch.ENOTFOUND, "%s: %s", op, msg())
	}
	return translate(op, err)
}

func asAPIError(err error) (smithy.APIError, bool) { return errors.AsType[smithy.APIError](err) }

// CheckRoleARN checks that arn names one IAM role
// (arn:aws:iam::123456789012:role/NAME), as AssumeRole needs.
func CheckRoleARN(arn string) error {
	if assumedRolePrefix(arn) == "" || strings.ContainsAny(arn, "* ") {
		return latch.Invalidf("role", "%q is not an IAM role ARN; want arn:aws:iam::123456789012:role/latch-session", arn)
	}
	return nil
}
