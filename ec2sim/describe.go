package ec2sim

import (
	"slices"
	"strings"
)

// listing is what a Describe* action knows about the kind of item it
// lists: the filters it takes besides the tag filters, the tags of an
// item, and its key. The key is unique to an item, orders the listing and
// is what NextToken names.
type listing[T any] struct {
	fields fields[T]
	tags   func(T) map[string]string
	key    func(T) string
}

// describe is the part every Describe* action shares. It parses paging
// and filters and rejects unknown filter names, then asks gather for the
// candidates (the ones the request named, or all of them), keeps each
// matching one once, and returns the requested page in key order with the
// token for the next. gather gets the page so it can refuse to combine
// MaxResults with explicit IDs, as EC2 does.
func describe[T any](p params, l listing[T], gather func(page) ([]T, *apiError)) ([]T, string, *apiError) {
	pg, err := p.paging()
	if err != nil {
		return nil, "", err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, "", err
	}
	if err := checkFilters(filters, l.fields); err != nil {
		return nil, "", err
	}
	candidates, err := gather(pg)
	if err != nil {
		return nil, "", err
	}
	var matched []T
	seen := map[string]bool{}
	for _, c := range candidates {
		ok, err := match(filters, c, l.tags(c), l.fields)
		if err != nil {
			return nil, "", err
		}
		if k := l.key(c); ok && !seen[k] {
			seen[k] = true
			matched = append(matched, c)
		}
	}
	slices.SortFunc(matched, func(a, b T) int { return strings.Compare(l.key(a), l.key(b)) })
	items, next := paginate(matched, l.key, pg)
	return items, next, nil
}
