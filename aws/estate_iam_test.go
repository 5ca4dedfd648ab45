package aws_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/internal/awstest"
)

const (
	ssmCorePolicy = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
	ec2FullPolicy = "arn:aws:iam::aws:policy/AmazonEC2FullAccess"
	authorizeSG   = "ec2:AuthorizeSecurityGroupIngress"
	ec2TrustDoc   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
)

// instanceRole builds, with IAM's own calls, a role with managed policies
// attached and inline policies put, and an instance profile holding it
// (one per name in profiles). Cleanup takes it all down again, so tests
// can share an external endpoint. It returns the role's and the profiles'
// ARNs.
func instanceRole(t *testing.T, c *iam.Client, managed []string, inline map[string]string, profiles int) (string, []string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	name := awstest.Unique("latch-role")
	out, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(ec2TrustDoc)})
	if err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	t.Cleanup(func() {
		for _, arn := range managed {
			_, _ = c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)})
		}
		for pn := range inline {
			_, _ = c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
		}
		if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)}); err != nil {
			t.Errorf("DeleteRole %s: %v", name, err)
		}
	})
	for _, arn := range managed {
		if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			t.Fatalf("AttachRolePolicy %s: %v", arn, err)
		}
	}
	for pn, doc := range inline {
		if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatalf("PutRolePolicy %s: %v", pn, err)
		}
	}
	var arns []string
	for range profiles {
		pname := awstest.Unique("latch-profile")
		ip, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(pname)})
		if err != nil {
			t.Fatalf("CreateInstanceProfile: %v", err)
		}
		if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(pname), RoleName: aws.String(name)}); err != nil {
			t.Fatalf("AddRoleToInstanceProfile: %v", err)
		}
		// Registered after the role's, so it runs before it.
		t.Cleanup(func() {
			_, _ = c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: aws.String(pname), RoleName: aws.String(name)})
			if _, err := c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(pname)}); err != nil {
				t.Errorf("DeleteInstanceProfile %s: %v", pname, err)
			}
		})
		arns = append(arns, aws.ToString(ip.InstanceProfile.Arn))
	}
	return aws.ToString(out.Role.Arn), arns
}

func roleOf(roles []latch.InstanceRole, profile string) (latch.InstanceRole, bool) {
	i := slices.IndexFunc(roles, func(r latch.InstanceRole) bool { return r.Profile == profile })
	if i < 0 {
		return latch.InstanceRole{}, false
	}
	return roles[i], true
}

