// Package broker is latch's grant engine: it turns a validated request into a
// recorded grant and a tagged rule, and ends grants by revoking their rules.
//
// # Lifecycle
//
// Opening a grant: validate, record it as requested (intent before effect),
// authorize the rule with the tag contract, record the rule ID as active.
// Ending a grant: record it as revoking, revoke the rule by ID, record it as
// revoked or expired. A revoke that fails is retried with jittered
// exponential backoff, forever; after [Options.FailAfter] attempts the grant
// is marked revoke-failed and every further failure is logged at ERROR.
//
// # Shared rules
//
// Grants for the same opening (region, group, protocol, ports, source) share
// one rule, because EC2 refuses duplicates. The rule's tags describe the
// latest-expiring grant among them, and the rule is revoked only when the
// last of them ends.
//
// # Crashes
//
// Every step is idempotent: an existing identical rule is adopted, a missing
// rule on revoke counts as revoked. [Broker.Sweep] settles what a crash left
// half done: requested grants whose process died, and expired rules in AWS
// whether or not the store knows them.
package broker
