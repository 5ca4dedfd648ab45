// Package iampolicy writes the least-privilege IAM policies latch needs, as
// IAM policy documents: the server's (or daemon's) role, the Lambda
// function's execution role, the role EventBridge Scheduler assumes to
// revoke a rule at its expiry, the role the sweep schedule uses to invoke
// the function, and the session role the server assumes, as the requester,
// to start Session Manager sessions (with its trust policy). The CloudFormation template and the Terraform module
// under deploy/ carry the same statements; tests keep them in step, and keep
// the server's actions equal to the AWS calls latch's code makes.
//
// # Sources
//
// Actions, resource types and condition keys were read from the Service
// Authorization Reference (EC2, EventBridge Scheduler, IAM, CloudWatch Logs,
// Lambda; through the iann0036/iam-dataset scrape of it), the EC2 user
// guide on tagging resources at creation, and EventBridge Scheduler's
// managed policies and confused-deputy guidance. Nothing here has been
// evaluated by IAM itself: the simulator latch tests against does not
// enforce IAM. What could not be verified from documentation is marked
// "Unverified" where it is used.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/latchdev/latch"
)

// Version is the only policy language version latch writes.
const Version = "2012-10-17"

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of an identity-based policy or, with a
// Principal and no Resource, of a role's trust policy. Action, Resource
// and each Principal are always written as lists; reading accepts IAM's
// single-string form too.
type Statement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal map[string][]string       `json:"Principal,omitempty"` // trust policies only, e.g. {"AWS": [role ARN]}
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource,omitempty"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// UnmarshalJSON reads a statement whose Action, Resource and principals
// may each be a string or a list of strings, as IAM allows.
func (s *Statement) UnmarshalJSON(b []byte) error {
	var raw struct {
		Sid       string                    `json:"Sid"`
		Effect    string                    `json:"Effect"`
		Principal map[string]stringOrList   `json:"Principal"`
		Action    stringOrList              `json:"Action"`
		Resource  stringOrList              `json:"Resource"`
		Condition map[string]map[string]any `json:"Condition"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = Statement{Sid: raw.Sid, Effect: raw.Effect, Action: raw.Action, Resource: raw.Resource, Condition: raw.Condition}
	if raw.Principal != nil {
		s.Principal = make(map[string][]string, len(raw.Principal))
		for k, v := range raw.Principal {
			s.Principal[k] = v
		}
	}
	return nil
}

type stringOrList []string

func (l *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*l = many
	return nil
}

// Options say where the policies apply. The zero value is valid and gives
// policies for any account and region in the aws partition.
type Options struct {
	Partition          string // aws (default), aws-cn, aws-us-gov, ...
	Account            string // 12-digit account ID, or "*" (default)
	Region             string // region name, or "*" (default)
	ScheduleGroup      string // the backstop schedules' group; default "latch"
	SchedulerRoleARN   string // the role Scheduler assumes to revoke; default role/latch-scheduler in Account
	LogGroupARN        string // the Lambda function's log group; default /aws/lambda/latch
	FunctionARN        string // the Lambda function the sweep schedule invokes; default function:latch
	DeadLetterQueueARN string // where Scheduler sends revocations it gave up on; "" for none
	SessionRoleARN     string // the role the server assumes to start Session Manager sessions; default role/latch-session in Account
	ServerRoleARN      string // the role latch runs as, which alone may assume the session role (see [SessionRoleTrust]); no default
	// NoSSM leaves Session Manager out of the server's policy: no
	// assuming the session role, no ending or listing sessions.
	NoSSM bool
}

// DefaultSessionRole is the name of the session role unless told otherwise.
const DefaultSessionRole = latch.DefaultSessionRole

// DefaultScheduleGroup is the schedule group the backstop schedules live in
// unless told otherwise.
const DefaultScheduleGroup = "latch"

func (o Options) withDefaults() Options {
	if o.Partition == "" {
		o.Partition = "aws"
	}
	if o.Account == "" {
		o.Account = "*"
	}
	if o.Region == "" {
		o.Region = "*"
	}
	if o.ScheduleGroup == "" {
		o.ScheduleGroup = DefaultScheduleGroup
	}
	if o.SchedulerRoleARN == "" {
		o.SchedulerRoleARN = fmt.Sprintf("arn:%s:iam::%s:role/latch-scheduler", o.Partition, o.Account)
	}
	if o.LogGroupARN == "" {
		o.LogGroupARN = fmt.Sprintf("arn:%s:logs:%s:%s:log-group:/aws/lambda/latch", o.Partition, o.Region, o.Account)
	}
	if o.FunctionARN == "" {
		o.FunctionARN = fmt.Sprintf("arn:%s:lambda:%s:%s:function:latch", o.Partition, o.Region, o.Account)
	}
	if o.SessionRoleARN == "" {
		o.SessionRoleARN = fmt.Sprintf("arn:%s:iam::%s:role/%s", o.Partition, o.Account, DefaultSessionRole)
	}
	return o
}

var (
	partitionPattern = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	accountPattern   = regexp.MustCompile(`^[0-9]{12}$`)
	groupPattern     = regexp.MustCompile(`^[0-9a-zA-Z_.-]{1,64}$`)
	roleARNPattern   = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::([0-9]{12}|\*):role/[\w+=,.@/*-]+$`)
	logGroupPattern  = regexp.MustCompile(`^arn:aws(-[a-z]+)*:logs:[a-z0-9*-]+:([0-9]{12}|\*):log-group:[.\-_/#A-Za-z0-9*]+(:\*)?$`)
	functionPattern  = regexp.MustCompile(`^arn:aws(-[a-z]+)*:lambda:[a-z0-9*-]+:([0-9]{12}|\*):function:[a-zA-Z0-9_*-]+(:[a-zA-Z0-9_$-]+)?$`)
	queuePattern     = regexp.MustCompile(`^arn:aws(-[a-z]+)*:sqs:[a-z0-9*-]+:([0-9]{12}|\*):[a-zA-Z0-9_*.-]+$`)
)

