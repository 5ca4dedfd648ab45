package adopt

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/latchdev/latch"
)

// wireRule is how a rule is written into a plan and the audit log. The log
// is evidence kept for years and Undo reads it back, so its spelling is
// fixed here rather than left to the root type's Go field names.
type wireRule struct {
	ID          latch.RuleID      `json:"id"`
	Group       latch.GroupID     `json:"group"`
	Protocol    string            `json:"protocol"`
	FromPort    int               `json:"from_port"`
	ToPort      int               `json:"to_port"`
	CIDR        string            `json:"cidr,omitempty"`
	SourceGroup latch.GroupID     `json:"source_group,omitempty"`
	PrefixList  string            `json:"prefix_list,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

func toWire(r *latch.IngressRule) *wireRule {
	if r == nil {
		return nil
	}
	w := &wireRule{ID: r.ID, Group: r.GroupID, Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort,
		SourceGroup: r.SourceGroup, PrefixList: r.PrefixList, Description: r.Description, Tags: r.Tags}
	if r.CIDR.IsValid() {
		w.CIDR = r.CIDR.String()
	}
	return w
}

func (w *wireRule) rule() (*latch.IngressRule, error) {
	if w == nil {
		return nil, nil
	}
	r := &latch.IngressRule{ID: w.ID, GroupID: w.Group, Protocol: w.Protocol, FromPort: w.FromPort, ToPort: w.ToPort,
		SourceGroup: w.SourceGroup, PrefixList: w.PrefixList, Description: w.Description, Tags: w.Tags}
	if w.CIDR != "" {
		p, err := netip.ParsePrefix(w.CIDR)
		if err != nil {
			return nil, fmt.Errorf("rule %s: cidr: %w", w.ID, err)
		}
		r.CIDR = p
	}
	return r, nil
}

func marshalRule(r latch.IngressRule) string {
	b, _ := json.Marshal(toWire(&r)) // strings, ints and a map of strings always marshal
	return string(b)
}

func unmarshalRule(s string) (latch.IngressRule, error) {
	var w wireRule
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return latch.IngressRule{}, err
	}
	r, err := w.rule()
	if err != nil {
		return latch.IngressRule{}, err
	}
	return *r, nil
}

// stepJSON is Step with its rule in wire form.
type stepJSON Step

// MarshalJSON writes the step with its rule spelled as wireRule.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		stepJSON
		Rule *wireRule `json:"rule,omitempty"`
	}{stepJSON(s), toWire(s.Rule)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Step) UnmarshalJSON(b []byte) error {
	var v struct {
		stepJSON
		Rule *wireRule `json:"rule,omitempty"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r, err := v.Rule.rule()
	if err != nil {
		return err
	}
	*s = Step(v.stepJSON)
	s.Rule = r
	return nil
}
