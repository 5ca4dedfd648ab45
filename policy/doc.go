// Package policy decides who may ask latch for which access: it reads a
// policy file, validates it at load, and answers each request with
// allowed, needs-approval or denied, naming the rule that decided.
//
// # The file
//
// A policy is YAML: a version and a list of rules.
//
//	version: 1
//	rules:
//	  - name: dev-ssh                      # required, unique
//	    description: developers on dev boxes
//	    targets:                           # a target matches if ANY selector does
//	      instances: [i-0a0b0c0d0e0f00001]
//	      groups: [sg-0f00dcafe0000b001]
//	      tags: {env: dev}                 # ALL listed tags must be on the target
//	    who:                               # a caller matches if ANY entry does
//	      users: [alice@example.com]       # subject, case-insensitive
//	      groups: [developers]             # identity groups
//	      aws_principals: ["arn:aws:iam::123456789012:role/dev-*"]
//	    ports: [tcp/22, tcp/8000-8080, icmp/8, icmpv6/all]  # icmp TYPE[-CODE] or all
//	    duration: {default: 30m, max: 2h}  # max at most 12h
//	    approval: auto                     # or {approvals: 2, from: [sre, security]}
//	    networks: [198.51.100.0/24]        # optional: where requests may come from
//	    allow_prefix: false                # may the source be a network (inside networks)
//	    max_active: 3                      # active grants per requester; 0 = no limit
//	    reason_required: true              # the default
//	    pending_timeout: 1h                # the default; only with approvals
//	    break_glass: false                 # may a requester skip approval, with a reason
//	    ssh:                               # optional: lets `latch ssh` log in under the rule
//	      method: certificate              # the default; or instance-connect
//	      principals: [ec2-user]           # the OS users a login may use
//	    ssm:                               # optional: Session Manager sessions, which open no port
//	      documents: [shell, port-forward, ssh]  # or AWS names, e.g. AWS-StartSSHSession
//	      ports: [22, 5432, 8000-8100]     # tcp ports on the instance port-forward and ssh may reach
//
// Unknown keys, bad values and impossible combinations (allow_prefix
// without networks, a default longer than max, 0.0.0.0/0 in networks) are
// refused at load, each reported as file:line: field path: message.
//
// ssh says which short-lived credential `latch ssh` gets for a grant: a
// certificate from latch's SSH CA (valid for the grant's window and from
// its address only, for these principals), or a key pushed with EC2
// Instance Connect for one of these users. A rule without ssh gives no
// SSH login, though its grants still open the port.
//
// ssm lets a grant under the rule start AWS Systems Manager Session
// Manager sessions to the instance instead of opening a port: shell (an
// interactive shell, SSM-SessionManagerRunShell), port-forward (a local
// port to a port on the instance, AWS-StartPortForwardingSession) and ssh
// (ssh's ProxyCommand, AWS-StartSSHSession). ports says which tcp ports on
// the instance port-forward and ssh sessions may reach: it is required
// with port-forward, is [22] when the documents include ssh and it is left
// out, and is refused when shell is the only document. A rule with an ssm
// section may leave ports out, and then opens no security-group rule; a
// rule with neither is refused. Sessions open no port to an address, so
// allow_prefix does not apply to them; the rule's networks hold the
// address the request comes from; duration, reason, approval, break-glass
// and max_active apply too. Requesters need no
// ssm:StartSession of their own: latch starts the session for them.
//
// aws_principals are globs (* matches anything, including / and :; ?
// matches one character) matched against an aws-iam caller's ARN and, for
// an STS assumed-role ARN, also against the role's IAM ARN (without its
// path, which assumed-role ARNs do not carry). Match roles, not session
// names: whoever may assume a role chooses the session name.
//
// # Deciding
//
// A rule applies to a request when its targets match the target, its who
// matches the caller and one of its ports entries covers the protocol and
// the whole port range asked for (for icmp and icmpv6, the type and code:
// icmp/8 covers every code of type 8, icmp/all every type; icmp is for IPv4
// sources and icmpv6 for IPv6 ones, and a request mixing them is denied).
// Rules are considered in file order and
// the first that applies decides, even if it then denies (a duration over
// its max, a missing reason, a source outside its networks, too many active
// grants): file order is precedence, and [Policy.Explain] can always name
// the one rule that decides. No applicable rule means denied.
//
// A request for a Session Manager session (a [Query] with a Document) is
// matched by targets, who and the rule's ssm section instead of its ports:
// the section must list the document and, for port-forward and ssh, a
// range holding the port. Only instances are targets of sessions. A
// request to open a port never matches a rule by its ssm section, and a
// rule with only an ssm section never decides one.
//
// Policies are reviewed like code: [RunTests] runs a file of example
// requests and expected outcomes against a policy.
package policy
