package iampolicy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/iampolicy"
)

var update = flag.Bool("update", false, "rewrite the policy files under deploy/ that are generated from this package")

// all are the documents, built with every option set so that optional
// statements are there too.
func all(o iampolicy.Options) map[string]iampolicy.Document {
	return map[string]iampolicy.Document{
		"server":    iampolicy.Server(o),
		"lambda":    iampolicy.Lambda(o),
		"scheduler": iampolicy.Scheduler(o),
		"sweeper":   iampolicy.Sweeper(o),
		"session":   iampolicy.SessionRole(o),
		"trust":     iampolicy.SessionRoleTrust("arn:aws:iam::123456789012:role/latch-server"),
	}
}

var full = iampolicy.Options{
	Partition: "aws", Account: "123456789012", Region: "eu-west-1", ScheduleGroup: "latch-prod",
	SchedulerRoleARN:   "arn:aws:iam::123456789012:role/latch-scheduler",
	LogGroupARN:        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/latch",
	FunctionARN:        "arn:aws:lambda:eu-west-1:123456789012:function:latch",
	DeadLetterQueueARN: "arn:aws:sqs:eu-west-1:123456789012:latch-dead-letters",
	SessionRoleARN:     "arn:aws:iam::123456789012:role/latch-session-prod",
}

func TestDocumentsAreValid(t *testing.T) {
	for _, o := range []iampolicy.Options{{}, full} {
		for name, doc := range all(o) {
			if err := doc.Validate(); err != nil {
				t.Errorf("%s %+v: %v", name, o, err)
			}
		}
	}
}