// Validate reports the first option that is not a well-formed value, as an
// EINVALID error naming the matching `latch iam-policy` flag. Empty fields
// are valid (they take their defaults).
func (o Options) Validate() error {
	checks := []struct {
		field, value, want string
		ok                 func(string) bool
	}{
		{"partition", o.Partition, "aws, aws-cn, aws-us-gov, ...", partitionPattern.MatchString},
		{"account", o.Account, `a 12-digit account ID or "*"`, func(s string) bool { return s == "*" || accountPattern.MatchString(s) }},
		{"region", o.Region, `a region name like us-east-1 or "*"`, func(s string) bool {
			_, err := latch.ParseRegion(s)
			return s == "*" || err == nil
		}},
		{"schedule-group", o.ScheduleGroup, "1 to 64 letters, digits, '-', '_' or '.'", groupPattern.MatchString},
		{"scheduler-role-arn", o.SchedulerRoleARN, "an IAM role ARN like arn:aws:iam::123456789012:role/latch-scheduler", roleARNPattern.MatchString},
		{"log-group-arn", o.LogGroupARN, "a log group ARN like arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/latch", logGroupPattern.MatchString},
		{"function-arn", o.FunctionARN, "a function ARN like arn:aws:lambda:us-east-1:123456789012:function:latch", functionPattern.MatchString},
		{"dead-letter-arn", o.DeadLetterQueueARN, "an SQS queue ARN like arn:aws:sqs:us-east-1:123456789012:latch-dead-letters", queuePattern.MatchString},
		{"session-role-arn", o.SessionRoleARN, "an IAM role ARN like arn:aws:iam::123456789012:role/latch-session", roleARNPattern.MatchString},
		{"server-role-arn", o.ServerRoleARN, "an IAM role ARN like arn:aws:iam::123456789012:role/latch-server", func(s string) bool {
			return roleARNPattern.MatchString(s) && !strings.Contains(s, "*") // a trust policy's principal takes no wildcard
		}},
	}
	for _, c := range checks {
		if c.value != "" && !c.ok(c.value) {
			return latch.Invalidf(c.field, "%q is not valid; want %s", c.value, c.want)
		}
	}
	return nil
}

// ruleTagKeys are the tags latch writes onto the rules it opens.
var ruleTagKeys = []string{latch.TagGrantID, latch.TagExpiresAt, latch.TagRequester}

func (o Options) arn(service, resource string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", o.Partition, service, o.Region, o.Account, resource)
}

