package ec2sim

// EC2 launch templates and their versions: CreateLaunchTemplate,
// CreateLaunchTemplateVersion, ModifyLaunchTemplate (SetDefaultVersion),
// DescribeLaunchTemplates, DescribeLaunchTemplateVersions and
// DeleteLaunchTemplate. Of a version's data only KeyName, ImageId,
// InstanceType, SecurityGroupId.N, IamInstanceProfile and
// TagSpecification.N are kept; other members are accepted and dropped.
// Like EC2, the simulator does not check the data when it is stored (a
// key name that does not exist is only refused at launch).

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error codes of the launch template actions, spelled as EC2 spells them
// (a few end in "Exception").
const (
	CodeInvalidLTNameAlreadyExists = "InvalidLaunchTemplateName.AlreadyExistsException"
	CodeInvalidLTNameMalformed     = "InvalidLaunchTemplateName.MalformedException"
	CodeInvalidLTNameNotFound      = "InvalidLaunchTemplateName.NotFoundException"
	CodeInvalidLTIDMalformed       = "InvalidLaunchTemplateId.Malformed"
	CodeInvalidLTIDNotFound        = "InvalidLaunchTemplateId.NotFound"
	CodeInvalidLTIDVersionNotFound = "InvalidLaunchTemplateId.VersionNotFound"
)

// maxLTResults is the largest MaxResults of DescribeLaunchTemplates and
// DescribeLaunchTemplateVersions, which take 1 to 200 rather than EC2's
// usual 5 to 1000.
const maxLTResults = 200

var ltNameRE = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

type launchTemplate struct {
	id, name       string
	created        time.Time
	seq            int64
	tags           map[string]string
	defaultVersion int64
	versions       []*ltVersion // in version order; version n is versions[n-1]
}

func (t *launchTemplate) latest() *ltVersion { return t.versions[len(t.versions)-1] }

type ltVersion struct {
	number      int64
	description string
	created     time.Time
	data        ltData
}

// ltData is what the simulator keeps of a version's LaunchTemplateData.
type ltData struct {
	KeyName      string
	ImageID      string
	InstanceType string
	GroupIDs     []string
	ProfileARN   string
	ProfileName  string
	TagSpecs     []ltTagSpec
}

type ltTagSpec struct {
	ResourceType string
	Tags         map[string]string
}

func (r *region) templatesOf() map[string]*launchTemplate {
	if r.launchTemplates == nil {
		r.launchTemplates = map[string]*launchTemplate{}
	}
	return r.launchTemplates
}

// parseLTData reads LaunchTemplateData.*, starting from base (the source
// version's data, or nothing): members given replace base's.
func parseLTData(p params, base ltData) (ltData, *apiError) {
	const pre = "LaunchTemplateData."
	d := base
	d.GroupIDs = slices.Clone(base.GroupIDs)
	d.TagSpecs = slices.Clone(base.TagSpecs)
	if v, ok := p.get(pre + "KeyName"); ok {
		d.KeyName = v
	}
	if v, ok := p.get(pre + "ImageId"); ok {
		d.ImageID = v
	}
	if v, ok := p.get(pre + "InstanceType"); ok {
		d.InstanceType = v
	}
	if ids := p.list(pre + "SecurityGroupId"); len(ids) > 0 {
		d.GroupIDs = ids
	}
	arn, hasARN := p.get(pre + "IamInstanceProfile.Arn")
	name, hasName := p.get(pre + "IamInstanceProfile.Name")
	if hasARN || hasName {
		d.ProfileARN, d.ProfileName = arn, name
	}
	if specs := p.members(pre + "TagSpecification"); len(specs) > 0 {
		d.TagSpecs = nil
		for _, m := range specs {
			ts := ltTagSpec{ResourceType: p.str(m + ".ResourceType"), Tags: map[string]string{}}
			for _, t := range p.tags(m + ".Tag") {
				if err := checkTag(t.key, t.value); err != nil {
					return d, err
				}
				ts.Tags[t.key] = t.value
			}
			d.TagSpecs = append(d.TagSpecs, ts)
		}
	}
	return d, nil
}

