package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
)

// iamAPI is the part of IAM a scan reads.
type iamAPI interface {
	ListInstanceProfiles(context.Context, *iam.ListInstanceProfilesInput, ...func(*iam.Options)) (*iam.ListInstanceProfilesOutput, error)
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	SimulatePrincipalPolicy(context.Context, *iam.SimulatePrincipalPolicyInput, ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
}

var _ iamAPI = (*iam.Client)(nil)

// roleActions are the actions a scan asks IAM about for each instance
// role: those that let code on the instance open a way in to itself
// without latch. AuthorizeSecurityGroupIngress adds an inbound rule to a
// group (its own included); ModifySecurityGroupRules rewrites an existing
// rule's source or ports; ModifyInstanceAttribute and
// ModifyNetworkInterfaceAttribute swap the instance's or an interface's
// groups for any group, an open one included. CreateSecurityGroup is left
// out: a new group opens nothing until one of these puts it to use.
var roleActions = []string{
	"ec2:AuthorizeSecurityGroupIngress",
	"ec2:ModifySecurityGroupRules",
	"ec2:ModifyInstanceAttribute",
	"ec2:ModifyNetworkInterfaceAttribute",
}

// roleReaders bounds how many roles are read at once.
const roleReaders = 4

// iamPageSize is the most IAM's list calls return in one page (MaxItems).
const iamPageSize = 1000

// readRoles reads the instance roles behind profiles (instance profile
// ARNs, as instances name them; repeats and "" are ignored). It lists the
// account's instance profiles once, paged, and asks GetInstanceProfile only
// for profiles the list did not show; then, once per distinct role however
// many profiles and instances share it, it lists the role's attached and
// inline policies and makes one SimulatePrincipalPolicy call about every
// action in roleActions. Decisions holds IAM's EvalDecision per action,
// and DecidedBy, per allowed action, the SourcePolicyId of each policy
// that allowed it as IAM names them: a managed policy's name
// (AmazonEC2FullAccess), or role_ROLE_POLICY for an inline one.
//
// The result has one InstanceRole per profile found, sorted by profile
// ARN; a profile without a role has Role "". A role whose reads were
// refused (or which vanished while being read) is left out of the roles
// and reported as one NotChecked (Check CheckRoles, Resource the role's
// ARN, API the call refused), so that nothing is judged on half of its
// reads; a profile that could not be read is reported the same way, with
// the profile's ARN. The other roles are still read. Region is left empty:
// IAM is global. A refused ListInstanceProfiles, and any error other than a
// refusal, is returned (wrapped with %w) for the caller to report the
// whole check.
func readRoles(ctx context.Context, c iamAPI, profiles []string) ([]latch.InstanceRole, []latch.NotChecked, error) {
	wanted := map[string]bool{}
	for _, p := range profiles {
		if p != "" {
			wanted[p] = true
		}
	}
	if len(wanted) == 0 {
		return nil, nil, nil
	}
	found := map[string]types.InstanceProfile{}
	p := iam.NewListInstanceProfilesPaginator(c, &iam.ListInstanceProfilesInput{MaxItems: aws.Int32(iamPageSize)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("iam:ListInstanceProfiles: %w", err)
		}
		for _, ip := range page.InstanceProfiles {
			if arn := aws.ToString(ip.Arn); wanted[arn] {
				found[arn] = ip
			}
		}
	}
	var notChecked []latch.NotChecked
	for _, arn := range slices.Sorted(maps.Keys(wanted)) {
		if _, ok := found[arn]; ok {
			continue
		}
		// Made since the list was read, or not listed for another reason.
		out, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(profileName(arn))})
		switch {
		case err == nil && aws.ToString(out.InstanceProfile.Arn) == arn:
			found[arn] = *out.InstanceProfile
		case err == nil:
			notChecked = append(notChecked, roleNotChecked(arn, "iam:GetInstanceProfile",
				fmt.Sprintf("NoSuchEntity: the account's profile %s is %s", profileName(arn), aws.ToString(out.InstanceProfile.Arn))))
		case iamRefused(err) || apiCode(err) == "NoSuchEntity":
			notChecked = append(notChecked, roleNotChecked(arn, "iam:GetInstanceProfile", awsReason(err)))
		default:
			return nil, nil, fmt.Errorf("iam:GetInstanceProfile %s: %w", arn, err)
		}
	}

	// One read per distinct role.
	roles := map[string]types.Role{}
	for _, ip := range found {
		if len(ip.Roles) > 0 {
			roles[aws.ToString(ip.Roles[0].Arn)] = ip.Roles[0]
		}
	}
	read, refused, err := readEachRole(ctx, c, roles)
	if err != nil {
		return nil, nil, err
	}
	notChecked = append(notChecked, refused...)

	var out []latch.InstanceRole
	for _, arn := range slices.Sorted(maps.Keys(found)) {
		ip := found[arn]
		if len(ip.Roles) == 0 {
			out = append(out, latch.InstanceRole{Profile: arn})
			continue
		}
		r, ok := read[aws.ToString(ip.Roles[0].Arn)]
		if !ok {
			continue // not checked, and said so
		}
		r.Profile = arn
		out = append(out, r)
	}
	slices.SortFunc(notChecked, func(a, b latch.NotChecked) int { return cmp.Compare(a.Resource, b.Resource) })
	return out, notChecked, nil
}