// managedGroups is the condition that confines a statement to security
// groups tagged latch:managed=true.
func managedGroups() map[string]map[string]any {
	return map[string]map[string]any{"StringEquals": {"aws:ResourceTag/" + latch.TagManaged: "true"}}
}

// sshInstances is the condition that confines a statement to instances
// tagged latch:ssh=true, the ones latch may log people in to.
func sshInstances() map[string]map[string]any {
	return map[string]map[string]any{"StringEquals": {"aws:ResourceTag/" + latch.TagSSH: "true"}}
}

// Server is the policy of the role the latch server, daemon or one-shot
// commands (grant, revoke, sweep, run) use: open and close rules only in
// managed groups, create only rules that carry latch's expiry tag, tag only
// latch's rules with latch's keys, read inventory, read host keys from and
// push Instance Connect keys to instances tagged latch:ssh=true, and keep backstop
// schedules in one schedule group, passing them only the scheduler role.
// Unless [Options].NoSSM, it may also assume the session role (setting
// the requester as source identity) to start Session Manager sessions,
// end sessions, and list sessions and instances' agents; it holds no
// ssm:StartSession itself.
// It holds no IAM write, no group creation, and nothing of CloudTrail
// (`latch audit proof` and `reconcile` are admin tooling, run with the
// operator's own credentials: they need cloudtrail:LookupEvents). `latch
// doctor` works with it: sts:GetCallerIdentity needs no permission.
//
// Options are not validated here; call [Options.Validate] on user input.
func Server(opts Options) Document {
	o := opts.withDefaults()
	onlyLatchKeys := map[string]any{"aws:TagKeys": slices.Clone(ruleTagKeys)}
	doc := Document{Version: Version, Statement: []Statement{
		{
			// EC2 Instance Connect: a key the server pushes lasts 60
			// seconds, for one connection to an instance a grant opened.
			// A pushed key logs in as any OS user, so only on instances
			// opted in to latch's SSH. The user guide for Instance Connect
			// says access can be restricted "by using resource tags as
			// condition keys"; the instance resource type lists
			// aws:ResourceTag/${TagKey}. Unverified against IAM itself.
			Sid:       "PushShortLivedSSHKeys",
			Effect:    "Allow",
			Action:    []string{"ec2-instance-connect:SendSSHPublicKey"},
			Resource:  []string{o.arn("ec2", "instance/*")},
			Condition: sshInstances(),
		},
		{
			// cloud-init prints an instance's SSH host keys to its
			// console at boot; latch pins them so a first connection
			// need not trust the key it is shown. The console can carry
			// whatever else an instance printed, so only instances opted
			// in to latch's SSH (GetConsoleOutput acts on instance, whose
			// condition keys include aws:ResourceTag/${TagKey}).
			Sid:       "ReadHostKeysFromConsoleOutput",
			Effect:    "Allow",
			Action:    []string{"ec2:GetConsoleOutput"},
			Resource:  []string{o.arn("ec2", "instance/*")},
			Condition: sshInstances(),
		},
		{
			// ModifySecurityGroupRules keeps a shared rule's description
			// naming the grant that holds it; it acts on the group, whose
			// tag the condition reads (that it needs no security-group-rule
			// resource too is unverified; latch only logs a refusal).
			Sid:       "OpenAndCloseRulesOnlyInManagedGroups",
			Effect:    "Allow",
			Action:    []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:ModifySecurityGroupRules"},
			Resource:  []string{o.arn("ec2", "security-group/*")},
			Condition: managedGroups(),
		},
		{
			// The Service Authorization Reference lists security-group-rule
			// as a resource of AuthorizeSecurityGroupIngress, checked only
			// when the request has TagSpecifications, as latch's always do;
			// aws:RequestTag and aws:TagKeys are its condition keys. So the
			// new rule must carry an expiry and only latch's tag keys.
			// Unverified against IAM itself.
			Sid:      "CreateOnlyRulesThatCarryTheirExpiry",
			Effect:   "Allow",
			Action:   []string{"ec2:AuthorizeSecurityGroupIngress"},
			Resource: []string{o.arn("ec2", "security-group-rule/*")},
			Condition: map[string]map[string]any{
				"Null":                      {"aws:RequestTag/" + latch.TagExpiresAt: "false"},
				"ForAllValues:StringEquals": onlyLatchKeys,
			},
		},
		{
			// Tags in TagSpecifications are authorized as ec2:CreateTags with
			// ec2:CreateAction set to the creating call (EC2 user guide,
			// "Grant permission to tag resources during creation", which
			// shows RunInstances and CreateVolume; that the value is
			// AuthorizeSecurityGroupIngress here follows the same rule and is
			// unverified).
			Sid:      "TagRulesAsTheyAreCreated",
			Effect:   "Allow",
			Action:   []string{"ec2:CreateTags"},
			Resource: []string{o.arn("ec2", "security-group-rule/*")},
			Condition: map[string]map[string]any{
				"StringEquals":              {"ec2:CreateAction": "AuthorizeSecurityGroupIngress"},
				"ForAllValues:StringEquals": {"aws:TagKeys": slices.Clone(ruleTagKeys)},
			},
		},
		{
			// Moving a shared rule's expiry re-tags it; only rules that
			// already carry latch:expires-at, and only latch's keys.
			Sid:      "RetagOnlyLatchRulesWithLatchKeys",
			Effect:   "Allow",
			Action:   []string{"ec2:CreateTags"},
			Resource: []string{o.arn("ec2", "security-group-rule/*")},
			Condition: map[string]map[string]any{
				"Null":                      {"aws:ResourceTag/" + latch.TagExpiresAt: "false"},
				"ForAllValues:StringEquals": {"aws:TagKeys": slices.Clone(ruleTagKeys)},
			},
		},
		{
			// EC2's Describe actions support no resource-level permissions.
			Sid:      "ReadInventory",
			Effect:   "Allow",
			Action:   []string{"ec2:DescribeInstances", "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups"},
			Resource: []string{"*"},
		},
		{
			// GetSchedule is left out: latch's code does not call it (a test
			// keeps this list equal to the calls).
			Sid:      "KeepBackstopSchedulesInTheLatchGroup",
			Effect:   "Allow",
			Action:   []string{"scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:UpdateSchedule"},
			Resource: []string{o.arn("scheduler", "schedule/"+o.ScheduleGroup+"/*")},
		},
		{
			// `latch doctor` reads the group to check the backstop is set up,
			// typically with this role's credentials.
			Sid:      "CheckTheScheduleGroup",
			Effect:   "Allow",
			Action:   []string{"scheduler:GetScheduleGroup"},
			Resource: []string{o.arn("scheduler", "schedule-group/"+o.ScheduleGroup)},
		},
		{
			// CreateSchedule and UpdateSchedule depend on iam:PassRole for
			// the target's role (Service Authorization Reference); the
			// service name is the one in AmazonEventBridgeSchedulerFullAccess.
			// Unverified: whether other partitions use another name.
			Sid:       "PassOnlyTheSchedulerRole",
			Effect:    "Allow",
			Action:    []string{"iam:PassRole"},
			Resource:  []string{o.SchedulerRoleARN},
			Condition: map[string]map[string]any{"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
		},
	}}
	if !o.NoSSM {
		doc.Statement = append(doc.Statement, sessionManagerStatements(o)...)
	}
	return doc
}

// sessionManagerStatements are the server's part of Session Manager
// access. The server never starts a session with its own credentials: it
// assumes the session role as the requester (RoleSessionName and
// SourceIdentity), so CloudTrail and the session's ID name the person,
// and ssm:StartSession is the session role's alone.
func sessionManagerStatements(o Options) []Statement {
	return []Statement{
		{
			// SetSourceIdentity is authorized on the role being assumed
			// when AssumeRole carries SourceIdentity (IAM user guide,
			// "Monitor and control actions taken with assumed roles");
			// the session role's trust policy allows it too.
			Sid:      "AssumeTheSessionRoleAsTheRequester",
			Effect:   "Allow",
			Action:   []string{"sts:AssumeRole", "sts:SetSourceIdentity"},
			Resource: []string{o.SessionRoleARN},
		},
		{
			// A session is arn:…:ssm:REGION:ACCOUNT:session/ID, and its ID
			// starts with the role session's name, which is the requester
			// and not known in advance: every session of the account.
			// Unverified: whether IAM offers a narrower condition.
			Sid:      "EndSessionsAtExpiry",
			Effect:   "Allow",
			Action:   []string{"ssm:TerminateSession"},
			Resource: []string{o.arn("ssm", "session/*")},
		},
		{
			// Neither action supports resource-level permissions (Service
			// Authorization Reference).
			Sid:      "ReadSessionsAndAgents",
			Effect:   "Allow",
			Action:   []string{"ssm:DescribeInstanceInformation", "ssm:DescribeSessions"},
			Resource: []string{"*"},
		},
	}
}

// SessionDocuments are the Session Manager documents' ARNs the session
// role may start sessions with. AWS-StartSSHSession and
// AWS-StartPortForwardingSession are AWS-owned (no account in their ARN);
// SSM-SessionManagerRunShell is the account's own, which Session Manager
// creates in each region for its preferences.
func SessionDocuments(opts Options) []string {
	o := opts.withDefaults()
	var out []string
	for _, d := range latch.SSMDocuments {
		name := d.AWSName()
		account := o.Account
		if strings.HasPrefix(name, "AWS-") {
			account = ""
		}
		out = append(out, fmt.Sprintf("arn:%s:ssm:%s:%s:document/%s", o.Partition, o.Region, account, name))
	}
	return out
}

// SessionRole is the policy of the session role, which the server assumes
// as the requester and which does one thing: start Session Manager
// sessions, only on instances tagged latch:managed=true and only with the
// three documents latch starts (shell, port-forward, ssh). Requesters hold
// no ssm:StartSession of their own.
func SessionRole(opts Options) Document {
	o := opts.withDefaults()
	return Document{Version: Version, Statement: []Statement{
		{
			// Session Manager's user guide restricts StartSession by an
			// instance's tags with ssm:resourceTag/KEY ("Restrict access
			// based on tags"). Its own statement: documents carry no tags,
			// so the condition would refuse them.
			Sid:       "StartSessionsOnlyOnManagedInstances",
			Effect:    "Allow",
			Action:    []string{"ssm:StartSession"},
			Resource:  []string{o.arn("ec2", "instance/*")},
			Condition: map[string]map[string]any{"StringEquals": {"ssm:resourceTag/" + latch.TagManaged: "true"}},
		},
		{
			Sid:      "StartSessionsOnlyWithLatchDocuments",
			Effect:   "Allow",
			Action:   []string{"ssm:StartSession"},
			Resource: SessionDocuments(o),
		},
	}}
}

// SessionRoleTrust is the session role's trust policy: only serverRoleARN
// may assume it, and only with a source identity set (the requester), so
// that every session it starts names a person in CloudTrail.
func SessionRoleTrust(serverRoleARN string) Document {
	return Document{Version: Version, Statement: []Statement{{
		Sid:       "OnlyTheServerAsARequester",
		Effect:    "Allow",
		Principal: map[string][]string{"AWS": {serverRoleARN}},
		Action:    []string{"sts:AssumeRole", "sts:SetSourceIdentity"},
		// sts:SourceIdentity is present only when AssumeRole sets one
		// (IAM user guide, "Monitor and control actions taken with
		// assumed roles").
		Condition: map[string]map[string]any{"Null": {"sts:SourceIdentity": "false"}},
	}}}
}

// Lambda is the policy of the Lambda function's execution role: everything
// the server may do (the function is the same program), and writing its
// own log streams in its own log group.
func Lambda(opts Options) Document {
	o := opts.withDefaults()
	doc := Server(o)
	group := strings.TrimSuffix(o.LogGroupARN, ":*")
	doc.Statement = append(doc.Statement, Statement{
		// CreateLogStream acts on log-group ARNs and PutLogEvents on
		// log-stream ARNs (…:log-group:NAME:log-stream:STREAM); NAME:*
		// covers both, as in Lambda's own least-privilege example.
		Sid:      "WriteOwnLogsOnly",
		Effect:   "Allow",
		Action:   []string{"logs:CreateLogStream", "logs:PutLogEvents"},
		Resource: []string{group + ":*"},
	})
	return doc
}

// Scheduler is the policy of the role EventBridge Scheduler assumes to run
// a backstop schedule, whose universal target calls EC2's
// RevokeSecurityGroupIngress (a rule's schedule) or Systems Manager's
// TerminateSession (a session's): revoke in managed groups, end sessions,
// and nothing else, and report a revocation it gave up on to the
// dead-letter queue, if any.
func Scheduler(opts Options) Document {
	o := opts.withDefaults()
	doc := Document{Version: Version, Statement: []Statement{{
		Sid:       "RevokeOnlyInManagedGroups",
		Effect:    "Allow",
		Action:    []string{"ec2:RevokeSecurityGroupIngress"},
		Resource:  []string{o.arn("ec2", "security-group/*")},
		Condition: managedGroups(),
	}, {
		// As the server's EndSessionsAtExpiry: a session's ID starts with
		// its requester's name, not known in advance.
		Sid:      "EndSessionsAtExpiry",
		Effect:   "Allow",
		Action:   []string{"ssm:TerminateSession"},
		Resource: []string{o.arn("ssm", "session/*")},
	}}}
	if o.DeadLetterQueueARN != "" {
		doc.Statement = append(doc.Statement, Statement{
			Sid:      "ReportRevocationsThatNeverRan",
			Effect:   "Allow",
			Action:   []string{"sqs:SendMessage"},
			Resource: []string{o.DeadLetterQueueARN},
		})
	}
	return doc
}

// Sweeper is the policy of the role the sweep schedule uses: invoke the
// latch function, nothing else.
func Sweeper(opts Options) Document {
	o := opts.withDefaults()
	return Document{Version: Version, Statement: []Statement{{
		Sid:      "InvokeTheLatchFunction",
		Effect:   "Allow",
		Action:   []string{"lambda:InvokeFunction"},
		Resource: []string{o.FunctionARN},
	}}}
}

// Actions returns every action doc's statements name, sorted, each once.
func Actions(doc Document) []string {
	var out []string
	for _, s := range doc.Statement {
		out = append(out, s.Action...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var actionPattern = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9*]+$`)

// conditionOperators are the operators latch writes, with the set-operator
// and IfExists forms IAM allows on them.
var conditionOperators = []string{
	"StringEquals", "StringNotEquals", "StringLike", "StringNotLike",
	"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Bool", "Null",
}

// Validate checks what IAM would refuse or what latch never means to write:
// another version, an effect other than Allow or Deny, a statement without
// actions or resources, an action not of the form service:Action, an
// unknown condition operator, or an empty condition.
func (d Document) Validate() error {
	if d.Version != Version {
		return fmt.Errorf("policy version %q: want %q", d.Version, Version)
	}
	if len(d.Statement) == 0 {
		return fmt.Errorf("no statements")
	}
	sids := map[string]bool{}
	for i, s := range d.Statement {
		at := fmt.Sprintf("statement %d (%s)", i, s.Sid)
		if s.Sid != "" {
			if sids[s.Sid] {
				return fmt.Errorf("%s: Sid used twice", at)
			}
			sids[s.Sid] = true
		}
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return fmt.Errorf("%s: Effect %q: want Allow or Deny", at, s.Effect)
		}
		switch {
		case len(s.Action) == 0:
			return fmt.Errorf("%s: needs at least one Action and one Resource", at)
		case len(s.Principal) > 0 && len(s.Resource) > 0:
			return fmt.Errorf("%s: a trust policy's statement (with a Principal) names no Resource", at)
		case len(s.Principal) == 0 && len(s.Resource) == 0:
			return fmt.Errorf("%s: needs at least one Action and one Resource", at)
		}
		for kind, ps := range s.Principal {
			if len(ps) == 0 {
				return fmt.Errorf("%s: principal %s names nobody", at, kind)
			}
		}
		for _, a := range s.Action {
			if !actionPattern.MatchString(a) {
				return fmt.Errorf("%s: action %q is not service:Action", at, a)
			}
		}
		for _, r := range s.Resource {
			if r != "*" && !strings.HasPrefix(r, "arn:") {
				return fmt.Errorf("%s: resource %q is not an ARN or *", at, r)
			}
		}
		for op, keys := range s.Condition {
			base := strings.TrimSuffix(op, "IfExists")
			if set, rest, ok := strings.Cut(base, ":"); ok {
				if set != "ForAllValues" && set != "ForAnyValue" {
					return fmt.Errorf("%s: condition operator %q", at, op)
				}
				base = rest
			}
			if !slices.Contains(conditionOperators, base) {
				return fmt.Errorf("%s: condition operator %q", at, op)
			}
			if len(keys) == 0 {
				return fmt.Errorf("%s: condition %s names no key", at, op)
			}
		}
	}
	return nil
}
