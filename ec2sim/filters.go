package ec2sim

import "strings"

// filter is one Filter.N: the item matches when any of its values for
// name matches any of values. Filters are ANDed.
type filter struct {
	name   string
	values []string
}

func (p params) filters() ([]filter, *apiError) {
	var out []filter
	for _, m := range p.members("Filter") {
		name, ok := p.get(m + ".Name")
		if !ok || name == "" {
			return nil, missing(m + ".Name")
		}
		out = append(out, filter{name: name, values: p.list(m + ".Value")})
	}
	return out, nil
}

// fields maps a filter name to the values an item has for it.
type fields[T any] map[string]func(T) []string

// match applies filters to item. Tag filters (tag:KEY, tag-key,
// tag-value) work on every resource; the rest come from f. An unknown
// filter name is an error, as in EC2, so typos do not silently match all.
func match[T any](filters []filter, item T, tags map[string]string, f fields[T]) (bool, *apiError) {
	for _, fl := range filters {
		var have []string
		switch {
		case strings.HasPrefix(fl.name, "tag:"):
			v, ok := tags[strings.TrimPrefix(fl.name, "tag:")]
			if !ok {
				return false, nil
			}
			have = []string{v}
		case fl.name == "tag-key":
			for k := range tags {
				have = append(have, k)
			}
		case fl.name == "tag-value":
			for _, v := range tags {
				have = append(have, v)
			}
		default:
			get, ok := f[fl.name]
			if !ok {
				return false, errf(CodeInvalidParameterValue, "The filter '%s' is invalid", fl.name)
			}
			have = get(item)
		}
		if !anyMatch(fl.values, have) {
			return false, nil
		}
	}
	return true, nil
}

// checkFilters reports unknown filter names even when there is nothing to
// match them against.
func checkFilters[T any](filters []filter, f fields[T]) *apiError {
	for _, fl := range filters {
		if strings.HasPrefix(fl.name, "tag:") || fl.name == "tag-key" || fl.name == "tag-value" {
			continue
		}
		if _, ok := f[fl.name]; !ok {
			return errf(CodeInvalidParameterValue, "The filter '%s' is invalid", fl.name)
		}
	}
	return nil
}

func anyMatch(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if glob(p, v) {
				return true
			}
		}
	}
	return false
}

// glob matches EC2 filter wildcards: * is any run of characters, ? any one,
// and a backslash escapes the next character.
func glob(patternStr, str string) bool {
	pattern, s := []rune(patternStr), []rune(str)
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			c := pattern[px]
			switch {
			case c == '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case c == '?' && sx < len(s):
				px++
				sx++
				continue
			case c == '\\' && px+1 < len(pattern) && sx < len(s) && pattern[px+1] == s[sx]:
				px += 2
				sx++
				continue
			case c != '?' && c != '\\' && sx < len(s) && s[sx] == c:
				px++
				sx++
				continue
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}
