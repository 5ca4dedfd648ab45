package scan

import (
	"fmt"
	"strings"

	"github.com/latchdev/latch"
)

// Severity ranks a finding. The zero value is below Info and names no
// severity, so that a forgotten one is seen rather than read as "info".
type Severity int

const (
	Info Severity = iota + 1
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{Info: "info", Low: "low", Medium: "medium", High: "high", Critical: "critical"}

// Severities lists every severity, lowest first.
func Severities() []Severity { return []Severity{Info, Low, Medium, High, Critical} }

func (s Severity) String() string {
	if s >= Info && s <= Critical {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText writes the severity's name, so JSON carries "high", not 4.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Info || s > Critical {
		return nil, fmt.Errorf("marshal %v: not a severity", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads "info", "low", "medium", "high" or "critical" (any case).
func ParseSeverity(s string) (Severity, error) {
	for _, v := range Severities() {
		if strings.EqualFold(strings.TrimSpace(s), v.String()) {
			return v, nil
		}
	}
	return 0, latch.Invalidf("severity", "%q is not a severity; want info, low, medium, high or critical", s)
}

// FailOn is --fail-on's value: the severity at or above which a scan
// fails (exit 3), or never. The zero FailOn fails on any finding, so that
// a caller who forgets to set it fails closed; DefaultFailOn is high.
// FailOn implements pflag.Value (Set, String, Type) for the CLI.
type FailOn struct {
	at    Severity
	never bool
}

// DefaultFailOn fails a scan on high and critical findings.
var DefaultFailOn = FailAt(High)

// FailNever never fails a scan, whatever it finds ("none" or "never").
var FailNever = FailOn{never: true}

// FailAt fails a scan on findings at or above s.
func FailAt(s Severity) FailOn { return FailOn{at: s} }

// ParseFailOn reads a severity, or "none"/"never".
func ParseFailOn(s string) (FailOn, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "never":
		return FailNever, nil
	}
	v, err := ParseSeverity(s)
	if err != nil {
		return FailOn{}, latch.Invalidf("fail-on", "%q is not a threshold; want info, low, medium, high, critical, or none (never fail)", s)
	}
	return FailAt(v), nil
}

func (f FailOn) String() string {
	switch {
	case f.never:
		return "none"
	case f.at == 0:
		return "info"
	}
	return f.at.String()
}

// Set implements pflag.Value.
func (f *FailOn) Set(s string) error {
	v, err := ParseFailOn(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Type implements pflag.Value.
func (f *FailOn) Type() string { return "severity" }

// Fails reports whether r has a finding that f fails on.
func (r Report) Fails(f FailOn) bool { return !f.never && r.Reaches(f.at) }
