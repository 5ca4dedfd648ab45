package latch

import (
	"fmt"
	"time"
)

// The rule-tag contract: every rule latch opens carries these tags, so that
// any latch process can find and revoke it from AWS alone.
const (
	TagGrantID   = "latch:grant-id"   // the grant the rule serves (the latest-expiring, if shared)
	TagExpiresAt = "latch:expires-at" // RFC 3339 UTC, second precision
	TagRequester = "latch:requester"  // the identity that asked

	// TagManaged marks security groups latch may open; its value is "true".
	TagManaged = "latch:managed"
	// TagSSH marks instances latch may log people in to; its value is
	// "true". The server's IAM policy reads console output (host keys) and
	// pushes Instance Connect keys only on instances that carry it.
	TagSSH = "latch:ssh"
)

// FormatExpiry renders t as latch writes it onto rules.
func FormatExpiry(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ParseExpiry reads a latch:expires-at value.
func ParseExpiry(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse %s %q: %w", TagExpiresAt, s, err)
	}
	return t.UTC(), nil
}

// RuleTags returns the tags that describe g on its rule.
func RuleTags(g Grant) map[string]string {
	return map[string]string{
		TagGrantID:   string(g.ID),
		TagExpiresAt: FormatExpiry(g.ExpiresAt),
		TagRequester: g.Requester,
	}
}

// TagAdoptPlan marks a security group `latch adopt` created; its value is
// the plan's ID, so the group can be traced to its plan from AWS alone,
// and only such groups may be deleted by the adopt role.
const TagAdoptPlan = "latch:adopt-plan"
