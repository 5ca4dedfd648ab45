package ec2sim

import (
	"maps"
	"time"
)

// EC2's API is eventually consistent: "the result of an API command you
// run that affects your Amazon EC2 resources might not be immediately
// visible to all subsequent commands you run" (EC2 API reference,
// "Eventual consistency"). With Options.DescribeLag the simulator models
// it where latch can meet it: DescribeSecurityGroupRules and the
// permissions DescribeSecurityGroups lists show each region's ingress
// rules as they were DescribeLag ago on the clock Options.Now. A new rule
// is missing from them (asked for by ID, it is NotFound), a revoked one is
// still there, and a rule's tags and fields are their old values, until
// the lag has passed. Everything else is immediate: the mutations
// themselves (EC2's duplicate check, revoke by ID, CreateTags on a new
// rule), DescribeTags, and the snapshot Server.Rules returns. Rules a
// fleet loads are visible at once.

// ruleChange records the state of one rule just before a mutation, so
// that a lagging describe can undo the changes it must not see yet.
type ruleChange struct {
	at     time.Time
	id     string
	before *rule // nil: the rule did not exist
}

// noteRule records rule id's state before a handler changes it (creates,
// revokes, tags or modifies it); it does nothing when DescribeLag is off.
// Caller holds s.mu.
func (s *Server) noteRule(r *region, id string) {
	if s.opts.DescribeLag <= 0 {
		return
	}
	now := s.now()
	s.trimRuleLog(r, now)
	var before *rule
	if ru, ok := r.rules[id]; ok {
		c := *ru
		c.tags = maps.Clone(ru.tags)
		before = &c
	}
	r.ruleLog = append(r.ruleLog, ruleChange{at: now, id: id, before: before})
}

// trimRuleLog forgets the changes every describe already sees.
func (s *Server) trimRuleLog(r *region, now time.Time) {
	cut := now.Add(-s.opts.DescribeLag)
	i := 0
	for i < len(r.ruleLog) && !r.ruleLog[i].at.After(cut) {
		i++
	}
	if i > 0 {
		r.ruleLog = append(r.ruleLog[:0:0], r.ruleLog[i:]...)
	}
}

// visibleRules are r's rules by ID as a describe sees them: r.rules itself
// unless changes made within DescribeLag must be undone. Caller holds
// s.mu, and must not modify the map.
func (s *Server) visibleRules(r *region) map[string]*rule {
	if s.opts.DescribeLag <= 0 {
		return r.rules
	}
	s.trimRuleLog(r, s.now())
	if len(r.ruleLog) == 0 {
		return r.rules
	}
	view := maps.Clone(r.rules)
	for i := len(r.ruleLog) - 1; i >= 0; i-- {
		c := r.ruleLog[i]
		if c.before == nil {
			delete(view, c.id)
		} else {
			view[c.id] = c.before
		}
	}
	return view
}