// hasLTData reports whether the request sent any LaunchTemplateData member.
func hasLTData(p params) bool {
	for k := range p {
		if strings.HasPrefix(k, "LaunchTemplateData.") || k == "LaunchTemplateData" {
			return true
		}
	}
	return false
}

type xmlLaunchTemplate struct {
	LaunchTemplateID     string      `xml:"launchTemplateId"`
	LaunchTemplateName   string      `xml:"launchTemplateName"`
	CreateTime           string      `xml:"createTime"`
	CreatedBy            string      `xml:"createdBy"`
	DefaultVersionNumber int64       `xml:"defaultVersionNumber"`
	LatestVersionNumber  int64       `xml:"latestVersionNumber"`
	TagSet               set[xmlTag] `xml:"tagSet"`
}

type xmlLTProfile struct {
	Arn  string `xml:"arn,omitempty"`
	Name string `xml:"name,omitempty"`
}

type xmlLTTagSpec struct {
	ResourceType string      `xml:"resourceType"`
	TagSet       set[xmlTag] `xml:"tagSet"`
}

type xmlLTData struct {
	IamInstanceProfile  *xmlLTProfile      `xml:"iamInstanceProfile,omitempty"`
	ImageID             string             `xml:"imageId,omitempty"`
	InstanceType        string             `xml:"instanceType,omitempty"`
	KeyName             string             `xml:"keyName,omitempty"`
	SecurityGroupIDSet  *set[string]       `xml:"securityGroupIdSet,omitempty"`
	TagSpecificationSet *set[xmlLTTagSpec] `xml:"tagSpecificationSet,omitempty"`
}

type xmlLTVersion struct {
	LaunchTemplateID   string    `xml:"launchTemplateId"`
	LaunchTemplateName string    `xml:"launchTemplateName"`
	VersionNumber      int64     `xml:"versionNumber"`
	VersionDescription string    `xml:"versionDescription,omitempty"`
	CreateTime         string    `xml:"createTime"`
	CreatedBy          string    `xml:"createdBy"`
	DefaultVersion     bool      `xml:"defaultVersion"`
	LaunchTemplateData xmlLTData `xml:"launchTemplateData"`
}

func (s *Server) createdBy() string { return "arn:aws:iam::" + s.accountID() + ":root" }

func (s *Server) xmlLaunchTemplate(t *launchTemplate) xmlLaunchTemplate {
	return xmlLaunchTemplate{
		LaunchTemplateID: t.id, LaunchTemplateName: t.name, CreateTime: t.created.Format(time.RFC3339),
		CreatedBy: s.createdBy(), DefaultVersionNumber: t.defaultVersion, LatestVersionNumber: t.latest().number,
		TagSet: tagSet(t.tags),
	}
}

func (s *Server) xmlLTVersion(t *launchTemplate, v *ltVersion) xmlLTVersion {
	d := v.data
	x := xmlLTData{ImageID: d.ImageID, InstanceType: d.InstanceType, KeyName: d.KeyName}
	if d.ProfileARN != "" || d.ProfileName != "" {
		x.IamInstanceProfile = &xmlLTProfile{Arn: d.ProfileARN, Name: d.ProfileName}
	}
	if len(d.GroupIDs) > 0 {
		x.SecurityGroupIDSet = &set[string]{Items: slices.Clone(d.GroupIDs)}
	}
	if len(d.TagSpecs) > 0 {
		x.TagSpecificationSet = &set[xmlLTTagSpec]{}
		for _, ts := range d.TagSpecs {
			x.TagSpecificationSet.Items = append(x.TagSpecificationSet.Items, xmlLTTagSpec{ts.ResourceType, tagSet(ts.Tags)})
		}
	}
	return xmlLTVersion{
		LaunchTemplateID: t.id, LaunchTemplateName: t.name, VersionNumber: v.number,
		VersionDescription: v.description, CreateTime: v.created.Format(time.RFC3339), CreatedBy: s.createdBy(),
		DefaultVersion: v.number == t.defaultVersion, LaunchTemplateData: x,
	}
}

type launchTemplateResponse struct {
	meta
	LaunchTemplate xmlLaunchTemplate `xml:"launchTemplate"`
}