// TestJSONIsWhatIAMReads checks the wire shape: Version then Statement,
// Action and Resource as lists, Sid and Condition left out when empty, and
// that reading accepts IAM's single-string form.
func TestJSONIsWhatIAMReads(t *testing.T) {
	b, err := json.Marshal(iampolicy.Sweeper(full))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"2012-10-17","Statement":[{"Sid":"InvokeTheLatchFunction","Effect":"Allow",` +
		`"Action":["lambda:InvokeFunction"],"Resource":["arn:aws:lambda:eu-west-1:123456789012:function:latch"]}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(iampolicy.Document{Version: iampolicy.Version, Statement: []iampolicy.Statement{{Effect: "Allow", Action: []string{"ec2:X"}, Resource: []string{"*"}}}})
	if strings.Contains(string(b), "Sid") || strings.Contains(string(b), "Condition") {
		t.Errorf("empty Sid and Condition written: %s", b)
	}

	var doc iampolicy.Document
	in := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",` +
		`"Condition":{"StringEquals":{"ec2:CreateAction":"AuthorizeSecurityGroupIngress"}}}]}`
	if err := json.Unmarshal([]byte(in), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Statement[0]
	if !slices.Equal(s.Action, []string{"ec2:CreateTags"}) || !slices.Equal(s.Resource, []string{"*"}) ||
		s.Condition["StringEquals"]["ec2:CreateAction"] != "AuthorizeSecurityGroupIngress" {
		t.Errorf("read %+v", s)
	}
	if err := json.Unmarshal([]byte(`{"Statement":[{"Action":3}]}`), &doc); err == nil {
		t.Error("an Action that is a number was read")
	}
}

func TestValidateRefuses(t *testing.T) {
	ok := func() iampolicy.Document { return iampolicy.Server(iampolicy.Options{}) }
	cases := map[string]func(d *iampolicy.Document){
		"old version":    func(d *iampolicy.Document) { d.Version = "2008-10-17" },
		"no statements":  func(d *iampolicy.Document) { d.Statement = nil },
		"bad effect":     func(d *iampolicy.Document) { d.Statement[0].Effect = "allow" },
		"no action":      func(d *iampolicy.Document) { d.Statement[0].Action = nil },
		"no resource":    func(d *iampolicy.Document) { d.Statement[0].Resource = nil },
		"action shape":   func(d *iampolicy.Document) { d.Statement[0].Action = []string{"AuthorizeSecurityGroupIngress"} },
		"resource shape": func(d *iampolicy.Document) { d.Statement[0].Resource = []string{"sg-0123"} },
		"duplicate sid":  func(d *iampolicy.Document) { d.Statement[1].Sid = d.Statement[0].Sid },
		"unknown operator": func(d *iampolicy.Document) {
			d.Statement[0].Condition = map[string]map[string]any{"StringIs": {"k": "v"}}
		},
		"bad set operator": func(d *iampolicy.Document) {
			d.Statement[0].Condition = map[string]map[string]any{"ForSomeValues:StringEquals": {"k": "v"}}
		},
		"empty condition": func(d *iampolicy.Document) { d.Statement[0].Condition = map[string]map[string]any{"Null": {}} },
	}
	for name, spoil := range cases {
		d := ok()
		spoil(&d)
		if err := d.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d := ok()
	d.Statement[0].Condition = map[string]map[string]any{"ForAnyValue:StringLikeIfExists": {"k": "v"}}
	if err := d.Validate(); err != nil {
		t.Errorf("set operator with IfExists refused: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := full.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (iampolicy.Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]iampolicy.Options{
		"account":            {Account: "12345"},
		"region":             {Region: "moon-1"},
		"partition":          {Partition: "azure"},
		"schedule-group":     {ScheduleGroup: "latch/prod"},
		"scheduler-role-arn": {SchedulerRoleARN: "arn:aws:iam::123456789012:user/alice"},
		"log-group-arn":      {LogGroupARN: "/aws/lambda/latch"},
		"function-arn":       {FunctionARN: "latch"},
		"dead-letter-arn":    {DeadLetterQueueARN: "https://sqs.eu-west-1.amazonaws.com/123456789012/q"},
		"session-role-arn":   {SessionRoleARN: "arn:aws:iam::123456789012:user/alice"},
	}
	for field, o := range bad {
		err := o.Validate()
		if latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", field, err)
			continue
		}
		if e, _ := err.(*latch.Error); e.Field != field {
			t.Errorf("%s: error names field %q", field, e.Field)
		}
	}
}

// TestLeastPrivilege pins the properties the policies exist for, so that a
// change that weakens one fails here by name.
func TestLeastPrivilege(t *testing.T) {
	server := iampolicy.Server(full)
	for _, s := range server.Statement {
		for _, a := range s.Action {
			switch {
			case a == "ec2:AuthorizeSecurityGroupIngress" && slices.Contains(s.Resource, "arn:aws:ec2:eu-west-1:123456789012:security-group/*"),
				a == "ec2:RevokeSecurityGroupIngress", a == "ec2:ModifySecurityGroupRules":
				if s.Condition["StringEquals"]["aws:ResourceTag/"+latch.TagManaged] != "true" {
					t.Errorf("%s: %s not confined to groups tagged %s=true", s.Sid, a, latch.TagManaged)
				}
			case a == "ec2:AuthorizeSecurityGroupIngress":
				if !slices.Equal(s.Resource, []string{"arn:aws:ec2:eu-west-1:123456789012:security-group-rule/*"}) ||
					s.Condition["Null"]["aws:RequestTag/"+latch.TagExpiresAt] != "false" {
					t.Errorf("%s: new rules not required to carry %s", s.Sid, latch.TagExpiresAt)
				}
			case a == "ec2:CreateTags":
				if !slices.Equal(s.Resource, []string{"arn:aws:ec2:eu-west-1:123456789012:security-group-rule/*"}) {
					t.Errorf("%s: CreateTags on %v, want only security-group-rule", s.Sid, s.Resource)
				}
				keys, _ := s.Condition["ForAllValues:StringEquals"]["aws:TagKeys"].([]string)
				if !slices.Equal(keys, []string{latch.TagGrantID, latch.TagExpiresAt, latch.TagRequester}) {
					t.Errorf("%s: CreateTags not limited to latch's rule tag keys: %v", s.Sid, keys)
				}
				onCreate := s.Condition["StringEquals"]["ec2:CreateAction"] == "AuthorizeSecurityGroupIngress"
				ownRules := s.Condition["Null"]["aws:ResourceTag/"+latch.TagExpiresAt] == "false"
				if onCreate == ownRules {
					t.Errorf("%s: CreateTags must be either on create or on rules carrying %s", s.Sid, latch.TagExpiresAt)
				}
			case strings.HasPrefix(a, "ec2:Describe"):
			case a == "ec2-instance-connect:SendSSHPublicKey", a == "ec2:GetConsoleOutput":
				if !slices.Equal(s.Resource, []string{"arn:aws:ec2:eu-west-1:123456789012:instance/*"}) {
					t.Errorf("%s: %s on %v, want only instances", s.Sid, a, s.Resource)
				}
				// A pushed key is a login as any OS user, and the console
				// can carry secrets: only on instances opted in to latch's SSH.
				if len(s.Condition) != 1 || len(s.Condition["StringEquals"]) != 1 ||
					s.Condition["StringEquals"]["aws:ResourceTag/"+latch.TagSSH] != "true" {
					t.Errorf("%s: %s not confined to instances tagged %s=true: %v", s.Sid, a, latch.TagSSH, s.Condition)
				}
			case a == "scheduler:GetScheduleGroup":
				if !slices.Equal(s.Resource, []string{"arn:aws:scheduler:eu-west-1:123456789012:schedule-group/latch-prod"}) {
					t.Errorf("%s: %s on %v, want only the schedule group", s.Sid, a, s.Resource)
				}
			case strings.HasPrefix(a, "scheduler:"):
				if !slices.Equal(s.Resource, []string{"arn:aws:scheduler:eu-west-1:123456789012:schedule/latch-prod/*"}) {
					t.Errorf("%s: %s on %v, want only the schedule group", s.Sid, a, s.Resource)
				}
			case a == "iam:PassRole":
				if !slices.Equal(s.Resource, []string{full.SchedulerRoleARN}) ||
					s.Condition["StringEquals"]["iam:PassedToService"] != "scheduler.amazonaws.com" {
					t.Errorf("%s: PassRole not limited to the scheduler role, passed to Scheduler", s.Sid)
				}
			case a == "sts:AssumeRole", a == "sts:SetSourceIdentity":
				if !slices.Equal(s.Resource, []string{full.SessionRoleARN}) {
					t.Errorf("%s: %s on %v, want only the session role", s.Sid, a, s.Resource)
				}
			case a == "ssm:TerminateSession":
				if !slices.Equal(s.Resource, []string{"arn:aws:ssm:eu-west-1:123456789012:session/*"}) {
					t.Errorf("%s: %s on %v, want only sessions", s.Sid, a, s.Resource)
				}
			case a == "ssm:DescribeSessions", a == "ssm:DescribeInstanceInformation":
			default:
				t.Errorf("%s: unexpected action %s", s.Sid, a)
			}
			if s.Resource[0] == "*" && !strings.HasPrefix(a, "ec2:Describe") && !strings.HasPrefix(a, "ssm:Describe") {
				t.Errorf("%s: %s on every resource", s.Sid, a)
			}
		}
	}

	lambda := iampolicy.Lambda(full)
	extra := lambda.Statement[len(server.Statement):]
	if !slices.EqualFunc(server.Statement, lambda.Statement[:len(server.Statement)], statementsEqual) || len(extra) != 1 ||
		!slices.Equal(extra[0].Resource, []string{full.LogGroupARN + ":*"}) {
		t.Errorf("lambda is not the server's statements plus its own log group: %+v", extra)
	}
	if got := iampolicy.Lambda(iampolicy.Options{LogGroupARN: full.LogGroupARN + ":*"}); !slices.Equal(got.Statement[len(got.Statement)-1].Resource, []string{full.LogGroupARN + ":*"}) {
		t.Errorf("a log group ARN ending in :* got another :*")
	}

	sched := iampolicy.Scheduler(full)
	if got := iampolicy.Actions(sched); !slices.Equal(got, []string{"ec2:RevokeSecurityGroupIngress", "sqs:SendMessage", "ssm:TerminateSession"}) {
		t.Errorf("scheduler actions %v", got)
	}
	if sched.Statement[0].Condition["StringEquals"]["aws:ResourceTag/"+latch.TagManaged] != "true" {
		t.Error("the scheduler role may revoke outside managed groups")
	}
	if got := sched.Statement[1].Resource; !slices.Equal(got, []string{"arn:aws:ssm:" + full.Region + ":" + full.Account + ":session/*"}) {
		t.Errorf("the scheduler role may terminate %v; want the account's sessions in its region", got)
	}
	if got := iampolicy.Actions(iampolicy.Scheduler(iampolicy.Options{})); !slices.Equal(got, []string{"ec2:RevokeSecurityGroupIngress", "ssm:TerminateSession"}) {
		t.Errorf("scheduler without a dead-letter queue: %v", got)
	}
}

func statementsEqual(a, b iampolicy.Statement) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestActions(t *testing.T) {
	got := iampolicy.Actions(iampolicy.Server(iampolicy.Options{}))
	want := []string{
		"ec2-instance-connect:SendSSHPublicKey",
		"ec2:AuthorizeSecurityGroupIngress", "ec2:CreateTags", "ec2:DescribeInstances", "ec2:DescribeSecurityGroupRules",
		"ec2:DescribeSecurityGroups", "ec2:GetConsoleOutput", "ec2:ModifySecurityGroupRules", "ec2:RevokeSecurityGroupIngress", "iam:PassRole",
		"scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:GetScheduleGroup", "scheduler:UpdateSchedule",
		"ssm:DescribeInstanceInformation", "ssm:DescribeSessions", "ssm:TerminateSession", "sts:AssumeRole", "sts:SetSourceIdentity",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	got = iampolicy.Actions(iampolicy.Server(iampolicy.Options{NoSSM: true}))
	if want := want[:len(want)-5]; !slices.Equal(got, want) {
		t.Errorf("NoSSM: got %v\nwant %v", got, want)
	}
	if got := iampolicy.Actions(iampolicy.SessionRole(iampolicy.Options{})); !slices.Equal(got, []string{"ssm:StartSession"}) {
		t.Errorf("session role: %v", got)
	}
}

func TestDefaults(t *testing.T) {
	b, _ := json.Marshal(iampolicy.Lambda(iampolicy.Options{}))
	for _, want := range []string{
		`arn:aws:ec2:*:*:security-group/*`, `arn:aws:scheduler:*:*:schedule/latch/*`,
		`arn:aws:iam::*:role/latch-scheduler`, `arn:aws:logs:*:*:log-group:/aws/lambda/latch:*`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("default policy lacks %s", want)
		}
	}
	b, _ = json.Marshal(iampolicy.Server(iampolicy.Options{Partition: "aws-cn", Account: "123456789012", Region: "cn-north-1"}))
	if !strings.Contains(string(b), `arn:aws-cn:ec2:cn-north-1:123456789012:security-group/*`) ||
		!strings.Contains(string(b), `arn:aws-cn:iam::123456789012:role/latch-scheduler`) {
		t.Errorf("partition, account and region not used: %s", b)
	}
}

func indent(t *testing.T, doc iampolicy.Document) []byte {
	t.Helper()
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// checkGenerated compares a file under deploy/ with what this package
// writes, or rewrites it with -update.
func checkGenerated(t *testing.T, path string, want []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./iampolicy -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with package iampolicy; regenerate it: go test ./iampolicy -update\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestServerPolicyFile keeps deploy/server-iam-policy.json, the policy for
// any account and region, equal to `latch iam-policy --for server`.
func TestServerPolicyFile(t *testing.T) {
	checkGenerated(t, filepath.Join("..", "deploy", "server-iam-policy.json"), indent(t, iampolicy.Server(iampolicy.Options{})))
}

// terraformVars are the templatefile() variables of deploy/terraform's
// policy templates; main.tf passes each.
var terraformVars = iampolicy.Options{
	Partition: "${partition}", Account: "${account_id}", Region: "${region}", ScheduleGroup: "${schedule_group}",
	SchedulerRoleARN: "${scheduler_role_arn}", LogGroupARN: "${log_group_arn}", FunctionARN: "${function_arn}",
	DeadLetterQueueARN: "${dead_letter_arn}", SessionRoleARN: "${session_role_arn}",
}

// TestTerraformPolicies keeps the Terraform module's policy templates equal
// to this package's documents, and checks main.tf renders each one with
// every variable it uses.
func TestTerraformPolicies(t *testing.T) {
	dir := filepath.Join("..", "deploy", "terraform")
	mainTF, err := os.ReadFile(filepath.Join(dir, "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]iampolicy.Document{
		"lambda":    iampolicy.Lambda(terraformVars),
		"scheduler": iampolicy.Scheduler(terraformVars),
		"sweeper":   iampolicy.Sweeper(terraformVars),
		"session":   iampolicy.SessionRole(terraformVars),
		// The trust policy of the session role: the function's role only.
		"session-trust": iampolicy.SessionRoleTrust("${server_role_arn}"),
	} {
		file := "policies/" + name + ".json.tftpl"
		text := indent(t, doc)
		checkGenerated(t, filepath.Join(dir, file), text)

		call := `templatefile("${path.module}/` + file + `", {`
		i := strings.Index(string(mainTF), call)
		if i < 0 {
			t.Errorf("main.tf does not render %s", file)
			continue
		}
		args, _, _ := strings.Cut(string(mainTF[i+len(call):]), "})")
		var given []string
		for _, m := range assignment.FindAllStringSubmatch(args, -1) {
			given = append(given, m[1])
		}
		for _, v := range templateVars(string(text)) {
			if !slices.Contains(given, v) {
				t.Errorf("main.tf renders %s without %s (it passes %v)", file, v, given)
			}
		}
	}
}

var assignment = regexp.MustCompile(`(?m)^\s*([a-z_]+)\s*=`)

func templateVars(s string) []string {
	var vars []string
	for {
		_, rest, ok := strings.Cut(s, "${")
		if !ok {
			break
		}
		name, after, _ := strings.Cut(rest, "}")
		if !slices.Contains(vars, name) {
			vars = append(vars, name)
		}
		s = after
	}
	return vars
}

// TestSessionRole pins what the session role exists for: it starts
// sessions, only on instances tagged latch:managed=true and only with
// latch's three documents, and does nothing else.
func TestSessionRole(t *testing.T) {
	doc := iampolicy.SessionRole(full)
	var instances, documents []string
	for _, s := range doc.Statement {
		if !slices.Equal(s.Action, []string{"ssm:StartSession"}) || s.Effect != "Allow" {
			t.Errorf("%s: %s %v; the session role only starts sessions", s.Sid, s.Effect, s.Action)
		}
		for _, r := range s.Resource {
			switch {
			case strings.HasPrefix(r, "arn:aws:ec2:"):
				if len(s.Condition) != 1 || len(s.Condition["StringEquals"]) != 1 ||
					s.Condition["StringEquals"]["ssm:resourceTag/"+latch.TagManaged] != "true" {
					t.Errorf("%s: sessions on %s not confined to instances tagged %s=true: %v", s.Sid, r, latch.TagManaged, s.Condition)
				}
				instances = append(instances, r)
			case strings.Contains(r, ":document/"):
				documents = append(documents, r)
			default:
				t.Errorf("%s: StartSession on %s", s.Sid, r)
			}
		}
	}
	if !slices.Equal(instances, []string{"arn:aws:ec2:eu-west-1:123456789012:instance/*"}) {
		t.Errorf("instances %v", instances)
	}
	// AWS's own documents have no account in their ARN; the shell's
	// document is the account's.
	want := []string{
		"arn:aws:ssm:eu-west-1:123456789012:document/SSM-SessionManagerRunShell",
		"arn:aws:ssm:eu-west-1::document/AWS-StartPortForwardingSession",
		"arn:aws:ssm:eu-west-1::document/AWS-StartSSHSession",
	}
	if !slices.Equal(documents, want) {
		t.Errorf("documents %v\nwant %v", documents, want)
	}
	for _, s := range doc.Statement {
		if slices.Contains(s.Resource, want[0]) && len(s.Condition) > 0 {
			t.Errorf("%s: documents carry no tags, so a tag condition on them refuses every session", s.Sid)
		}
	}
}

// TestServerStartsNoSessions: the server holds no ssm:StartSession in any
// form; it may only assume the session role, with a source identity.
func TestServerStartsNoSessions(t *testing.T) {
	for _, o := range []iampolicy.Options{{}, full, {NoSSM: true}} {
		for name, doc := range map[string]iampolicy.Document{"server": iampolicy.Server(o), "lambda": iampolicy.Lambda(o)} {
			for _, a := range iampolicy.Actions(doc) {
				if a == "ssm:StartSession" || strings.HasSuffix(a, "*") || a == "ssm:ResumeSession" {
					t.Errorf("%s %+v allows %s", name, o, a)
				}
			}
		}
	}
	if b, _ := json.Marshal(iampolicy.Server(iampolicy.Options{NoSSM: true})); strings.Contains(string(b), "ssm:") || strings.Contains(string(b), "sts:") {
		t.Errorf("NoSSM server policy: %s", b)
	}
	if b, _ := json.Marshal(iampolicy.Server(iampolicy.Options{})); !strings.Contains(string(b), `"arn:aws:iam::*:role/latch-session"`) {
		t.Errorf("the default session role is not role/latch-session: %s", b)
	}
}

// TestSessionRoleTrust: only the server's role may assume the session
// role, and only with a source identity set.
func TestSessionRoleTrust(t *testing.T) {
	server := "arn:aws:iam::123456789012:role/latch-server"
	doc := iampolicy.SessionRoleTrust(server)
	if len(doc.Statement) != 1 {
		t.Fatalf("%d statements", len(doc.Statement))
	}
	s := doc.Statement[0]
	if s.Effect != "Allow" || len(s.Principal) != 1 || !slices.Equal(s.Principal["AWS"], []string{server}) {
		t.Errorf("principal %v: want only the server's role", s.Principal)
	}
	if !slices.Equal(s.Action, []string{"sts:AssumeRole", "sts:SetSourceIdentity"}) || len(s.Resource) != 0 {
		t.Errorf("action %v resource %v", s.Action, s.Resource)
	}
	if len(s.Condition) != 1 || len(s.Condition["Null"]) != 1 || s.Condition["Null"]["sts:SourceIdentity"] != "false" {
		t.Errorf("condition %v: want a source identity required", s.Condition)
	}
	b, _ := json.Marshal(doc)
	want := `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyTheServerAsARequester","Effect":"Allow",` +
		`"Principal":{"AWS":["arn:aws:iam::123456789012:role/latch-server"]},"Action":["sts:AssumeRole","sts:SetSourceIdentity"],` +
		`"Condition":{"Null":{"sts:SourceIdentity":"false"}}}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back iampolicy.Document
	if err := json.Unmarshal([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+server+`"},"Action":"sts:AssumeRole"}]}`), &back); err != nil ||
		!slices.Equal(back.Statement[0].Principal["AWS"], []string{server}) {
		t.Errorf("a single-string principal read as %+v (%v)", back, err)
	}
	bad := iampolicy.SessionRoleTrust(server)
	bad.Statement[0].Resource = []string{"*"}
	if bad.Validate() == nil {
		t.Error("a trust statement with a Resource validated")
	}
}
