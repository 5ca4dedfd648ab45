package scan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/latchdev/latch"
)

// Baseline is a set of accepted finding IDs: `latch scan --baseline FILE`
// leaves them out, so CI fails only on new problems.
type Baseline map[string]bool

// Without returns r less the findings baseline accepts, and how many it
// removed. What was not checked stays: a baseline accepts findings, not
// blind spots.
func (r Report) Without(baseline Baseline) (kept Report, accepted int) {
	kept = r
	kept.Findings = make([]Finding, 0, len(r.Findings))
	for _, f := range r.Findings {
		if baseline[f.ID] {
			accepted++
			continue
		}
		kept.Findings = append(kept.Findings, f)
	}
	return kept, accepted
}

var idPattern = regexp.MustCompile(`^LATCH[0-9]{3}(/[^\s/]+)+$`)

// ReadBaseline reads accepted finding IDs from a previous `latch scan
// --json` output (its findings' "id"), a previous `--format sarif` output
// (its results' partialFingerprints), or a plain list: one ID a line,
// blank lines and # comments ignored (also after an ID). Errors name the
// line or the JSON field at fault.
func ReadBaseline(r io.Reader) (Baseline, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return readJSONBaseline(data)
	}
	b := Baseline{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !idPattern.MatchString(line) {
			return nil, latch.Invalidf("baseline", "line %d: %q is not a finding ID; want CHECK/REGION/RESOURCE as a scan prints it, e.g. LATCH001/us-east-1/sgr-0123456789abcdef0", n, line)
		}
		b[line] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	return b, nil
}

func readJSONBaseline(data []byte) (Baseline, error) {
	var doc struct {
		Findings *[]struct {
			ID *string `json:"id"`
		} `json:"findings"`
		Runs *[]struct {
			Results []struct {
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, latch.Invalidf("baseline", "line %d: not JSON: %v", 1+bytes.Count(data[:se.Offset], []byte("\n")), err)
		}
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, latch.Invalidf("baseline", "field %s: want %s, found %s", te.Field, te.Type, te.Value)
		}
		return nil, latch.Invalidf("baseline", "not a scan's JSON: %v", err)
	}
	b := Baseline{}
	switch {
	case doc.Findings != nil:
		for i, f := range *doc.Findings {
			if f.ID == nil || !idPattern.MatchString(*f.ID) {
				got := "missing"
				if f.ID != nil {
					got = fmt.Sprintf("%q", *f.ID)
				}
				return nil, latch.Invalidf("baseline", "findings[%d].id is %s; want a finding ID such as LATCH001/us-east-1/sgr-0123456789abcdef0", i, got)
			}
			b[*f.ID] = true
		}
	case doc.Runs != nil:
		for i, run := range *doc.Runs {
			for k, res := range run.Results {
				id, ok := res.PartialFingerprints[fingerprintKey]
				if !ok || !idPattern.MatchString(id) {
					return nil, latch.Invalidf("baseline", "runs[%d].results[%d].partialFingerprints[%q] is missing or not a finding ID", i, k, fingerprintKey)
				}
				b[id] = true
			}
		}
	default:
		return nil, latch.Invalidf("baseline", `a JSON baseline needs "findings" (latch scan --json) or "runs" (latch scan --format sarif); found neither`)
	}
	return b, nil
}