// createLaunchTemplate makes a template whose version 1 is its default.
func (s *Server) createLaunchTemplate(r *region, p params) (response, *apiError) {
	name, ok := p.get("LaunchTemplateName")
	if !ok || name == "" {
		return nil, missing("LaunchTemplateName")
	}
	if !ltNameRE.MatchString(name) {
		return nil, errf(CodeInvalidLTNameMalformed,
			"A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.")
	}
	if !hasLTData(p) {
		return nil, missing("LaunchTemplateData")
	}
	if r.templateByName(name) != nil {
		return nil, errf(CodeInvalidLTNameAlreadyExists, "Launch template name already in use.")
	}
	tags, aerr := p.tagSpecs("launch-template")
	if aerr != nil {
		return nil, aerr
	}
	data, aerr := parseLTData(p, ltData{})
	if aerr != nil {
		return nil, aerr
	}
	now := s.now().UTC().Truncate(time.Second)
	t := &launchTemplate{id: s.ids.resource("lt"), name: name, created: now, seq: s.nextSeq(), tags: tags, defaultVersion: 1}
	t.versions = []*ltVersion{{number: 1, description: p.str("VersionDescription"), created: now, data: data}}
	r.templatesOf()[t.id] = t
	return &launchTemplateResponse{LaunchTemplate: s.xmlLaunchTemplate(t)}, nil
}

func (r *region) templateByName(name string) *launchTemplate {
	for _, t := range r.templatesOf() {
		if t.name == name {
			return t
		}
	}
	return nil
}

// namedTemplate finds the template named by LaunchTemplateId or
// LaunchTemplateName (exactly one of them).
func (r *region) namedTemplate(p params) (*launchTemplate, *apiError) {
	id, name := p.str("LaunchTemplateId"), p.str("LaunchTemplateName")
	switch {
	case id != "" && name != "":
		return nil, errf(CodeInvalidParameterCombination, "Specify either a launch template ID or a launch template name, not both.")
	case id != "":
		if !validID(id, "lt") {
			return nil, errf(CodeInvalidLTIDMalformed, "The specified launch template ID %q is malformed (expecting \"lt-...\").", id)
		}
		t, ok := r.templatesOf()[id]
		if !ok {
			return nil, errf(CodeInvalidLTIDNotFound, "The specified launch template, with template ID %s, does not exist.", id)
		}
		return t, nil
	case name != "":
		t := r.templateByName(name)
		if t == nil {
			return nil, errf(CodeInvalidLTNameNotFound, "The specified launch template, with template name %s, does not exist.", name)
		}
		return t, nil
	}
	return nil, missing("LaunchTemplateId or LaunchTemplateName")
}