func TestReadRolesDecides(t *testing.T) {
	env := awstest.New(t)
	c := iam.NewFromConfig(env.Config())
	wide, wideProfiles := instanceRole(t, c, []string{ssmCorePolicy, ec2FullPolicy}, nil, 1)
	core, coreProfiles := instanceRole(t, c, []string{ssmCorePolicy}, map[string]string{
		"read-tags": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeTags","Resource":"*"}]}`}, 1)
	inline, inlineProfiles := instanceRole(t, c, nil, map[string]string{
		"self-service": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Authorize*","Resource":"*"}]}`}, 1)

	// Allowed only on groups tagged team=web: the simulation has no tag
	// to test, so IAM says implicitDeny, naming the key it lacked.
	_, condProfiles := instanceRole(t, c, nil, map[string]string{
		"own-group": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:AuthorizeSecurityGroupIngress","Resource":"*","Condition":{"StringEquals":{"ec2:ResourceTag/team":"web"}}}]}`}, 1)

	roles, notChecked, err := latchaws.ReadRoles(t.Context(), c, []string{wideProfiles[0], coreProfiles[0], "", inlineProfiles[0], wideProfiles[0], condProfiles[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(notChecked) != 0 || len(roles) != 4 {
		t.Fatalf("ReadRoles: %d roles, not checked %+v; want 4 and none", len(roles), notChecked)
	}
	if r, _ := roleOf(roles, condProfiles[0]); r.Decisions[authorizeSG] != latch.DecisionConditional || len(r.DecidedBy[authorizeSG]) != 1 ||
		!strings.Contains(r.DecidedBy[authorizeSG][0], "ec2:ResourceTag/team") {
		t.Errorf("the conditional allow: %v by %v; want conditional, naming the condition key", r.Decisions, r.DecidedBy)
	}

	r, _ := roleOf(roles, wideProfiles[0])
	if r.Role != wide || r.Decisions[authorizeSG] != "allowed" || !slices.Equal(r.DecidedBy[authorizeSG], []string{"AmazonEC2FullAccess"}) {
		t.Errorf("the role with ec2:*: %s %s by %v; want allowed by AmazonEC2FullAccess", r.Role, r.Decisions[authorizeSG], r.DecidedBy[authorizeSG])
	}
	for _, a := range latchaws.RoleActions {
		if r.Decisions[a] != "allowed" {
			t.Errorf("the role with ec2:*: %s is %q; want allowed", a, r.Decisions[a])
		}
	}
	if !slices.Equal(r.ManagedPolicies, []string{ec2FullPolicy, ssmCorePolicy}) {
		t.Errorf("the role with ec2:*: managed policies %v", r.ManagedPolicies)
	}

	r, _ = roleOf(roles, coreProfiles[0])
	if r.Role != core || r.Decisions[authorizeSG] != "implicitDeny" || len(r.DecidedBy[authorizeSG]) != 0 {
		t.Errorf("the SSM-only role: %s %s by %v; want implicitDeny", r.Role, r.Decisions[authorizeSG], r.DecidedBy[authorizeSG])
	}
	if !slices.Equal(r.ManagedPolicies, []string{ssmCorePolicy}) || !slices.Equal(r.InlinePolicies, []string{"read-tags"}) {
		t.Errorf("the SSM-only role: managed %v, inline %v", r.ManagedPolicies, r.InlinePolicies)
	}

	// IAM names an inline policy role_ROLE_POLICY.
	r, _ = roleOf(roles, inlineProfiles[0])
	wantBy := "role_" + inline[strings.LastIndex(inline, "/")+1:] + "_self-service"
	if r.Role != inline || r.Decisions[authorizeSG] != "allowed" || !slices.Equal(r.DecidedBy[authorizeSG], []string{wantBy}) ||
		r.Decisions["ec2:ModifyInstanceAttribute"] != "implicitDeny" {
		t.Errorf("the role with ec2:Authorize*: %v by %v", r.Decisions, r.DecidedBy)
	}
}

// Roles are read once however many instances and profiles share them, and
// profiles are listed, not fetched one by one.
func TestReadRolesCallsPerRole(t *testing.T) {
	env := awstest.New(t)
	sim := env.RequireSim(t, "counts the calls each API received")
	c := iam.NewFromConfig(env.Config())
	_, shared := instanceRole(t, c, []string{ssmCorePolicy}, nil, 2)
	_, other := instanceRole(t, c, []string{ec2FullPolicy}, nil, 1)
	before := map[string]int{}
	apis := []string{"ListInstanceProfiles", "GetInstanceProfile", "ListAttachedRolePolicies", "ListRolePolicies", "SimulatePrincipalPolicy"}
	for _, a := range apis {
		before[a] = sim.Calls(a)
	}
	// Four instances: three on the shared role through two profiles.
	roles, notChecked, err := latchaws.ReadRoles(t.Context(), c, []string{shared[0], shared[0], shared[1], other[0]})
	if err != nil || len(notChecked) != 0 || len(roles) != 3 {
		t.Fatalf("ReadRoles: %d roles, %+v, %v", len(roles), notChecked, err)
	}
	want := map[string]int{"ListInstanceProfiles": 1, "GetInstanceProfile": 0, "ListAttachedRolePolicies": 2, "ListRolePolicies": 2, "SimulatePrincipalPolicy": 2}
	for _, a := range apis {
		if got := sim.Calls(a) - before[a]; got != want[a] {
			t.Errorf("%s: %d calls; want %d", a, got, want[a])
		}
	}

	// A profile the list does not show is fetched on its own; one that
	// does not exist is not checked, and says so.
	gone := strings.Replace(other[0], "latch-profile", "latch-gone", 1)
	roles, notChecked, err = latchaws.ReadRoles(t.Context(), c, []string{other[0], gone})
	if err != nil || len(roles) != 1 {
		t.Fatalf("ReadRoles with a missing profile: %d roles, %v", len(roles), err)
	}
	if len(notChecked) != 1 || notChecked[0].Resource != gone || notChecked[0].API != "iam:GetInstanceProfile" ||
		notChecked[0].Check != latch.CheckRoles || !strings.HasPrefix(notChecked[0].Reason, "NoSuchEntity") {
		t.Errorf("the missing profile: %+v", notChecked)
	}
	if got := sim.Calls("GetInstanceProfile") - before["GetInstanceProfile"]; got != 1 {
		t.Errorf("GetInstanceProfile: %d calls; want 1", got)
	}

	// No profiles, no calls.
	n := sim.Calls("ListInstanceProfiles")
	if roles, nc, err := latchaws.ReadRoles(t.Context(), c, []string{"", ""}); roles != nil || nc != nil || err != nil || sim.Calls("ListInstanceProfiles") != n {
		t.Errorf("ReadRoles of no profiles: %v %v %v, and %d calls", roles, nc, err, sim.Calls("ListInstanceProfiles")-n)
	}
}

// refuseFor answers one role's calls as IAM does when the scan's policy
// does not cover that role, and passes the rest on.
type refuseFor struct {
	latchaws.IAMAPI
	roleARN string
}

func (r refuseFor) SimulatePrincipalPolicy(ctx context.Context, in *iam.SimulatePrincipalPolicyInput, opts ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error) {
	if aws.ToString(in.PolicySourceArn) == r.roleARN {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: scanner is not authorized to perform: iam:SimulatePrincipalPolicy on resource: " + r.roleARN}
	}
	return r.IAMAPI.SimulatePrincipalPolicy(ctx, in, opts...)
}

// A role whose reads are refused is not checked, alone.
func TestReadRolesRefusedRole(t *testing.T) {
	env := awstest.New(t)
	c := iam.NewFromConfig(env.Config())
	refusedARN, refusedProfiles := instanceRole(t, c, []string{ec2FullPolicy}, nil, 1)
	okARN, okProfiles := instanceRole(t, c, []string{ssmCorePolicy}, nil, 1)
	api := refuseFor{IAMAPI: c, roleARN: refusedARN}

	roles, notChecked, err := latchaws.ReadRoles(t.Context(), api, []string{refusedProfiles[0], okProfiles[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(notChecked) != 1 {
		t.Fatalf("not checked: %+v; want the refused role alone", notChecked)
	}
	nc := notChecked[0]
	if nc.Check != latch.CheckRoles || nc.Resource != refusedARN || nc.API != "iam:SimulatePrincipalPolicy" || !strings.HasPrefix(nc.Reason, "AccessDenied: ") {
		t.Errorf("not checked: %+v", nc)
	}
	if _, ok := roleOf(roles, refusedProfiles[0]); ok {
		t.Errorf("the refused role is among the roles read: %+v", roles)
	}
	if r, ok := roleOf(roles, okProfiles[0]); !ok || r.Role != okARN || r.Decisions[authorizeSG] != "implicitDeny" {
		t.Errorf("the other role: %+v, %v", r, ok)
	}
}

// Refusals through the simulator's Deny: the list itself is an error for
// the caller, a per-role read a NotChecked per role.
func TestReadRolesDenied(t *testing.T) {
	env := awstest.New(t)
	sim := env.RequireSim(t, "refuses IAM calls with Server.Deny")
	c := iam.NewFromConfig(env.Config())
	roleA, profilesA := instanceRole(t, c, []string{ec2FullPolicy}, nil, 1)
	roleB, profilesB := instanceRole(t, c, []string{ssmCorePolicy}, nil, 1)
	profiles := []string{profilesA[0], profilesB[0]}

	sim.Deny("iam:ListInstanceProfiles")
	_, _, err := latchaws.ReadRoles(t.Context(), c, profiles)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || !strings.Contains(err.Error(), "iam:ListInstanceProfiles") {
		t.Errorf("ListInstanceProfiles refused: %v; want its AccessDenied", err)
	}
	sim.Allow("iam:ListInstanceProfiles")

	sim.Deny("iam:ListAttachedRolePolicies")
	roles, notChecked, err := latchaws.ReadRoles(t.Context(), c, profiles)
	if err != nil || len(roles) != 0 {
		t.Fatalf("ListAttachedRolePolicies refused: %d roles, %v; want none and no error", len(roles), err)
	}
	var got []string
	for _, nc := range notChecked {
		got = append(got, nc.Resource+" "+nc.API)
	}
	want := []string{roleA + " iam:ListAttachedRolePolicies", roleB + " iam:ListAttachedRolePolicies"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("not checked: %v; want %v", got, want)
	}
	if n := sim.Calls("SimulatePrincipalPolicy"); n != 0 {
		t.Errorf("a role whose policies could not be listed was simulated (%d calls)", n)
	}
}
