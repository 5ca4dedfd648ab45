package ec2sim

import (
	"maps"
	"strings"
	"time"
)

// Bucket is one token bucket: it holds at most Size tokens and gains Refill
// tokens a second. Each request takes one token; a request that finds
// fewer than one is refused with RequestLimitExceeded.
type Bucket struct {
	Size   float64 `json:"size"`
	Refill float64 `json:"refill"` // tokens per second
}

// Throttle is EC2's request rate limiting, from "Request throttling for the
// Amazon EC2 API" (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html):
// every API has its own token bucket per account and region, whose size and
// refill rate depend on the API's category. [EC2Throttle] returns the
// documented defaults.
//
// Two simplifications: tokens flow back continuously rather than once a
// second, and EC2's separate resource token buckets (instances launched
// or terminated, not requests) are not modelled.
type Throttle struct {
	// NonMutating is for Describe*, Get*, List* and Search* actions.
	NonMutating Bucket `json:"non_mutating"`
	// Unfiltered is for the listed Describe actions (DescribeInstances,
	// DescribeSecurityGroups, …) when a request has neither a filter nor
	// pagination: EC2 takes their tokens from a second, smaller bucket.
	Unfiltered Bucket `json:"unfiltered"`
	// Mutating is for every other action not below.
	Mutating Bucket `json:"mutating"`
	// ResourceIntensive is for AuthorizeSecurityGroupIngress,
	// RevokeSecurityGroupIngress and the other actions EC2 lists as
	// resource-intensive.
	ResourceIntensive Bucket `json:"resource_intensive"`
	// Actions overrides the bucket of single actions, as EC2 does for its
	// "uncategorized actions" (CreateTags and DeleteTags among them).
	Actions map[string]Bucket `json:"actions,omitempty"`
}

// EC2Throttle returns EC2's documented default buckets (the page named on
// [Throttle], as of 2026): non-mutating 100 tokens refilled at 20 a
// second; unfiltered and unpaginated non-mutating 50 at 10; mutating 50 at
// 5; resource-intensive, which includes AuthorizeSecurityGroupIngress and
// RevokeSecurityGroupIngress, 50 at 5; CreateTags and DeleteTags, which
// EC2 lists apart, 100 at 10.
func EC2Throttle() *Throttle {
	return &Throttle{
		NonMutating:       Bucket{Size: 100, Refill: 20},
		Unfiltered:        Bucket{Size: 50, Refill: 10},
		Mutating:          Bucket{Size: 50, Refill: 5},
		ResourceIntensive: Bucket{Size: 50, Refill: 5},
		Actions: map[string]Bucket{
			"CreateTags": {Size: 100, Refill: 10},
			"DeleteTags": {Size: 100, Refill: 10},
		},
	}
}

// Scale returns a copy of t with every bucket's size and refill rate
// multiplied by f, as for an account whose limits AWS has raised.
func (t *Throttle) Scale(f float64) *Throttle {
	s := func(b Bucket) Bucket { return Bucket{Size: b.Size * f, Refill: b.Refill * f} }
	out := &Throttle{
		NonMutating:       s(t.NonMutating),
		Unfiltered:        s(t.Unfiltered),
		Mutating:          s(t.Mutating),
		ResourceIntensive: s(t.ResourceIntensive),
		Actions:           make(map[string]Bucket, len(t.Actions)),
	}
	for a, b := range t.Actions {
		out.Actions[a] = s(b)
	}
	return out
}

func (t *Throttle) clone() *Throttle {
	if t == nil {
		return nil
	}
	c := *t
	c.Actions = maps.Clone(t.Actions)
	return &c
}

// resourceIntensive are the actions EC2's throttling page lists as
// resource-intensive.
var resourceIntensive = map[string]bool{
	"AcceptVpcPeeringConnection":    true,
	"AuthorizeSecurityGroupIngress": true,
	"CancelSpotInstanceRequests":    true,
	"CreateKeyPair":                 true,
	"CreateVpcPeeringConnection":    true,
	"DeleteVpcPeeringConnection":    true,
	"RejectVpcPeeringConnection":    true,
	"RevokeSecurityGroupIngress":    true,
	"RequestSpotInstances":          true,
}

// unfilteredBucket are the Describe actions that take their tokens from
// the smaller bucket when called with neither a filter nor pagination.
var unfilteredBucket = map[string]bool{
	"DescribeInstances":            true,
	"DescribeInstanceStatus":       true,
	"DescribeNetworkInterfaces":    true,
	"DescribeSecurityGroups":       true,
	"DescribeSnapshots":            true,
	"DescribeSpotInstanceRequests": true,
	"DescribeVolumes":              true,
}

// bucketFor names the bucket a request of action with params p draws from
// (its key among one region's buckets) and its size and rate.
func (t *Throttle) bucketFor(action string, p params) (string, Bucket) {
	if b, ok := t.Actions[action]; ok {
		return action, b
	}
	if resourceIntensive[action] {
		return action, t.ResourceIntensive
	}
	for _, prefix := range []string{"Describe", "Get", "List", "Search"} {
		if strings.HasPrefix(action, prefix) {
			if unfilteredBucket[action] && !filteredOrPaged(p) {
				return action + " (unfiltered)", t.Unfiltered
			}
			return action, t.NonMutating
		}
	}
	return action, t.Mutating
}

// filteredOrPaged reports whether a Describe request names a filter or
// asks for pages.
func filteredOrPaged(p params) bool {
	if _, ok := p.get("MaxResults"); ok {
		return true
	}
	if _, ok := p.get("NextToken"); ok {
		return true
	}
	for k := range p {
		if strings.HasPrefix(k, "Filter.") {
			return true
		}
	}
	return false
}

// tokens is one bucket's state.
type tokens struct {
	n    float64
	last time.Time
}

// SetThrottle turns EC2's request throttling on with t's buckets, or off
// with nil. Every bucket starts full. It takes effect for requests that
// arrive after it returns.
func (s *Server) SetThrottle(t *Throttle) {
	t = t.clone()
	s.lock()
	defer s.unlock()
	s.throttle = t
	s.buckets = map[string]*tokens{}
}

// CurrentThrottle returns the throttle in force; nil when it is off.
func (s *Server) CurrentThrottle() *Throttle {
	s.lock()
	defer s.unlock()
	return s.throttle.clone()
}

// Throttled returns how many requests named action were refused with
// RequestLimitExceeded because their bucket was empty; "" counts every
// action. Faults injected with ThrottleRate are not counted.
func (s *Server) Throttled(action string) int {
	s.lock()
	defer s.unlock()
	if action != "" {
		return s.throttled[action]
	}
	n := 0
	for _, v := range s.throttled {
		n += v
	}
	return n
}

// takeToken takes one token for c from its bucket, and reports whether
// there was one; always true when throttling is off or c's action is not
// one of EC2's. Caller holds s.mu.
func (s *Server) takeToken(c *call) bool {
	if s.throttle == nil {
		return true
	}
	if _, ok := actions[c.action]; !ok {
		return true
	}
	name, b := s.throttle.bucketFor(c.action, c.params)
	key := s.accountID() + "/" + c.region + "/" + name
	now := s.now()
	tk, ok := s.buckets[key]
	if !ok {
		tk = &tokens{n: b.Size, last: now}
		s.buckets[key] = tk
	}
	if elapsed := now.Sub(tk.last); elapsed > 0 {
		tk.n = min(b.Size, tk.n+elapsed.Seconds()*b.Refill)
		tk.last = now
	}
	if tk.n < 1 {
		s.throttled[c.action]++
		return false
	}
	tk.n--
	return true
}
