// Package ec2sim is an in-memory Amazon EC2 that speaks the EC2 Query API
// (version 2016-11-15) over HTTP, so that the unmodified aws-sdk-go-v2 EC2
// client can be tested against it. It covers what latch uses: security
// groups and their ingress rules, rule tags, instances, and tags; and,
// beside EC2, STS's GetCallerIdentity, CloudTrail's LookupEvents,
// EventBridge Scheduler, and IAM's roles, instance profiles, policies and
// SimulatePrincipalPolicy.
//
// It doubles AWS, not latch: it imports neither latch nor the SDK, and it
// answers with EC2's documented XML shapes and error codes, which the
// golden files in testdata pin.
//
// # Usage
//
//	sim := ec2sim.New(ec2sim.Options{})
//	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil { … }
//	ts := httptest.NewServer(sim)
//	client := ec2.NewFromConfig(aws.Config{
//		Region:       "us-east-1",
//		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
//		BaseEndpoint: aws.String(ts.URL),
//	})
//
// [Server.Client] returns an HTTP client that calls the server without a
// socket, for tests inside a testing/synctest bubble. The ec2sim command
// (cmd/ec2sim) serves the same handler on a TCP port.
//
// # Regions and accounts
//
// The region of a request is the one in its SigV4 credential scope
// (Credential=AKID/DATE/REGION/ec2/aws4_request), us-east-1 when there is
// none. Each region has its own resources and its own default VPC, created
// on first use so that CreateSecurityGroup without a VpcId works. EC2
// requests are not authenticated: their access key names the caller but
// their signature is not checked. Everything belongs to one account,
// [Options.AccountID].
//
// # STS
//
// sts:GetCallerIdentity is served at the same endpoint, as the SDK sends
// every service to one base endpoint. Unlike EC2 it verifies the SigV4
// signature (Authorization header or presigned URL, within 15 minutes of
// [Options.Now]) against the identities added with [Server.AddIdentity].
//
// sts:AssumeRole is served too (sts_assume.go): a known identity may
// assume any role of [Options.AccountID], unless [Server.AllowAssume]
// restricts the role, and the credentials it returns are added as an
// identity that carries the SourceIdentity given and expires on
// Options.Now (ExpiredToken).
//
// # IAM
//
// IAM's Query API (version 2010-05-08, XML) is served at the same
// endpoint, recognised by its SigV4 credential scope (service iam) or its
// Version; like EC2's, its requests are not authenticated. IAM is global:
// one set of roles, instance profiles and policies per server, in
// [Options.AccountID], whatever the region of the request. Served: CreateRole,
// GetRole, ListRoles, DeleteRole; CreateInstanceProfile, GetInstanceProfile,
// ListInstanceProfiles (with each profile's role), ListInstanceProfilesForRole,
// AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile,
// DeleteInstanceProfile; CreatePolicy, GetPolicy, GetPolicyVersion,
// DeletePolicy, AttachRolePolicy, DetachRolePolicy, ListAttachedRolePolicies;
// PutRolePolicy, GetRolePolicy, ListRolePolicies, DeleteRolePolicy; and
// SimulatePrincipalPolicy. Lists page with MaxItems (1 to 1000, 100 by
// default), Marker and IsTruncated. Names are unique without regard to case,
// as IAM's are. Policy documents come back URL-encoded, as IAM sends them,
// and are checked on the way in (MalformedPolicyDocument: not JSON, an
// unknown element, an Effect other than Allow or Deny, no Action or
// NotAction, an action without its service's prefix, no Resource or
// NotResource, a resource that is neither * nor an ARN, or a Principal in
// an identity policy). Errors are IAM's: NoSuchEntity (404), EntityAlreadyExists,
// DeleteConflict and LimitExceeded (409), MalformedPolicyDocument,
// InvalidInput and ValidationError (400), and AccessDenied (403) for an
// API refused with [Server.Deny] ("iam:GetRole"). Customer managed policies
// have one version, v1; CreatePolicyVersion, tags, permissions boundaries,
// users, groups and service-linked roles are not modelled, and IAM calls
// are neither throttled, faulted nor recorded in CloudTrail.
//
// The AWS managed policies AmazonSSMManagedInstanceCore (v2),
// AmazonEC2FullAccess, AmazonEC2ReadOnlyAccess and AdministratorAccess are
// built in (arn:aws:iam::aws:policy/NAME) with AWS's documents; any other
// AWS managed ARN is NoSuchEntity.
//
// SimulatePrincipalPolicy evaluates a role's identity policies (its inline
// and attached managed ones, and any PolicyInputList) for each of
// ActionNames on each of ResourceArns ("*" when none are given): a
// statement applies when its Action matches (or its NotAction does not),
// with * and ? wildcards and without regard to case, and its Resource
// matches (or its NotResource does not), with wildcards and with case; a
// simulated resource of "*" is matched by every Resource. An applying Deny
// wins (explicitDeny), else an applying Allow (allowed), else implicitDeny.
// MatchedStatements name the statements' policies as IAM's simulator does:
// SourcePolicyId is a managed policy's name, role_ROLE_POLICY for an inline
// one, PolicyInputList.N for one given; SourcePolicyType is "IAM Policy",
// which the service sends though its reference lists other values.
// Conditions are not evaluated: a statement with a Condition never applies,
// as when IAM's simulator is given no value for the keys it tests, and
// those keys are listed in MissingContextValues. Not evaluated, and so
// refused with InvalidInput rather than ignored: ContextEntries,
// ResourcePolicy, PermissionsBoundaryPolicyInputList, CallerArn and
// ResourceHandlingOption. Nor are permissions boundaries, service control
// policies, session policies, policy variables (${aws:username} is matched
// literally) or statement positions (StartPosition, EndPosition), and
// only roles may be the PolicySourceArn.
//
// A fleet's iam: section (see [FleetIAM]) loads policies, roles (with
// managed and inline policies; by default trusting ec2.amazonaws.com) and
// instance profiles.
//
// # Systems Manager
//
// Session Manager's StartSession, TerminateSession, ResumeSession and
// DescribeSessions, and DescribeInstanceInformation, are served over JSON
// 1.1 (X-Amz-Target AmazonSSM.ACTION), signed and verified as STS's are.
// A session is named after its caller (IAM user name or role session
// name), owned by its ARN, and Connected until TerminateSession (which is
// idempotent) or [Server.EndSession]. Only instances with an SSM agent
// (a fleet's agent:, or [Server.SetAgent]) that is Online and running take
// sessions; others answer TargetNotConnected. Its StreamUrl points back at
// this server, under /v1/data-channel/, which [Options.DataChannel]
// serves. StartSession, TerminateSession and ResumeSession, and
// AssumeRole, are recorded in CloudTrail (ssm.amazonaws.com,
// sts.amazonaws.com) with the caller's source identity and without
// tokens.
//
// # Actions
//
// AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress,
// DescribeSecurityGroupRules, CreateSecurityGroup, DeleteSecurityGroup,
// DescribeSecurityGroups, DescribeInstances, GetConsoleOutput, CreateTags,
// DeleteTags, DescribeTags, RunInstances, TerminateInstances,
// ModifyInstanceAttribute, ModifyNetworkInterfaceAttribute and
// ModifySecurityGroupRules (CIDR sources
// only; a rule keeps its ID and tags; not recorded in CloudTrail, whose
// record shape for it is not modelled). Authorize, revoke and modify are
// atomic, as in EC2:
// when any permission in a call is invalid, duplicate or over the rule quota
// ([Options.RuleLimit], 60 per address family by default), nothing
// changes. The one exception is EC2's own: revoking by IpPermissions in a
// default VPC revokes what matches and lists the rest in
// unknownIpPermissionSet instead of answering InvalidPermission.NotFound. CIDRs are stored canonically (100.68.0.18/18 becomes
// 100.68.0.0/18). Describes page with MaxResults (5 to 1000) and
// NextToken; tokens name the last item returned, so concurrent changes
// never make a page repeat or skip an item that stays.
//
// GetConsoleOutput shows, for an instance with SSH host keys (a fleet's
// host_keys, or [Server.SetHostKeys]), a short boot log with the
// fingerprint and key blocks cloud-init prints, base64-encoded as EC2
// sends it; a pending instance, or one without keys, has no output.
// Latest is accepted and changes nothing.
//
// RunInstances launches MaxCount instances from any well-formed AMI ID
// (there is no image catalogue) into the VPC of their security groups, with
// the next free private address and no public one (unless
// NetworkInterface.1.AssociatePublicIpAddress is true: then one from
// 3.0.0.0/8, the only interface parameter modelled), tagged from
// TagSpecification (ResourceType instance; volume and network-interface
// tags are accepted and dropped); they answer pending and are running at
// once. TerminateInstances ends them at once: they leave their groups and
// stay visible as terminated. Neither is recorded in CloudTrail, and
// ClientToken, launch templates, placement and user data are ignored.
//
// RunInstances also takes KeyName, which must name a key pair of the
// region (InvalidKeyPair.NotFound), and IamInstanceProfile by Arn or Name
// (not both), kept as the profile's ARN without asking the simulator's
// IAM; DescribeInstances shows keyName and iamInstanceProfile {arn, id}
// (the ID derived from the ARN) and filters by key-name and
// iam-instance-profile.arn. A fleet's instance sets them with key_name
// and instance_profile.
//
// # Key pairs and launch templates
//
// CreateKeyPair, ImportKeyPair, DescribeKeyPairs and DeleteKeyPair
// (keypairs.go) keep each region's key pairs by name. CreateKeyPair makes
// a real key of KeyType (rsa, 2048 bits, as PKCS#1 PEM; or ed25519, in
// OpenSSH's format) and returns its private half once; KeyFormat ppk
// answers UnsupportedOperation. ImportKeyPair takes ssh-rsa and
// ssh-ed25519 lines (InvalidKey.Format otherwise). Fingerprints follow
// EC2's rules (SHA-1 of the PKCS#8 key for a created RSA key, MD5 of the
// public key for an imported one, SHA-256 for ed25519). DescribeKeyPairs
// takes KeyName.N, KeyPairId.N (unknown ones are InvalidKeyPair.NotFound),
// filters key-name, key-pair-id, fingerprint, key-type and tags, and
// IncludePublicKey; it does not page, as EC2's does not. Deleting a name
// that does not exist succeeds, as in EC2; instances keep the name of a
// deleted key pair. A fleet region's key_pairs adds key pairs.
//
// CreateLaunchTemplate, CreateLaunchTemplateVersion (SourceVersion's data
// overlaid by the members given), ModifyLaunchTemplate (SetDefaultVersion),
// DescribeLaunchTemplates (by ID or name, filters launch-template-name,
// create-time and tags, MaxResults 1 to 200), DescribeLaunchTemplateVersions
// and DeleteLaunchTemplate (launchtemplates.go). Of the data only KeyName,
// ImageId, InstanceType, SecurityGroupId.N, IamInstanceProfile and
// TagSpecification.N are kept; the rest is accepted and dropped, and none
// of it is checked when stored (as EC2 checks it only at launch).
// DescribeLaunchTemplateVersions has EC2's two forms: with a template, its
// versions (LaunchTemplateVersion.N as numbers, $Latest or $Default, or
// MinVersion to MaxVersion); without one, the $Latest and/or $Default
// version of every template in the region (numbers are refused), a
// version that is both listed once, paged 1 to 200 at a time. RunInstances
// does not launch from a template, and DeleteLaunchTemplateVersions is not
// served. A fleet region's launch_templates adds templates.
//
// Every security group, created or loaded from a fleet, has EC2's default
// outbound rule (all protocols to 0.0.0.0/0, with an sgr- ID of its own):
// DescribeSecurityGroups lists it in ipPermissionsEgress and
// DescribeSecurityGroupRules with isEgress true, CreateTags reaches it,
// and it does not count against the inbound quota. [Server.Rules] and
// /_sim/rules list inbound rules only. See egress.go.
//
// A rule's source is a CIDR, a security group (UserIdGroupPairs, Groups.N;
// referencedGroupInfo in DescribeSecurityGroupRules, groups in
// DescribeSecurityGroups) or a managed prefix list (PrefixListIds.N;
// prefixListId). Authorize and revoke (by permission or by ID) take all
// three, with EC2's duplicate and NotFound answers; a referenced group
// must exist in the region (InvalidGroup.NotFound; a GroupName names one
// of the default VPC), and a group another group's rule names cannot be
// deleted (DependencyViolation). There are no prefix lists: any
// well-formed pl- ID (8 or 17 hex digits) is accepted, others are
// InvalidPrefixListId.Malformed, and DescribeManagedPrefixLists is not
// served. A group or prefix list source counts in both address families'
// quota. ModifySecurityGroupRules takes CIDR sources only. A referenced
// group may be in any VPC of the region (EC2 wants the same VPC or a
// peered one); cross-account references are not modelled. See sources.go.
//
// An instance has a primary network interface and, optionally, more (a
// fleet's interfaces:, or [Server.AddInterface]); DescribeInstances lists
// each in networkInterfaceSet with its groupSet and attachment's
// deviceIndex, and the instance's groupSet gathers the groups of all of
// them. ModifyInstanceAttribute with GroupId.N replaces the groups of an
// instance's only interface and refuses one with several
// (InvalidInstanceID, as EC2: name the interface instead);
// ModifyNetworkInterfaceAttribute with SecurityGroupId.N replaces those
// of one interface. Both take one to five groups of the instance's VPC
// (InvalidGroup.NotFound, InvalidParameter for another VPC,
// SecurityGroupsPerInterfaceLimitExceeded), are recorded in CloudTrail,
// and model no other attribute (UnsupportedOperation). A group on any
// interface cannot be deleted. See attach.go.
//
// Not modelled: AuthorizeSecurityGroupEgress and
// RevokeSecurityGroupEgress, network interfaces as resources of their own
// (CreateNetworkInterface, DescribeNetworkInterfaces), the other instance
// lifecycle actions (stop, start, reboot), subnets as resources, and IAM
// authorization (IAM's API is served, see below, but its policies govern
// no call: only [Server.Deny] refuses one).
//
// # Eventual consistency
//
// By default every change is visible at once. With [Options.DescribeLag]
// DescribeSecurityGroupRules, and the permissions DescribeSecurityGroups
// lists, show each region's ingress rules as they were that long ago on
// Options.Now, as EC2's eventual consistency may: a new rule is missing
// (NotFound by ID), a revoked rule is still listed, and a rule's tags and
// fields have their old values until the lag has passed. The mutations
// themselves see the present (EC2's duplicate check, revoke by ID,
// CreateTags on a new rule), and so do DescribeTags and [Server.Rules].
// See consistency.go.
//
// # Request throttling
//
// Off by default. With [Options.Throttle] (or [Server.SetThrottle], POST
// /_sim/throttle, or the ec2sim command's -throttle) EC2 actions draw on
// token buckets as EC2's do ("Request throttling for the Amazon EC2 API"):
// one bucket per account, region and API, sized by the API's category.
// [EC2Throttle] returns the documented defaults: non-mutating (Describe*,
// Get*) 100 tokens refilled at 20 a second; DescribeSecurityGroups and
// DescribeInstances without a filter or pagination 50 at 10, from a
// bucket of their own; mutating 50 at 5; resource-intensive, which
// includes AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress,
// 50 at 5; CreateTags and DeleteTags 100 at 10. [Throttle.Scale] scales
// them all, and Throttle.Actions overrides single actions. Tokens flow
// back continuously on Options.Now, so a test steps its clock instead of
// sleeping. A request that finds its bucket empty is answered as EC2
// answers it, RequestLimitExceeded with HTTP 503, and changes nothing;
// [Server.Calls] counts it and [Server.Throttled] counts it apart. Every
// request EC2 evaluates takes a token, failed ones included. STS,
// CloudTrail, Scheduler and Systems Manager are not throttled, and EC2's
// resource token buckets (instances launched) are not modelled.
//
// # CloudTrail
//
// Every call to one of the eight actions that change something
// (AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress,
// CreateSecurityGroup, DeleteSecurityGroup, CreateTags, DeleteTags,
// ModifyInstanceAttribute, ModifyNetworkInterfaceAttribute) is
// recorded as a CloudTrail management event, failed calls included (with
// errorCode "Client.<code>", errorMessage and null responseElements), as
// CloudTrail records them. A call whose response is lost is recorded, since
// it took effect; one throttled (by [Options.Throttle] or an injected
// fault) or answered with an injected server error is not. The record has CloudTrail's fields: userIdentity from the access key
// (IAMUser, AssumedRole with its sessionContext, or Root, per the ARN of
// the identity added with AddIdentity; an unknown key is an IAM user of
// [Options.AccountID] named after the key), sourceIPAddress, userAgent,
// requestID, eventID, and requestParameters and responseElements shaped as
// CloudTrail writes EC2 calls (see cloudtrail_shapes.go).
//
// CloudTrail's LookupEvents (JSON 1.1, X-Amz-Target
// CloudTrail_20131101.LookupEvents) reads the events of the request's
// region, newest first, with one lookup attribute, StartTime and EndTime
// (inclusive, to the second), MaxResults (1 to 50) and NextToken, which
// is good only with the parameters that earned it. Each event's Resources
// are its security group (AWS::EC2::SecurityGroup), the rules it added or
// revoked (AWS::EC2::SecurityGroupRule), the resources it tagged, and
// the instance or network interface whose groups it set.
// Requests signed with a key added with AddIdentity must be signed
// correctly; others are accepted.
//
// Trails (cloudtrail_trails.go): CreateTrail, DescribeTrails,
// GetEventSelectors, PutEventSelectors and DeleteTrail. A trail belongs to
// the account and has a home region, the one it was created in; a
// multi-region trail applies to every region and DescribeTrails lists it
// elsewhere as a shadow trail (includeShadowTrails, true by default).
// Names in trailNameList may be names or ARNs, and unknown ones are left
// out. A new trail logs all management events (one basic selector, All);
// PutEventSelectors replaces its selectors with basic (ReadWriteType,
// IncludeManagementEvents, data resources kept but unused) or advanced
// ones (field names checked, an eventCategory required), from its home
// region only (InvalidHomeRegionException), as DeleteTrail. A trail is
// found by name in a region it applies to, or by ARN anywhere. Not
// modelled: S3 delivery (the bucket is not checked), logging status
// (every trail logs), insight selectors, tags and organization trails;
// trail names are unique in the account. A fleet's top-level trails adds
// trails. Other CloudTrail operations answer UnknownOperationException.
//
// [Server.Deny] refuses any CloudTrail operation ("cloudtrail:…") and any
// Systems Manager action ("ssm:…", e.g. ssm:DescribeInstanceInformation)
// with AccessDeniedException (400), as it refuses EC2's actions with
// UnauthorizedOperation.
//
// Events reach LookupEvents [Options.CloudTrailDelay] after the call
// (measured on Options.Now, so a test can step past it), like CloudTrail's
// delivery delay of about five minutes; [Server.SetCloudTrailDelay]
// changes it for later calls.
//
// # EventBridge Scheduler
//
// Scheduler's REST JSON API is served at the same endpoint, under
// /schedules and /schedule-groups: CreateSchedule, GetSchedule,
// UpdateSchedule (which replaces the whole schedule, as Scheduler's does),
// DeleteSchedule, ListSchedules (by group, then name; NamePrefix,
// ScheduleGroup, State, MaxResults 1 to 100 and NextToken),
// CreateScheduleGroup, GetScheduleGroup, DeleteScheduleGroup and
// ListScheduleGroups. Each region has its own schedules and its own
// "default" group. Errors are Scheduler's: the code in x-amzn-ErrorType
// and the message in a JSON body's Message, with ConflictException (409),
// ResourceNotFoundException (404), ValidationException (400, naming the
// member and its value, as "Value '186' at
// 'target.retryPolicy.maximumRetryAttempts' failed to satisfy constraint:
// …") and, from [Server.SetFaults] by operation name,
// ThrottlingException (429) and InternalServerException (500). A create
// or delete retried with the same ClientToken gets the first answer
// again. Schedule expressions are at(yyyy-mm-ddThh:mm:ss), read in
// ScheduleExpressionTimezone (UTC or an IANA name), and rate(N
// minutes|hours|days); cron() is refused with a ValidationException that
// says the simulator does not model it. Tags, KMS and the parameters of
// ECS, SQS and other targets are kept but have no effect, and Scheduler's
// own API calls are not recorded in CloudTrail.
//
// Schedules fire only when [Server.FireDueSchedules] is called (or POST
// /_sim/scheduler/fire, or the ec2sim command's -fire-schedules), at the
// time on Options.Now, with no 60-second jitter and no flexible window:
// an event fires as soon as it is due. A rate schedule fires one period
// after it is created or updated, or at its StartDate, and stops at its
// EndDate; occurrences missed between calls are not made up. Each call is
// also the next retry of every failed event, until the target's
// RetryPolicy (185 retries within 86400 seconds by default) is used up;
// the event is then reported dead-lettered if the target has a
// DeadLetterConfig, and dropped if not. A schedule with nothing left to
// run (an at() schedule once its event succeeded or was given up on, a
// rate schedule past its EndDate) is deleted if its ActionAfterCompletion
// is DELETE. The universal targets
// arn:aws:scheduler:::aws-sdk:ec2:revokeSecurityGroupIngress,
// …:ec2:authorizeSecurityGroupIngress and …:ssm:terminateSession apply
// their Input (JSON named as the SDKs name the API's members, e.g.
// {"GroupId": "sg-…", "SecurityGroupRuleIds": ["sgr-…"]} or
// {"SessionId": "…"}) to the simulator's own EC2 or Session Manager state,
// with the same validation, errors, faults (but not latency) and
// CloudTrail record as a call over HTTP, made from scheduler.amazonaws.com
// by an STS session of the target's RoleArn
// (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, SESSION a hash of the
// schedule's ARN, with an ASIA access key the server adds as an
// identity). Their errors are [TargetError]s, so
// revoking a rule that is already gone fails honestly with
// InvalidSecurityGroupRuleId.NotFound and is retried. Any other target
// calls [Options.Invoke].
//
// # Faults
//
// [Server.SetFaults] injects throttling (RequestLimitExceeded, HTTP 503),
// server errors (InternalError, HTTP 500), lost responses (the action takes
// effect but the client sees InternalError) and latency, for all actions
// or some, drawn from a seeded sequence; they apply to CloudTrail's
// LookupEvents too (ThrottlingException, InternalFailure). [Server.Calls]
// counts the requests received per action, retries included.
//
// # Control endpoints
//
// Paths under /_sim/ are the simulator's own, for tests in another
// process: GET and POST /_sim/faults (JSON; latency as "250ms"), GET
// /_sim/rules?region=&group= (a JSON snapshot of ingress rules, as
// [Server.Rules]), GET /_sim/calls (requests per action), GET and POST
// /_sim/cloudtrail (CloudTrail's delivery delay, as {"delay": "5m"}), GET
// and POST /_sim/throttle (request throttling: {"scale": 1} turns on EC2's
// default buckets, {"buckets": {…}} any, {"off": true} turns it off; GET
// also counts the requests throttled per action) and
// POST /_sim/scheduler/fire (fires due schedules, as
// [Server.FireDueSchedules], and answers their runs as JSON).
//
// # The demo fleet
//
// [DemoFleet] is an account in us-east-1 with VPC vpc-0a1b2c3d4e5f60718
// (not the region's default VPC, which the simulator adds), instances web-1 (i-0a0b0c0d0e0f00001) and web-2 (i-0a0b0c0d0e0f00002),
// both env=dev and with SSH host keys, and db-1 (i-0a0b0c0d0e0f00003,
// env=prod, no host keys); all three have an online SSM agent. Grants go in the latch-managed groups
// web-latch (sg-0f00dcafe0000b001, on web-1 and web-2) and db-latch
// (sg-0f00dcafe0000d001, on db-1); the groups default
// (sg-0d1e2f3a4b5c6d7e8) and app (sg-0a11ce5e0000a0001, HTTPS from
// anywhere) are not managed.
//
// # Concurrency
//
// A Server is safe for concurrent use. One mutex guards the whole account,
// so every action is atomic and sees every earlier one.
package ec2sim
