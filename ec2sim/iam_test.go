package ec2sim_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/latchdev/latch/ec2sim"
)

const (
	ssmCore   = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
	ec2Full   = "arn:aws:iam::aws:policy/AmazonEC2FullAccess"
	ec2Read   = "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess"
	adminPol  = "arn:aws:iam::aws:policy/AdministratorAccess"
	ec2Assume = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
)

func newIAM(t *testing.T) (*ec2sim.Server, *iam.Client) {
	t.Helper()
	sim := ec2sim.New(ec2sim.Options{})
	// IAM's endpoint is global; the SDK signs for us-east-1 and service iam.
	return sim, iam.NewFromConfig(simConfig(t, mustStart(t, sim), "eu-west-1"))
}

func wantIAMCode(t *testing.T, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("error %v; want %s", err, code)
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != status {
		t.Errorf("%s came with HTTP %d; want %d", code, re.HTTPStatusCode(), status)
	}
}

// mustRole creates a role with managed policies attached and inline
// policies put, through the API.
func mustRole(t *testing.T, c *iam.Client, name string, managed []string, inline map[string]string) *types.Role {
	t.Helper()
	ctx := t.Context()
	out, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(ec2Assume)})
	if err != nil {
		t.Fatalf("CreateRole %s: %v", name, err)
	}
	for _, arn := range managed {
		if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			t.Fatalf("AttachRolePolicy %s %s: %v", name, arn, err)
		}
	}
	for pn, doc := range inline {
		if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatalf("PutRolePolicy %s %s: %v", name, pn, err)
		}
	}
	return out.Role
}