// version resolves "$Latest", "$Default" or a number.
func (t *launchTemplate) version(v string) (*ltVersion, *apiError) {
	switch v {
	case "$Latest":
		return t.latest(), nil
	case "$Default":
		return t.versions[t.defaultVersion-1], nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > int64(len(t.versions)) {
		return nil, errf(CodeInvalidLTIDVersionNotFound, "Could not find launch template version %s for launch template %s.", v, t.id)
	}
	return t.versions[n-1], nil
}

type launchTemplateVersionResponse struct {
	meta
	LaunchTemplateVersion xmlLTVersion `xml:"launchTemplateVersion"`
}

// createLaunchTemplateVersion adds the next version, starting from
// SourceVersion's data when given. The default version does not change.
func (s *Server) createLaunchTemplateVersion(r *region, p params) (response, *apiError) {
	t, aerr := r.namedTemplate(p)
	if aerr != nil {
		return nil, aerr
	}
	if !hasLTData(p) {
		return nil, missing("LaunchTemplateData")
	}
	var base ltData
	if src, ok := p.get("SourceVersion"); ok && src != "" {
		v, aerr := t.version(src)
		if aerr != nil {
			return nil, aerr
		}
		base = v.data
	}
	data, aerr := parseLTData(p, base)
	if aerr != nil {
		return nil, aerr
	}
	v := &ltVersion{number: int64(len(t.versions)) + 1, description: p.str("VersionDescription"),
		created: s.now().UTC().Truncate(time.Second), data: data}
	t.versions = append(t.versions, v)
	return &launchTemplateVersionResponse{LaunchTemplateVersion: s.xmlLTVersion(t, v)}, nil
}

// modifyLaunchTemplate sets the default version.
func (s *Server) modifyLaunchTemplate(r *region, p params) (response, *apiError) {
	t, aerr := r.namedTemplate(p)
	if aerr != nil {
		return nil, aerr
	}
	if d, ok := p.get("SetDefaultVersion"); ok && d != "" {
		v, aerr := t.version(d)
		if aerr != nil {
			return nil, aerr
		}
		t.defaultVersion = v.number
	}
	return &launchTemplateResponse{LaunchTemplate: s.xmlLaunchTemplate(t)}, nil
}

// deleteLaunchTemplate deletes a template and all its versions.
func (s *Server) deleteLaunchTemplate(r *region, p params) (response, *apiError) {
	t, aerr := r.namedTemplate(p)
	if aerr != nil {
		return nil, aerr
	}
	delete(r.launchTemplates, t.id)
	return &launchTemplateResponse{LaunchTemplate: s.xmlLaunchTemplate(t)}, nil
}

type describeLaunchTemplatesResponse struct {
	meta
	LaunchTemplates set[xmlLaunchTemplate] `xml:"launchTemplates"`
	NextToken       string                 `xml:"nextToken,omitempty"`
}

var launchTemplateFields = fields[*launchTemplate]{
	"launch-template-name": func(t *launchTemplate) []string { return []string{t.name} },
	"create-time":          func(t *launchTemplate) []string { return []string{t.created.Format(time.RFC3339)} },
}

// describeLaunchTemplates lists templates, all or those named by
// LaunchTemplateId.N or LaunchTemplateName.N (each must exist), paged.
func (s *Server) describeLaunchTemplates(r *region, p params) (response, *apiError) {
	pg, aerr := p.pagingBetween(1, maxLTResults)
	if aerr != nil {
		return nil, aerr
	}
	filters, aerr := p.filters()
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkFilters(filters, launchTemplateFields); aerr != nil {
		return nil, aerr
	}
	ids, names := p.list("LaunchTemplateId"), p.list("LaunchTemplateName")
	var candidates []*launchTemplate
	if len(ids) == 0 && len(names) == 0 {
		candidates = slices.Collect(maps.Values(r.templatesOf()))
	} else if pg.max > 0 {
		return nil, errf(CodeInvalidParameterCombination, "The parameter LaunchTemplateIds or LaunchTemplateNames cannot be used with the parameter MaxResults")
	}
	for _, id := range ids {
		if !validID(id, "lt") {
			return nil, errf(CodeInvalidLTIDMalformed, "The specified launch template ID %q is malformed (expecting \"lt-...\").", id)
		}
		t, ok := r.templatesOf()[id]
		if !ok {
			return nil, errf(CodeInvalidLTIDNotFound, "At least one of the launch templates specified in the request does not exist.")
		}
		candidates = append(candidates, t)
	}
	for _, n := range names {
		t := r.templateByName(n)
		if t == nil {
			return nil, errf(CodeInvalidLTNameNotFound, "At least one of the launch templates specified in the request does not exist.")
		}
		candidates = append(candidates, t)
	}
	var matched []*launchTemplate
	seen := map[string]bool{}
	for _, t := range candidates {
		ok, aerr := match(filters, t, t.tags, launchTemplateFields)
		if aerr != nil {
			return nil, aerr
		}
		if ok && !seen[t.id] {
			seen[t.id] = true
			matched = append(matched, t)
		}
	}
	key := func(t *launchTemplate) string { return seqKey(t.seq) }
	slices.SortFunc(matched, func(a, b *launchTemplate) int { return strings.Compare(key(a), key(b)) })
	items, next := paginate(matched, key, pg)
	resp := &describeLaunchTemplatesResponse{NextToken: next}
	for _, t := range items {
		resp.LaunchTemplates.Items = append(resp.LaunchTemplates.Items, s.xmlLaunchTemplate(t))
	}
	return resp, nil
}

// ltv is one version of one template, for listing.
type ltv struct {
	t *launchTemplate
	v *ltVersion
}

func (x ltv) key() string { return seqKey(x.t.seq) + "/" + fmt.Sprintf("%010d", x.v.number) }

var ltVersionFields = fields[ltv]{
	"image-id":      func(x ltv) []string { return []string{x.v.data.ImageID} },
	"instance-type": func(x ltv) []string { return []string{x.v.data.InstanceType} },
	"iam-instance-profile": func(x ltv) []string {
		return []string{x.v.data.ProfileARN, x.v.data.ProfileName}
	},
	"is-default-version": func(x ltv) []string { return []string{strconv.FormatBool(x.v.number == x.t.defaultVersion)} },
	"create-time":        func(x ltv) []string { return []string{x.v.created.Format(time.RFC3339)} },
}

type describeLTVersionsResponse struct {
	meta
	LaunchTemplateVersionSet set[xmlLTVersion] `xml:"launchTemplateVersionSet"`
	NextToken                string            `xml:"nextToken,omitempty"`
}

// describeLaunchTemplateVersions has two forms, as in EC2. With a
// template (LaunchTemplateId or LaunchTemplateName) it lists that
// template's versions: those named in LaunchTemplateVersion.N ($Latest,
// $Default or numbers) or, without them, all, bounded by MinVersion and
// MaxVersion. Without a template it lists the $Latest and/or $Default
// version of every template in the region (numbers are refused), a
// version that is both listed once: so a caller reads every template's
// default and latest versions in a few paged calls.
func (s *Server) describeLaunchTemplateVersions(r *region, p params) (response, *apiError) {
	pg, aerr := p.pagingBetween(1, maxLTResults)
	if aerr != nil {
		return nil, aerr
	}
	filters, aerr := p.filters()
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkFilters(filters, ltVersionFields); aerr != nil {
		return nil, aerr
	}
	versions := p.list("LaunchTemplateVersion")
	var candidates []ltv
	if p.str("LaunchTemplateId") == "" && p.str("LaunchTemplateName") == "" {
		if len(versions) == 0 {
			return nil, errf(CodeMissingParameter,
				"The request must contain a launch template ID or name, or the launch template versions $Latest or $Default.")
		}
		for _, v := range versions {
			if v != "$Latest" && v != "$Default" {
				return nil, errf(CodeInvalidParameterCombination,
					"Version %q is not valid without a launch template ID or name: use $Latest or $Default.", v)
			}
		}
		for _, t := range r.templatesOf() {
			for _, v := range versions {
				ver, _ := t.version(v)
				candidates = append(candidates, ltv{t, ver})
			}
		}
	} else {
		t, aerr := r.namedTemplate(p)
		if aerr != nil {
			return nil, aerr
		}
		if len(versions) > 0 {
			for _, v := range versions {
				ver, aerr := t.version(v)
				if aerr != nil {
					return nil, aerr
				}
				candidates = append(candidates, ltv{t, ver})
			}
		} else {
			lo, hi := int64(1), int64(len(t.versions))
			for _, b := range []struct {
				name string
				into *int64
			}{{"MinVersion", &lo}, {"MaxVersion", &hi}} {
				if s, ok := p.get(b.name); ok && s != "" {
					n, err := strconv.ParseInt(s, 10, 64)
					if err != nil || n < 1 {
						return nil, invalidValue(b.name, s, "It must be a version number.")
					}
					*b.into = n
				}
			}
			for _, v := range t.versions {
				if lo <= v.number && v.number <= hi {
					candidates = append(candidates, ltv{t, v})
				}
			}
		}
	}
	var matched []ltv
	seen := map[string]bool{}
	for _, c := range candidates {
		ok, aerr := match(filters, c, nil, ltVersionFields)
		if aerr != nil {
			return nil, aerr
		}
		if ok && !seen[c.key()] {
			seen[c.key()] = true
			matched = append(matched, c)
		}
	}
	slices.SortFunc(matched, func(a, b ltv) int { return strings.Compare(a.key(), b.key()) })
	items, next := paginate(matched, ltv.key, pg)
	resp := &describeLTVersionsResponse{NextToken: next}
	for _, c := range items {
		resp.LaunchTemplateVersionSet.Items = append(resp.LaunchTemplateVersionSet.Items, s.xmlLTVersion(c.t, c.v))
	}
	return resp, nil
}
