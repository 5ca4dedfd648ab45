package ec2sim

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// params is a request's form, with the helpers the EC2 Query protocol
// needs: lists are flattened as Name.1, Name.2 (1-based, possibly sparse),
// structures as Name.1.Field.
type params url.Values

// get returns the value of name and whether it was sent at all; EC2 treats
// an empty value and a missing one differently in a few places (DeleteTags).
func (p params) get(name string) (string, bool) {
	v, ok := p[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (p params) str(name string) string {
	v, _ := p.get(name)
	return v
}

// members returns the prefixes "name.N" of the list name, in index order.
func (p params) members(name string) []string {
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 {
			continue
		}
		seen[n] = true
	}
	ns := make([]int, 0, len(seen))
	for n := range seen {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = name + "." + strconv.Itoa(n)
	}
	return out
}

// list returns the values of the scalar list name (Name.1=a&Name.2=b).
func (p params) list(name string) []string {
	var out []string
	for _, m := range p.members(name) {
		if v, ok := p.get(m); ok {
			out = append(out, v)
		}
	}
	return out
}

// integer parses an optional integer parameter.
func (p params) integer(name string) (n int, ok bool, err *apiError) {
	v, ok := p.get(name)
	if !ok {
		return 0, false, nil
	}
	n, perr := strconv.Atoi(v)
	if perr != nil {
		return 0, true, invalidValue(name, v, "It must be an integer.")
	}
	return n, true, nil
}

func (p params) boolean(name string) bool {
	v, _ := p.get(name)
	return strings.EqualFold(v, "true")
}

// optBoolean parses an optional boolean parameter strictly, for actions
// whose booleans are their own (DryRun stays lenient: every action has it).
func (p params) optBoolean(name string) (bool, *apiError) {
	v, ok := p.get(name)
	switch {
	case !ok || strings.EqualFold(v, "false"):
		return false, nil
	case strings.EqualFold(v, "true"):
		return true, nil
	}
	return false, invalidValue(name, v, "It must be true or false.")
}

// tag is one Tag.N entry. hasValue distinguishes Tag.1.Value= (delete only
// when the value is empty) from no Value at all (delete whatever the value).
type tag struct {
	key, value string
	hasValue   bool
}

func (p params) tags(name string) []tag {
	var out []tag
	for _, m := range p.members(name) {
		v, has := p.get(m + ".Value")
		out = append(out, tag{key: p.str(m + ".Key"), value: v, hasValue: has})
	}
	return out
}

// tagSpecs collects the tags of TagSpecification.N for resourceType, the
// only type the action can tag; any other type is an error, as in EC2.
func (p params) tagSpecs(resourceType string) (map[string]string, *apiError) {
	out := map[string]string{}
	for _, m := range p.members("TagSpecification") {
		rt := p.str(m + ".ResourceType")
		if rt != resourceType {
			return nil, errf(CodeInvalidParameterValue,
				"'%s' is not a valid taggable resource type for this operation.", rt)
		}
		for _, t := range p.tags(m + ".Tag") {
			if err := checkTag(t.key, t.value); err != nil {
				return nil, err
			}
			out[t.key] = t.value
		}
	}
	if len(out) > maxTags {
		return nil, errf(CodeTagLimitExceeded, "The maximum number of tags (%d) for a resource has been reached.", maxTags)
	}
	return out, nil
}

// page is a parsed MaxResults/NextToken pair. max 0 means no limit.
type page struct {
	max   int
	after string
}

// paging parses MaxResults (which EC2 bounds to 5..1000 on the describes
// the simulator serves) and NextToken.
func (p params) paging() (page, *apiError) {
	return p.pagingBetween(5, 1000)
}

// pagingBetween parses MaxResults, which must be within lo..hi, and
// NextToken.
func (p params) pagingBetween(lo, hi int) (page, *apiError) {
	var pg page
	n, ok, err := p.integer("MaxResults")
	if err != nil {
		return pg, err
	}
	if ok {
		if n < lo || n > hi {
			return pg, invalidValue("MaxResults", strconv.Itoa(n), fmt.Sprintf("Parameter must be between %d and %d.", lo, hi))
		}
		pg.max = n
	}
	if tok, ok := p.get("NextToken"); ok && tok != "" {
		after, ok := decodeToken(tok)
		if !ok {
			return pg, errf(CodeInvalidPaginationToken, "The pagination token %q is invalid.", tok)
		}
		pg.after = after
	}
	return pg, nil
}

const tokenPrefix = "ec2sim1:"

// decodeToken returns the key a token from paginate names, and whether
// tok is such a token.
func decodeToken(tok string) (after string, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(raw), tokenPrefix)
}

// paginate returns the page of items (sorted by key, ascending) that
// follows pg.after, and the token for the next page. Tokens name the last
// key returned rather than an offset, so pages neither skip nor repeat
// items when others are added or removed between calls.
func paginate[T any](items []T, key func(T) string, pg page) ([]T, string) {
	start := 0
	if pg.after != "" {
		start, _ = slices.BinarySearchFunc(items, pg.after, func(it T, after string) int {
			if key(it) <= after {
				return -1
			}
			return 1
		})
	}
	items = items[start:]
	if pg.max == 0 || len(items) <= pg.max {
		return items, ""
	}
	items = items[:pg.max]
	next := base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + key(items[len(items)-1])))
	return items, next
}

// seqKey turns a creation sequence number into a key that sorts like it.
func seqKey(seq int64) string {
	return strconv.FormatInt(1e15+seq, 10)
}

func sortBySeq[T any](items []T, seq func(T) int64) {
	slices.SortFunc(items, func(a, b T) int { return cmp.Compare(seq(a), seq(b)) })
}
