package ec2sim

import "strings"

// maxTags is EC2's limit of user tags per resource.
const maxTags = 50

// checkTag applies EC2's limits on one tag.
func checkTag(key, value string) *apiError {
	switch {
	case key == "":
		return missing("Tag.Key")
	case len(key) > 128:
		return invalidValue("Tag.Key", key, "Tag keys must be at most 128 characters.")
	case strings.HasPrefix(strings.ToLower(key), "aws:"):
		return invalidValue("Tag.Key", key, "Tag keys starting with 'aws:' are reserved for internal use.")
	case len(value) > 256:
		return invalidValue("Tag.Value", value, "Tag values must be at most 256 characters.")
	}
	return nil
}

// taggable is a resource whose tags CreateTags, DeleteTags and DescribeTags
// reach.
type taggable struct {
	id           string
	resourceType string
	tags         map[string]string
}

// resource finds a taggable resource by ID. Each kind has its own NotFound
// code, as in EC2; an ID of no known kind is InvalidID.
func (r *region) resource(id string) (taggable, *apiError) {
	switch {
	case strings.HasPrefix(id, "sgr-"):
		if !validRuleID(id) {
			break
		}
		if ru, ok := r.rules[id]; ok {
			return taggable{id, "security-group-rule", ru.tags}, nil
		}
		if ru, ok := r.egress[id]; ok {
			return taggable{id, "security-group-rule", ru.tags}, nil
		}
		return taggable{}, errf(CodeInvalidRuleIDNotFound, "The security group rule ID '%s' does not exist", id)
	case strings.HasPrefix(id, "sg-"):
		if !validID(id, "sg") {
			break
		}
		if g, ok := r.groups[id]; ok {
			return taggable{id, "security-group", g.tags}, nil
		}
		return taggable{}, errf(CodeInvalidGroupNotFound, "The security group '%s' does not exist", id)
	case strings.HasPrefix(id, "i-"):
		if !validID(id, "i") {
			break
		}
		if in, ok := r.instances[id]; ok {
			return taggable{id, "instance", in.tags}, nil
		}
		return taggable{}, errf(CodeInvalidInstanceIDNotFound, "The instance ID '%s' does not exist", id)
	case strings.HasPrefix(id, "vpc-"):
		if !validID(id, "vpc") {
			break
		}
		if v, ok := r.vpcs[id]; ok {
			return taggable{id, "vpc", v.tags}, nil
		}
		return taggable{}, errf(CodeInvalidVpcIDNotFound, "The vpc ID '%s' does not exist", id)
	}
	return taggable{}, errf(CodeInvalidID, "The ID '%s' is not valid", id)
}

// taggedResources returns the resources named by ResourceId.N, all of
// which must exist before anything is changed.
func (r *region) taggedResources(p params) ([]taggable, *apiError) {
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return nil, missing("ResourceId")
	}
	out := make([]taggable, 0, len(ids))
	for _, id := range ids {
		t, err := r.resource(id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *Server) createTags(r *region, p params) (response, *apiError) {
	res, err := r.taggedResources(p)
	if err != nil {
		return nil, err
	}
	tags := p.tags("Tag")
	if len(tags) == 0 {
		return nil, missing("Tag")
	}
	for _, t := range tags {
		if err := checkTag(t.key, t.value); err != nil {
			return nil, err
		}
	}
	for _, rs := range res {
		n := len(rs.tags)
		added := map[string]bool{}
		for _, t := range tags {
			if _, ok := rs.tags[t.key]; !ok && !added[t.key] {
				added[t.key] = true
				n++
			}
		}
		if n > maxTags {
			return nil, errf(CodeTagLimitExceeded,
				"The maximum number of tags (%d) for resource '%s' has been reached.", maxTags, rs.id)
		}
	}
	for _, rs := range res {
		s.noteRule(r, rs.id)
		for _, t := range tags {
			rs.tags[t.key] = t.value
		}
	}
	return &returnResponse{Return: true}, nil
}

// deleteTags removes tags. A tag given with a value (even an empty one) is
// deleted only if the value matches; a tag given without one is deleted
// whatever its value; no tags at all deletes every tag.
func (s *Server) deleteTags(r *region, p params) (response, *apiError) {
	res, err := r.taggedResources(p)
	if err != nil {
		return nil, err
	}
	tags := p.tags("Tag")
	for _, rs := range res {
		s.noteRule(r, rs.id)
		if len(tags) == 0 {
			clear(rs.tags)
			continue
		}
		for _, t := range tags {
			if v, ok := rs.tags[t.key]; ok && (!t.hasValue || v == t.value) {
				delete(rs.tags, t.key)
			}
		}
	}
	return &returnResponse{Return: true}, nil
}

type xmlTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResponse struct {
	meta
	TagSet    set[xmlTagDescription] `xml:"tagSet"`
	NextToken string                 `xml:"nextToken,omitempty"`
}

// tagRow is one tag of one resource, the unit DescribeTags lists.
type tagRow struct {
	res      taggable
	key, val string
}

// tagListing orders rows by resource ID, then key.
var tagListing = listing[tagRow]{
	fields: fields[tagRow]{
		"resource-id":   func(t tagRow) []string { return []string{t.res.id} },
		"resource-type": func(t tagRow) []string { return []string{t.res.resourceType} },
		"key":           func(t tagRow) []string { return []string{t.key} },
		"value":         func(t tagRow) []string { return []string{t.val} },
	},
	tags: func(t tagRow) map[string]string { return t.res.tags },
	key:  func(t tagRow) string { return t.res.id + "\x00" + t.key },
}

func (s *Server) describeTags(r *region, p params) (response, *apiError) {
	items, next, err := describe(p, tagListing, func(page) ([]tagRow, *apiError) {
		var rows []tagRow
		for _, t := range r.allTaggable() {
			for k, v := range t.tags {
				rows = append(rows, tagRow{t, k, v})
			}
		}
		return rows, nil
	})
	if err != nil {
		return nil, err
	}
	resp := &describeTagsResponse{NextToken: next}
	for _, t := range items {
		resp.TagSet.Items = append(resp.TagSet.Items, xmlTagDescription{t.res.id, t.res.resourceType, t.key, t.val})
	}
	return resp, nil
}

func (r *region) allTaggable() []taggable {
	var out []taggable
	for id, v := range r.vpcs {
		out = append(out, taggable{id, "vpc", v.tags})
	}
	for id, g := range r.groups {
		out = append(out, taggable{id, "security-group", g.tags})
	}
	for id, ru := range r.rules {
		out = append(out, taggable{id, "security-group-rule", ru.tags})
	}
	for id, ru := range r.egress {
		out = append(out, taggable{id, "security-group-rule", ru.tags})
	}
	for id, in := range r.instances {
		out = append(out, taggable{id, "instance", in.tags})
	}
	return out
}
