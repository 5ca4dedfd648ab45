// Package ec2sim is an in-memory Amazon EC2 that speaks the EC2 Query API
// (version 2016-11-15) over HTTP, so that the unmodified aws-sdk-go-v2 EC2
// client can be tested against it. It covers what latch uses: security
// groups and their ingress rules, rule tags, instances, and tags.
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
// # Actions
//
// AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress,
// DescribeSecurityGroupRules, CreateSecurityGroup, DeleteSecurityGroup,
// DescribeSecurityGroups, DescribeInstances, CreateTags, DeleteTags and
// DescribeTags. Authorize and revoke are atomic, as in EC2: when any
// permission in a call is invalid, duplicate or over the rule quota
// ([Options.RuleLimit], 60 per address family by default), nothing
// changes. The one exception is EC2's own: revoking by IpPermissions in a
// default VPC revokes what matches and lists the rest in
// unknownIpPermissionSet instead of answering InvalidPermission.NotFound. CIDRs are stored canonically (100.68.0.18/18 becomes
// 100.68.0.0/18). Describes page with MaxResults (5 to 1000) and
// NextToken; tokens name the last item returned, so concurrent changes
// never make a page repeat or skip an item that stays.
//
// Not modelled: egress rules (including the allow-all egress rule EC2 adds
// to new groups), rules whose source is a security group or prefix list
// (UnsupportedOperation), instance lifecycle actions (RunInstances and
// friends), subnets as resources, IAM authorization, and EC2's eventual
// consistency: every change is visible at once.
//
// # CloudTrail
//
// Every call to one of the six actions that change something
// (AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress,
// CreateSecurityGroup, DeleteSecurityGroup, CreateTags, DeleteTags) is
// recorded as a CloudTrail management event, failed calls included (with
// errorCode "Client.<code>", errorMessage and null responseElements), as
// CloudTrail records them. A call whose response is lost is recorded, since
// it took effect; one answered with an injected throttle or server error is
// not. The record has CloudTrail's fields: userIdentity from the access key
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
// revoked (AWS::EC2::SecurityGroupRule), and the resources it tagged.
// Requests signed with a key added with AddIdentity must be signed
// correctly; others are accepted. Other CloudTrail operations answer
// UnknownOperationException.
//
// Events reach LookupEvents [Options.CloudTrailDelay] after the call
// (measured on Options.Now, so a test can step past it), like CloudTrail's
// delivery delay of about five minutes; [Server.SetCloudTrailDelay]
// changes it for later calls.
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
// [Server.Rules]), GET /_sim/calls (requests per action) and GET and POST
// /_sim/cloudtrail (CloudTrail's delivery delay, as {"delay": "5m"}).
//
// # The demo fleet
//
// [DemoFleet] is an account in us-east-1 with VPC vpc-0a1b2c3d4e5f60718
// (not the region's default VPC, which the simulator adds), instances web-1 (i-0a0b0c0d0e0f00001) and web-2 (i-0a0b0c0d0e0f00002),
// both env=dev, and db-1 (i-0a0b0c0d0e0f00003, env=prod). Grants go in the
// latch-managed groups web-latch (sg-0f00dcafe0000b001, on web-1 and
// web-2) and db-latch (sg-0f00dcafe0000d001, on db-1); the groups default
// (sg-0d1e2f3a4b5c6d7e8) and app (sg-0a11ce5e0000a0001, HTTPS from
// anywhere) are not managed.
//
// # Concurrency
//
// A Server is safe for concurrent use. One mutex guards the whole account,
// so every action is atomic and sees every earlier one.
package ec2sim