func TestIAMRolesAndProfiles(t *testing.T) {
	sim, c := newIAM(t)
	ctx := t.Context()
	role := mustRole(t, c, "web", []string{ssmCore}, map[string]string{
		"open-ssh": `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:AuthorizeSecurityGroupIngress","Resource":"*"}}`,
	})
	if aws.ToString(role.Arn) != "arn:aws:iam::123456789012:role/web" || !strings.HasPrefix(aws.ToString(role.RoleId), "AROA") || len(aws.ToString(role.RoleId)) != 21 {
		t.Errorf("CreateRole: ARN %s, ID %s", aws.ToString(role.Arn), aws.ToString(role.RoleId))
	}
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("WEB"), AssumeRolePolicyDocument: aws.String(ec2Assume)}); true {
		wantIAMCode(t, err, "EntityAlreadyExists", 409) // names are unique without regard to case
	}
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(aws.ToString(got.Role.AssumeRolePolicyDocument)); doc != ec2Assume {
		t.Errorf("GetRole's trust policy decodes to %q; want %q", doc, ec2Assume)
	}
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("nobody")})
	wantIAMCode(t, err, "NoSuchEntity", 404)
	var nse *types.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("GetRole of a missing role: %T; want the SDK's NoSuchEntityException", err)
	}
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("bad name")})
	wantIAMCode(t, err, "ValidationError", 400)

	// Instance profiles, paged, with their role.
	for _, n := range []string{"p1", "p2", "p3"} {
		if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("p1")})
	wantIAMCode(t, err, "EntityAlreadyExists", 409)
	if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("scoped"), Path: aws.String("/team/")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("p2"), RoleName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("p2"), RoleName: aws.String("web")})
	wantIAMCode(t, err, "LimitExceeded", 409)
	_, err = c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("nope"), RoleName: aws.String("web")})
	wantIAMCode(t, err, "NoSuchEntity", 404)

	var profiles []types.InstanceProfile
	pages := 0
	p := iam.NewListInstanceProfilesPaginator(c, &iam.ListInstanceProfilesInput{MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		profiles = append(profiles, page.InstanceProfiles...)
	}
	if pages != 2 || len(profiles) != 4 {
		t.Fatalf("ListInstanceProfiles in pages of 2: %d pages, %d profiles; want 2 and 4", pages, len(profiles))
	}
	byName := map[string]types.InstanceProfile{}
	for _, ip := range profiles {
		byName[aws.ToString(ip.InstanceProfileName)] = ip
	}
	if ip := byName["p2"]; len(ip.Roles) != 1 || aws.ToString(ip.Roles[0].Arn) != aws.ToString(role.Arn) {
		t.Errorf("p2's roles: %+v; want web", ip.Roles)
	}
	if ip := byName["p1"]; len(ip.Roles) != 0 || ip.Roles == nil && false {
		t.Errorf("p1's roles: %+v; want none", ip.Roles)
	}
	if arn := aws.ToString(byName["scoped"].Arn); arn != "arn:aws:iam::123456789012:instance-profile/team/scoped" {
		t.Errorf("a profile with a path: ARN %s", arn)
	}
	scoped, err := c.ListInstanceProfiles(ctx, &iam.ListInstanceProfilesInput{PathPrefix: aws.String("/team/")})
	if err != nil || len(scoped.InstanceProfiles) != 1 {
		t.Errorf("ListInstanceProfiles under /team/: %v, %v; want scoped alone", scoped, err)
	}
	gp, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("p2")})
	if err != nil || len(gp.InstanceProfile.Roles) != 1 {
		t.Fatalf("GetInstanceProfile p2: %v, %v", gp, err)
	}
	_, err = c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("nope")})
	wantIAMCode(t, err, "NoSuchEntity", 404)

	// Policies of the role.
	att, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("web")})
	if err != nil || len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyArn) != ssmCore ||
		aws.ToString(att.AttachedPolicies[0].PolicyName) != "AmazonSSMManagedInstanceCore" {
		t.Errorf("ListAttachedRolePolicies: %+v, %v", att, err)
	}
	inl, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("web")})
	if err != nil || !slices.Equal(inl.PolicyNames, []string{"open-ssh"}) {
		t.Errorf("ListRolePolicies: %+v, %v", inl, err)
	}
	rp, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("web"), PolicyName: aws.String("open-ssh")})
	if err != nil {
		t.Fatal(err)
	}
	if raw := aws.ToString(rp.PolicyDocument); !strings.HasPrefix(raw, "%7B%22Version%22") {
		t.Errorf("GetRolePolicy's document %q is not URL-encoded as IAM sends it", raw)
	}
	_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("web"), PolicyName: aws.String("nope")})
	wantIAMCode(t, err, "NoSuchEntity", 404)
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("web"), PolicyName: aws.String("bad"), PolicyDocument: aws.String(`{"Statement":`)})
	wantIAMCode(t, err, "MalformedPolicyDocument", 400)
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("web"), PolicyName: aws.String("bad"),
		PolicyDocument: aws.String(`{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}`)})
	wantIAMCode(t, err, "MalformedPolicyDocument", 400)
	for _, bad := range []string{
		`{"Statement":{"Effect":"Allow","Action":"AuthorizeSecurityGroupIngress","Resource":"*"}}`, // no service
		`{"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"sg-0123"}}`,                   // not an ARN
		`{"Statement":{"Effect":"Allow","Action":"ec2:*"}}`,                                        // no resource
		`{"Statement":{"Effect":"Permit","Action":"ec2:*","Resource":"*"}}`,
		`{"Statement":{"Effect":"Allow","Action":"ec2:*","NotAction":"iam:*","Resource":"*"}}`,
	} {
		_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("web"), PolicyName: aws.String("bad"), PolicyDocument: aws.String(bad)})
		wantIAMCode(t, err, "MalformedPolicyDocument", 400)
	}
	_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("web"), PolicyArn: aws.String("arn:aws:iam::aws:policy/NoSuchPolicy")})
	wantIAMCode(t, err, "NoSuchEntity", 404)

	// AWS managed policies are readable, with AWS's document.
	pol, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(ssmCore)})
	if err != nil || aws.ToString(pol.Policy.DefaultVersionId) != "v2" || aws.ToInt32(pol.Policy.AttachmentCount) != 1 {
		t.Fatalf("GetPolicy %s: %+v, %v", ssmCore, pol, err)
	}
	ver, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(ssmCore), VersionId: aws.String("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(aws.ToString(ver.PolicyVersion.Document)); !strings.Contains(doc, `"ssmmessages:OpenDataChannel"`) || !ver.PolicyVersion.IsDefaultVersion {
		t.Errorf("GetPolicyVersion: %q", doc)
	}
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::123456789012:policy/nope")})
	wantIAMCode(t, err, "NoSuchEntity", 404)

	// Customer managed policies.
	cp, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("sg-admin"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*SecurityGroup*","Resource":"*"}]}`)})
	if err != nil || aws.ToString(cp.Policy.Arn) != "arn:aws:iam::123456789012:policy/sg-admin" {
		t.Fatalf("CreatePolicy: %+v, %v", cp, err)
	}
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("sg-admin"), PolicyDocument: aws.String(`{"Statement":[]}`)})
	wantIAMCode(t, err, "EntityAlreadyExists", 409)

	// Deletion refuses what IAM refuses.
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("web")})
	wantIAMCode(t, err, "DeleteConflict", 409)
	_, err = c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String("p2")})
	wantIAMCode(t, err, "DeleteConflict", 409)

	// A refused read is IAM's AccessDenied, and counted.
	sim.Deny("iam:ListInstanceProfiles")
	_, err = c.ListInstanceProfiles(ctx, &iam.ListInstanceProfilesInput{})
	wantIAMCode(t, err, "AccessDenied", 403)
	sim.Allow("iam:ListInstanceProfiles")
	if _, err := c.ListInstanceProfiles(ctx, &iam.ListInstanceProfilesInput{}); err != nil {
		t.Errorf("after Allow: %v", err)
	}
	if n := sim.Calls("ListInstanceProfiles"); n != 5 {
		t.Errorf("Calls(ListInstanceProfiles) = %d; want 5", n)
	}
}