// readEachRole reads roles, roleReaders at a time. It returns the roles
// read by ARN, the NotChecked of those refused, or the first other error.
func readEachRole(ctx context.Context, c iamAPI, roles map[string]types.Role) (map[string]latch.InstanceRole, []latch.NotChecked, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		read     = map[string]latch.InstanceRole{}
		refused  []latch.NotChecked
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, roleReaders)
	)
	for _, arn := range slices.Sorted(maps.Keys(roles)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			r, nc, err := readRole(ctx, c, roles[arn])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				if firstErr == nil {
					firstErr = err
					cancel()
				}
			case nc != nil:
				refused = append(refused, *nc)
			default:
				read[arn] = r
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return read, refused, firstErr
}

// readRole reads one role's policies and IAM's decisions for roleActions.
func readRole(ctx context.Context, c iamAPI, role types.Role) (latch.InstanceRole, *latch.NotChecked, error) {
	arn, name := aws.ToString(role.Arn), aws.ToString(role.RoleName)
	r := latch.InstanceRole{Role: arn, RoleName: name, Decisions: map[string]string{}, DecidedBy: map[string][]string{}}
	// stop turns a refusal (or the role vanishing) into the role's
	// NotChecked, and anything else into an error.
	stop := func(api string, err error) (latch.InstanceRole, *latch.NotChecked, error) {
		if iamRefused(err) || apiCode(err) == "NoSuchEntity" {
			nc := roleNotChecked(arn, api, awsReason(err))
			return latch.InstanceRole{}, &nc, nil
		}
		return latch.InstanceRole{}, nil, fmt.Errorf("%s %s: %w", api, name, err)
	}

	attached := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name), MaxItems: aws.Int32(iamPageSize)})
	for attached.HasMorePages() {
		page, err := attached.NextPage(ctx)
		if err != nil {
			return stop("iam:ListAttachedRolePolicies", err)
		}
		for _, p := range page.AttachedPolicies {
			r.ManagedPolicies = append(r.ManagedPolicies, aws.ToString(p.PolicyArn))
		}
	}
	inline := iam.NewListRolePoliciesPaginator(c, &iam.ListRolePoliciesInput{RoleName: aws.String(name), MaxItems: aws.Int32(iamPageSize)})
	for inline.HasMorePages() {
		page, err := inline.NextPage(ctx)
		if err != nil {
			return stop("iam:ListRolePolicies", err)
		}
		r.InlinePolicies = append(r.InlinePolicies, page.PolicyNames...)
	}
	sim := iam.NewSimulatePrincipalPolicyPaginator(c, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(arn), ActionNames: roleActions, MaxItems: aws.Int32(iamPageSize)})
	for sim.HasMorePages() {
		page, err := sim.NextPage(ctx)
		if err != nil {
			return stop("iam:SimulatePrincipalPolicy", err)
		}
		for _, ev := range page.EvaluationResults {
			action := aws.ToString(ev.EvalActionName)
			r.Decisions[action] = string(ev.EvalDecision)
			if ev.EvalDecision == types.PolicyEvaluationDecisionTypeImplicitDeny && len(ev.MissingContextValues) > 0 {
				// Denied only for want of the condition keys' values: a
				// conditional allow, which holds when they do.
				r.Decisions[action] = latch.DecisionConditional
				r.DecidedBy[action] = []string{"a condition on " + strings.Join(ev.MissingContextValues, ", ")}
				continue
			}
			if ev.EvalDecision != types.PolicyEvaluationDecisionTypeAllowed {
				continue
			}
			for _, m := range ev.MatchedStatements {
				if id := aws.ToString(m.SourcePolicyId); id != "" && !slices.Contains(r.DecidedBy[action], id) {
					r.DecidedBy[action] = append(r.DecidedBy[action], id)
				}
			}
		}
	}
	slices.Sort(r.ManagedPolicies)
	slices.Sort(r.InlinePolicies)
	return r, nil, nil
}

func roleNotChecked(resource, api, reason string) latch.NotChecked {
	return latch.NotChecked{Check: latch.CheckRoles, Resource: resource, API: api, Reason: reason}
}

// profileName is the name in an instance profile's ARN
// (arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME).
func profileName(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// iamRefused reports whether AWS refused the call to the caller's policies.
func iamRefused(err error) bool { return slices.Contains(refusalCodes, apiCode(err)) }

// awsReason is what AWS answered: "AccessDenied: User: … is not authorized…".
func awsReason(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}
