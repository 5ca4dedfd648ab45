package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchdev/latch"
)

// maxProblems caps how many problems one error lists; past it, a file is
// more wrong than a list can help with.
const maxProblems = 20

// A decoder walks a YAML node tree, collecting every problem it finds as
// "file:line: path: message", so one load reports them all. Both the policy
// and the test-file readers use it.
type decoder struct {
	file     string
	problems []problem
	webhooks []webhookRef // webhooks a policy names, for the server to check
	slacks   []slackRef   // Slack channels a policy names, for warnings
}

// problem is one thing wrong with a file, at a line (0 for the whole file).
type problem struct {
	line int
	text string
}

// failf records a problem at n. path is the field path, e.g. rules[1].ports[0].
func (d *decoder) failf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.whole(line, path+": "+fmt.Sprintf(format, args...))
}

// whole records a problem with the whole file, or at a line the YAML parser gave.
func (d *decoder) whole(line int, text string) {
	if line > 0 {
		d.problems = append(d.problems, problem{line, fmt.Sprintf("%s:%d: %s", d.file, line, text)})
		return
	}
	d.problems = append(d.problems, problem{0, d.file + ": " + text})
}

// err returns the problems found as one EINVALID error, in line order,
// or nil.
func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	slices.SortStableFunc(d.problems, func(a, b problem) int { return a.line - b.line })
	var lines []string
	for i, p := range d.problems {
		if i == maxProblems {
			lines = append(lines, fmt.Sprintf("... and %d more problems", len(d.problems)-maxProblems))
			break
		}
		lines = append(lines, p.text)
	}
	return &latch.Error{Code: latch.EINVALID, Message: strings.Join(lines, "\n")}
}

// document parses data as exactly one YAML document whose root is a
// mapping, and returns the root. Anchors and aliases are refused: a policy
// is read by people reviewing it, and an alias hides what a rule says (it is
// also how a small file expands into a huge one).
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.whole(0, "the file is empty")
		} else {
			d.syntax(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			d.syntax(err)
		} else {
			d.failf(&extra, "(document)", "only one YAML document is allowed; remove the second ---")
		}
		return nil
	}
	if len(doc.Content) != 1 || isNull(doc.Content[0]) {
		d.whole(0, "the file is empty")
		return nil
	}
	if a := findAlias(doc.Content[0]); a != nil {
		d.failf(a, "(document)", "YAML aliases (*name) are not supported; write the value out")
		return nil
	}
	return doc.Content[0]
}

// syntax records a YAML parser error, moving its line number to the front
// where editors and people look for it.
func (d *decoder) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, text, found := strings.Cut(rest, ": ")
		if n, convErr := strconv.Atoi(num); found && convErr == nil && n > 0 {
			d.whole(n, text)
			return
		}
	}
	d.whole(0, msg)
}

// findAlias returns the first alias node under n, or nil.
func findAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c); a != nil {
			return a
		}
	}
	return nil
}

// join extends a field path with a key.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index extends a field path with a list index.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// isNull reports whether n is absent or an explicit YAML null.
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// mapping checks that n is a mapping whose keys are all among known and
// none repeated, and returns its values by key. Null values are left out,
// so "key:" with nothing after it reads as absent. It returns nil if n is
// absent or not a mapping (the latter reported).
func (d *decoder) mapping(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.failf(n, path, "want a mapping (key: value lines), not %s", describe(n))
		return nil
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			d.failf(k, path, "a key must be a plain word, not %s", describe(k))
		case known != nil && !slices.Contains(known, k.Value):
			d.failf(k, path, "unknown key %q%s; want one of %s", k.Value, suggest(k.Value, known), strings.Join(known, ", "))
		case seen[k.Value]:
			d.failf(k, join(path, k.Value), "repeated; give each key once")
		default:
			seen[k.Value] = true
			if !isNull(v) {
				m[k.Value] = v
			}
		}
	}
	return m
}

// require returns m[key], reporting it as missing (at parent's line) if absent.
func (d *decoder) require(parent *yaml.Node, m map[string]*yaml.Node, path, key, want string) *yaml.Node {
	v := m[key]
	if v == nil {
		d.failf(parent, join(path, key), "required; want %s", want)
	}
	return v
}

// scalar returns n's text, reporting n if it is a list or mapping.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.failf(n, path, "want %s, not %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

// str returns the text of a scalar, "" if absent or wrong.
func (d *decoder) str(n *yaml.Node, path string) string {
	s, _ := d.scalar(n, path, "a string")
	return s
}

// list returns the items of a sequence; an absent list is nil. An empty
// list is reported: writing one is always a mistake in these files.
func (d *decoder) list(n *yaml.Node, path string) []*yaml.Node {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.failf(n, path, "want a list ([a, b] or lines starting with -), not %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.failf(n, path, "empty list; name at least one item or remove the key")
	}
	return n.Content
}

// strs returns a list of non-empty, distinct strings, each passed through
// check (which reports and returns false to drop an item).
func (d *decoder) strs(n *yaml.Node, path string, check func(n *yaml.Node, path, s string) bool) []string {
	var out []string
	for i, item := range d.list(n, path) {
		p := index(path, i)
		s, ok := d.scalar(item, p, "a string")
		switch {
		case !ok && !isNull(item): // reported by scalar
		case strings.TrimSpace(s) == "":
			d.failf(item, p, "empty; remove it or give a value")
		case slices.Contains(out, s):
			d.failf(item, p, "%q is listed twice", s)
		case check == nil || check(item, p, s):
			out = append(out, s)
		}
	}
	return out
}

// boolean returns a true/false scalar, def if absent.
func (d *decoder) boolean(n *yaml.Node, path string, def bool) bool {
	if isNull(n) {
		return def
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.failf(n, path, "want true or false, not %s", describe(n))
		return def
	}
	return b
}

// integer returns a whole-number scalar of at least min, 0 if absent.
func (d *decoder) integer(n *yaml.Node, path string, min int) int {
	if isNull(n) {
		return 0
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		d.failf(n, path, "want a whole number, not %s", describe(n))
		return 0
	}
	if i < min {
		d.failf(n, path, "%d is too small; want %d or more", i, min)
		return 0
	}
	return i
}

// duration returns a positive whole-second duration such as 30m, 0 if
// absent or wrong.
func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	s, ok := d.scalar(n, path, "a duration (e.g. 30m or 2h)")
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.failf(n, path, "%q is not a duration (want e.g. 30m or 2h)", s)
	case v <= 0:
		d.failf(n, path, "%q is not positive; want e.g. 30m or 2h", s)
	case v%time.Second != 0:
		d.failf(n, path, "%q has a fraction of a second; give whole seconds", s)
	default:
		return v
	}
	return 0
}

// describe names what a node is, for "want X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if len(n.Value) > 40 {
		return strconv.Quote(n.Value[:40] + "...")
	}
	return strconv.Quote(n.Value)
}

// suggest offers the known key closest to a misspelt one.
func suggest(key string, known []string) string {
	best, bestDist := "", 3 // further than two edits is not a typo
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