// simulate asks about actions on resources for the role and returns the
// decision and matched policies per action.
func simulate(t *testing.T, c *iam.Client, roleARN string, resources []string, actions ...string) map[string]types.EvaluationResult {
	t.Helper()
	out, err := c.SimulatePrincipalPolicy(t.Context(), &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(roleARN), ActionNames: actions, ResourceArns: resources})
	if err != nil {
		t.Fatalf("SimulatePrincipalPolicy: %v", err)
	}
	res := map[string]types.EvaluationResult{}
	for _, r := range out.EvaluationResults {
		res[aws.ToString(r.EvalActionName)] = r
	}
	return res
}

func sources(r types.EvaluationResult) []string {
	var out []string
	for _, m := range r.MatchedStatements {
		out = append(out, aws.ToString(m.SourcePolicyId)+"/"+string(m.SourcePolicyType))
	}
	return out
}

func TestIAMSimulatePrincipalPolicy(t *testing.T) {
	_, c := newIAM(t)
	const authorize = "ec2:AuthorizeSecurityGroupIngress"
	doc := func(stmts string) string { return `{"Version":"2012-10-17","Statement":[` + stmts + `]}` }
	cases := []struct {
		name      string
		managed   []string
		inline    map[string]string
		resources []string
		action    string
		want      types.PolicyEvaluationDecisionType
		wantBy    []string
	}{
		{name: "ec2 full access", managed: []string{ec2Full}, action: authorize, want: "allowed", wantBy: []string{"AmazonEC2FullAccess/IAM Policy"}},
		{name: "administrator", managed: []string{adminPol}, action: authorize, want: "allowed", wantBy: []string{"AdministratorAccess/IAM Policy"}},
		{name: "ssm core alone", managed: []string{ssmCore}, action: authorize, want: "implicitDeny"},
		{name: "ssm core allows its own", managed: []string{ssmCore}, action: "ssmmessages:OpenDataChannel", want: "allowed", wantBy: []string{"AmazonSSMManagedInstanceCore/IAM Policy"}},
		{name: "read only", managed: []string{ec2Read}, action: authorize, want: "implicitDeny"},
		{name: "read only describes", managed: []string{ec2Read}, action: "ec2:DescribeSecurityGroups", want: "allowed"},
		{name: "no policies", action: authorize, want: "implicitDeny"},
		{name: "action wildcard", inline: map[string]string{"auth": doc(`{"Effect":"Allow","Action":"ec2:Authorize*","Resource":"*"}`)},
			action: authorize, want: "allowed", wantBy: []string{"role_{role}_auth/IAM Policy"}},
		{name: "case-insensitive action", inline: map[string]string{"auth": doc(`{"Effect":"Allow","Action":"EC2:authorizesecuritygroup?ngress","Resource":"*"}`)},
			action: authorize, want: "allowed"},
		{name: "wildcard that does not match", inline: map[string]string{"auth": doc(`{"Effect":"Allow","Action":"ec2:Revoke*","Resource":"*"}`)},
			action: authorize, want: "implicitDeny"},
		{name: "not action", inline: map[string]string{"most": doc(`{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`)},
			action: authorize, want: "allowed", wantBy: []string{"role_{role}_most/IAM Policy"}},
		{name: "not action excluding it", inline: map[string]string{"most": doc(`{"Effect":"Allow","NotAction":["ec2:Authorize*"],"Resource":"*"}`)},
			action: authorize, want: "implicitDeny"},
		{name: "explicit deny beats allow", managed: []string{ec2Full},
			inline: map[string]string{"no-sg": doc(`{"Effect":"Deny","Action":"ec2:*SecurityGroup*","Resource":"*"}`)},
			action: authorize, want: "explicitDeny", wantBy: []string{"role_{role}_no-sg/IAM Policy"}},
		{name: "resource wildcard matches", inline: map[string]string{"sg": doc(`{"Effect":"Allow","Action":"ec2:*","Resource":"arn:aws:ec2:*:*:security-group/*"}`)},
			resources: []string{"arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123"}, action: authorize, want: "allowed"},
		{name: "resource wildcard misses", inline: map[string]string{"sg": doc(`{"Effect":"Allow","Action":"ec2:*","Resource":"arn:aws:ec2:*:*:instance/*"}`)},
			resources: []string{"arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123"}, action: authorize, want: "implicitDeny"},
		{name: "not resource", inline: map[string]string{"sg": doc(`{"Effect":"Allow","Action":"ec2:*","NotResource":"arn:aws:ec2:*:*:instance/*"}`)},
			resources: []string{"arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123"}, action: authorize, want: "allowed"},
		{name: "condition is not met", inline: map[string]string{"tagged": doc(`{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"web"}}}`)},
			action: authorize, want: "implicitDeny"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "role-" + string(rune('a'+i))
			role := mustRole(t, c, name, tc.managed, tc.inline)
			got := simulate(t, c, aws.ToString(role.Arn), tc.resources, tc.action)[tc.action]
			if got.EvalDecision != tc.want {
				t.Errorf("%s: %s; want %s (matched %v)", tc.action, got.EvalDecision, tc.want, sources(got))
			}
			var wantBy []string
			for _, w := range tc.wantBy {
				wantBy = append(wantBy, strings.ReplaceAll(w, "{role}", name))
			}
			if tc.wantBy != nil && !slices.Equal(sources(got), wantBy) {
				t.Errorf("matched %v; want %v", sources(got), wantBy)
			}
			wantRes := "*"
			if tc.resources != nil {
				wantRes = tc.resources[0]
			}
			if aws.ToString(got.EvalResourceName) != wantRes {
				t.Errorf("EvalResourceName %q; want %q", aws.ToString(got.EvalResourceName), wantRes)
			}
		})
	}

	// A condition's keys are reported missing, as IAM does when the
	// context does not give them.
	role := mustRole(t, c, "conditional", nil, map[string]string{"tagged": doc(`{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"web"}}}`)})
	got := simulate(t, c, aws.ToString(role.Arn), nil, authorize)[authorize]
	if !slices.Equal(got.MissingContextValues, []string{"aws:ResourceTag/team"}) {
		t.Errorf("MissingContextValues %v; want the condition's key", got.MissingContextValues)
	}

	// Many actions at once, in pages.
	role = mustRole(t, c, "many", []string{ec2Full}, nil)
	actions := []string{authorize, "ec2:ModifyInstanceAttribute", "s3:GetObject", "ssm:StartSession", "ec2:DescribeInstances"}
	var results []types.EvaluationResult
	p := iam.NewSimulatePrincipalPolicyPaginator(c, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: role.Arn, ActionNames: actions, MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, page.EvaluationResults...)
	}
	var decisions []string
	for _, r := range results {
		decisions = append(decisions, aws.ToString(r.EvalActionName)+"="+string(r.EvalDecision))
	}
	want := []string{authorize + "=allowed", "ec2:ModifyInstanceAttribute=allowed", "s3:GetObject=implicitDeny", "ssm:StartSession=implicitDeny", "ec2:DescribeInstances=allowed"}
	if !slices.Equal(decisions, want) {
		t.Errorf("paged simulation: %v; want %v", decisions, want)
	}

	// Errors.
	_, err := c.SimulatePrincipalPolicy(t.Context(), &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String("arn:aws:iam::123456789012:role/nobody"), ActionNames: []string{authorize}})
	wantIAMCode(t, err, "NoSuchEntity", 404)
	_, err = c.SimulatePrincipalPolicy(t.Context(), &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: role.Arn, ActionNames: []string{authorize},
		ContextEntries: []types.ContextEntry{{ContextKeyName: aws.String("aws:SourceIp"), ContextKeyType: "ip", ContextKeyValues: []string{"10.0.0.1"}}}})
	wantIAMCode(t, err, "InvalidInput", 400) // not evaluated, so refused rather than ignored
}

