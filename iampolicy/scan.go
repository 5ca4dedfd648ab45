package iampolicy

import "github.com/latchdev/latch"

// Scan is the policy of the role `latch scan` runs with: read-only, and
// only what the scan reads (groups and their rules, instances, launch
// templates, Session Manager agents, the instances' roles and what IAM
// decides for them, trails). A scan refused part of it reports that part
// as not checked and goes on, so a narrower role works too.
func Scan(opts Options) Document {
	o := opts.withDefaults()
	return Document{Version: Version, Statement: scanStatements(o)}
}

func scanStatements(o Options) []Statement {
	return []Statement{
		{
			// EC2's Describe actions and DescribeInstanceInformation
			// support no resource-level permissions; nor does
			// cloudtrail:DescribeTrails (Service Authorization Reference).
			Sid:    "ReadTheEstate",
			Effect: "Allow",
			Action: []string{
				"cloudtrail:DescribeTrails",
				"ec2:DescribeInstances", "ec2:DescribeLaunchTemplateVersions",
				"ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups",
				"ssm:DescribeInstanceInformation",
			},
			Resource: []string{"*"},
		},
		{
			Sid:      "ReadTrailsEventSelectors",
			Effect:   "Allow",
			Action:   []string{"cloudtrail:GetEventSelectors"},
			Resource: []string{o.arn("cloudtrail", "trail/*")},
		},
		{
			// Roles and instance profiles are global: no region in their
			// ARNs. SimulatePrincipalPolicy acts on the principal whose
			// policies it simulates (here a role).
			Sid:    "ReadInstanceRolesAndWhatTheyMayDo",
			Effect: "Allow",
			Action: []string{
				"iam:GetInstanceProfile", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfiles",
				"iam:ListRolePolicies", "iam:SimulatePrincipalPolicy",
			},
			Resource: []string{o.global("iam", "instance-profile/*"), o.global("iam", "role/*")},
		},
	}
}

// Adopt is the policy of the role `latch adopt --apply` and `--undo` run
// with: the scan's reads, and the changes of a plan. It may create a
// security group only tagged latch:managed=true and
// latch:adopt-plan, delete only groups it created (tagged
// latch:adopt-plan), attach groups to instances and interfaces, revoke
// inbound rules (the standing rules it removes are in groups latch does
// not manage, so any group), and authorize rules again for an undo.
// It is an admin's role, kept apart from the server's, which can create
// no group and revoke only in managed groups.
func Adopt(opts Options) Document {
	o := opts.withDefaults()
	statements := scanStatements(o)
	statements = append(statements,
		Statement{
			// A new group must carry latch:managed=true and its plan's ID
			// (aws:RequestTag applies to the security-group resource of
			// CreateSecurityGroup when TagSpecifications are given).
			Sid:      "CreateOnlyManagedGroups",
			Effect:   "Allow",
			Action:   []string{"ec2:CreateSecurityGroup"},
			Resource: []string{o.arn("ec2", "security-group/*")},
			Condition: map[string]map[string]any{
				"StringEquals": {"aws:RequestTag/" + latch.TagManaged: "true"},
				"Null":         {"aws:RequestTag/" + latch.TagAdoptPlan: "false"},
			},
		},
		Statement{
			Sid:      "CreateGroupsInAnyVPC",
			Effect:   "Allow",
			Action:   []string{"ec2:CreateSecurityGroup"},
			Resource: []string{o.arn("ec2", "vpc/*")},
		},
		Statement{
			// Tags given at creation are authorized as ec2:CreateTags with
			// ec2:CreateAction (EC2 user guide, "Grant permission to tag
			// resources during creation"): the new group's, and a
			// restored rule's.
			Sid:      "TagGroupsAndRulesOnlyAsTheyAreCreated",
			Effect:   "Allow",
			Action:   []string{"ec2:CreateTags"},
			Resource: []string{o.arn("ec2", "security-group/*"), o.arn("ec2", "security-group-rule/*")},
			Condition: map[string]map[string]any{
				"StringEquals": {"ec2:CreateAction": []string{"AuthorizeSecurityGroupIngress", "CreateSecurityGroup"}},
			},
		},
		Statement{
			Sid:      "AttachGroupsToInstancesAndInterfaces",
			Effect:   "Allow",
			Action:   []string{"ec2:ModifyInstanceAttribute", "ec2:ModifyNetworkInterfaceAttribute"},
			Resource: []string{o.arn("ec2", "instance/*"), o.arn("ec2", "network-interface/*"), o.arn("ec2", "security-group/*")},
		},
		Statement{
			// Restoring a rule authorizes it again, tags included
			// (security-group-rule is a resource of the call only when it
			// has TagSpecifications).
			Sid:      "RemoveStandingRulesAndRestoreThemOnUndo",
			Effect:   "Allow",
			Action:   []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"},
			Resource: []string{o.arn("ec2", "security-group/*"), o.arn("ec2", "security-group-rule/*")},
		},
		Statement{
			Sid:       "DeleteOnlyGroupsAPlanCreated",
			Effect:    "Allow",
			Action:    []string{"ec2:DeleteSecurityGroup"},
			Resource:  []string{o.arn("ec2", "security-group/*")},
			Condition: map[string]map[string]any{"Null": {"aws:ResourceTag/" + latch.TagAdoptPlan: "false"}},
		},
	)
	return Document{Version: Version, Statement: statements}
}

// global is the ARN of a resource of a global service (IAM): no region.
func (o Options) global(service, resource string) string {
	return "arn:" + o.Partition + ":" + service + "::" + o.Account + ":" + resource
}