func TestIAMFleet(t *testing.T) {
	f, err := ec2sim.ParseFleet([]byte(`
iam:
  policies:
    - name: sg-admin
      document:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Action: "ec2:*SecurityGroup*", Resource: "*"}
  roles:
    - name: web
      managed_policies: [arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore, sg-admin]
      inline_policies:
        extra: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'
    - name: db
      managed_policies: [arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore]
  instance_profiles:
    - {name: web, role: web}
    - {name: db, role: db, path: /data/}
    - {name: empty}
`))
	if err != nil {
		t.Fatal(err)
	}
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	c := iam.NewFromConfig(simConfig(t, mustStart(t, sim), "us-east-1"))
	got := simulate(t, c, "arn:aws:iam::123456789012:role/web", nil, "ec2:AuthorizeSecurityGroupIngress", "s3:GetObject")
	if r := got["ec2:AuthorizeSecurityGroupIngress"]; r.EvalDecision != "allowed" || !slices.Equal(sources(r), []string{"sg-admin/IAM Policy"}) {
		t.Errorf("web's AuthorizeSecurityGroupIngress: %s by %v", r.EvalDecision, sources(r))
	}
	if r := got["s3:GetObject"]; r.EvalDecision != "allowed" || !slices.Equal(sources(r), []string{"role_web_extra/IAM Policy"}) {
		t.Errorf("web's s3:GetObject: %s by %v", r.EvalDecision, sources(r))
	}
	ip, err := c.GetInstanceProfile(t.Context(), &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("db")})
	if err != nil || aws.ToString(ip.InstanceProfile.Arn) != "arn:aws:iam::123456789012:instance-profile/data/db" || len(ip.InstanceProfile.Roles) != 1 {
		t.Errorf("db's profile: %+v, %v", ip, err)
	}
	if arn, ok := sim.InstanceProfileARN("DB"); !ok || arn != "arn:aws:iam::123456789012:instance-profile/data/db" {
		t.Errorf("InstanceProfileARN(DB) = %s, %v", arn, ok)
	}
	if arn, ok := sim.InstanceProfileARN("none"); ok || arn != "arn:aws:iam::123456789012:instance-profile/none" {
		t.Errorf("InstanceProfileARN(none) = %s, %v", arn, ok)
	}
	if err := sim.LoadFleet(f); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("loading the same IAM twice: %v; want already exists", err)
	}

	for _, bad := range []struct{ yaml, want string }{
		{"iam:\n  roles:\n    - name: web\n      managed_policies: [arn:aws:iam::aws:policy/Nope]\n", "iam.roles[0].managed_policies[0]"},
		{"iam:\n  instance_profiles:\n    - {name: web, role: ghost}\n", `iam.instance_profiles[0].role: no role "ghost"`},
		{"iam:\n  roles:\n    - name: web\n      inline_policies:\n        x: '{\"Statement\":[{\"Effect\":\"Maybe\",\"Action\":\"*\",\"Resource\":\"*\"}]}'\n", "iam.roles[0].inline_policies.x"},
		{"iam:\n  roles:\n    - name: bad name\n", "iam.roles[0].name"},
		{"iam:\n  rolez: []\n", "iam.rolez: unknown field"},
	} {
		if _, err := ec2sim.ParseFleet([]byte(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseFleet(%q): %v; want an error naming %s", bad.yaml, err, bad.want)
		}
	}
}

// The simulator routes by the credential scope's service, so an IAM call
// without a Version still reaches IAM and is answered in IAM's shape.
func TestIAMRouting(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	url := mustStart(t, sim)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("Action=GetRole&RoleName=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("IAM call without Version: HTTP %d; want 400 (InvalidAction)", resp.StatusCode)
	}
}

// TestIAMGolden pins the XML of IAM's answers the scan reads, as
// TestGolden does EC2's.
func TestIAMGolden(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{
		Seed: 1,
		Now:  func() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) },
	})
	f, err := ec2sim.ParseFleet([]byte(`
iam:
  roles:
    - name: web
      managed_policies: [arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore, arn:aws:iam::aws:policy/AmazonEC2FullAccess]
      inline_policies:
        no-revoke: {Version: "2012-10-17", Statement: [{Effect: Deny, Action: "ec2:Revoke*", Resource: "*"}]}
  instance_profiles:
    - {name: web, role: web}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	v := func(kv ...string) url.Values {
		form := url.Values{"Version": {"2010-05-08"}}
		for i := 0; i+1 < len(kv); i += 2 {
			form[kv[i]] = []string{kv[i+1]}
		}
		return form
	}
	steps := []struct {
		name   string
		form   url.Values
		status int
	}{
		{"iam-list-instance-profiles", v("Action", "ListInstanceProfiles"), 200},
		{"iam-list-attached-role-policies", v("Action", "ListAttachedRolePolicies", "RoleName", "web"), 200},
		{"iam-get-role-policy", v("Action", "GetRolePolicy", "RoleName", "web", "PolicyName", "no-revoke"), 200},
		{"iam-simulate-principal-policy", v("Action", "SimulatePrincipalPolicy", "PolicySourceArn", "arn:aws:iam::123456789012:role/web",
			"ActionNames.member.1", "ec2:AuthorizeSecurityGroupIngress", "ActionNames.member.2", "ec2:RevokeSecurityGroupIngress",
			"ActionNames.member.3", "iam:PassRole"), 200},
		{"iam-error-no-such-entity", v("Action", "GetRole", "RoleName", "db"), 404},
	}
	for _, st := range steps {
		rec := post(t, sim, st.form, "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
		if rec.Code != st.status {
			t.Errorf("%s: status %d, want %d\n%s", st.name, rec.Code, st.status, rec.Body)
		}
		checkGolden(t, st.name, rec.Body.Bytes())
	}
}
