package ec2sim

// CloudTrail's trails: CreateTrail, DescribeTrails, GetEventSelectors,
// PutEventSelectors and DeleteTrail, over the same JSON 1.1 dispatch as
// LookupEvents (cloudtrail_lookup.go). Trails belong to the account and
// have a home region; a multi-region trail also applies to every other
// region, where DescribeTrails shows it as a shadow trail (HomeRegion
// differs from the region asked). Not modelled: S3 delivery (the bucket is
// not checked), logging status (StartLogging/StopLogging; every trail
// logs), insight selectors, tags and organization trails' member
// accounts. Trail names are unique in the account, not per region.

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// CloudTrail's trail error codes.
const (
	CodeCTTrailNotFound          = "TrailNotFoundException"
	CodeCTTrailAlreadyExists     = "TrailAlreadyExistsException"
	CodeCTInvalidTrailName       = "InvalidTrailNameException"
	CodeCTInvalidHomeRegion      = "InvalidHomeRegionException"
	CodeCTInvalidEventSelectors  = "InvalidEventSelectorsException"
	CodeCTInvalidParameter       = "InvalidParameterException"
	CodeCTInvalidParamCombo      = "InvalidParameterCombinationException"
	CodeCTInvalidS3BucketName    = "InvalidS3BucketNameException"
	CodeCTAccessDenied           = "AccessDeniedException"
	maxBasicSelectors            = 5
	maxAdvancedSelectorsPerTrail = 500
)

var trailNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$`)

// trailConfig is one trail. Exactly one of basic and advanced is in use,
// as in CloudTrail; a new trail logs all management events.
type trailConfig struct {
	name, homeRegion   string
	s3Bucket, s3Prefix string
	multiRegion        bool
	includeGlobal      bool
	orgTrail           bool
	logValidation      bool
	custom             bool // selectors were set by PutEventSelectors (or a fleet)
	basic              []EventSelector
	advanced           []AdvancedEventSelector
	seq                int64
}

// EventSelector is a basic event selector, as CloudTrail's JSON spells it.
type EventSelector struct {
	ReadWriteType                 string         `json:"ReadWriteType"`
	IncludeManagementEvents       bool           `json:"IncludeManagementEvents"`
	DataResources                 []DataResource `json:"DataResources"`
	ExcludeManagementEventSources []string       `json:"ExcludeManagementEventSources"`
}

// DataResource is a basic selector's data event resource; kept, not used.
type DataResource struct {
	Type   string   `json:"Type,omitempty"`
	Values []string `json:"Values,omitempty"`
}

// AdvancedEventSelector is an advanced event selector.
type AdvancedEventSelector struct {
	Name           string          `json:"Name,omitempty"`
	FieldSelectors []FieldSelector `json:"FieldSelectors"`
}

// FieldSelector is one condition of an advanced event selector.
type FieldSelector struct {
	Field         string   `json:"Field"`
	Equals        []string `json:"Equals,omitempty"`
	StartsWith    []string `json:"StartsWith,omitempty"`
	EndsWith      []string `json:"EndsWith,omitempty"`
	NotEquals     []string `json:"NotEquals,omitempty"`
	NotStartsWith []string `json:"NotStartsWith,omitempty"`
	NotEndsWith   []string `json:"NotEndsWith,omitempty"`
}

func (s *Server) trailARN(t *trailConfig) string {
	return "arn:aws:cloudtrail:" + t.homeRegion + ":" + s.accountID() + ":trail/" + t.name
}

// appliesTo reports whether t logs region's events.
func (t *trailConfig) appliesTo(region string) bool { return t.homeRegion == region || t.multiRegion }

type trailJSON struct {
	Name                       string `json:"Name"`
	S3BucketName               string `json:"S3BucketName"`
	S3KeyPrefix                string `json:"S3KeyPrefix,omitempty"`
	IncludeGlobalServiceEvents bool   `json:"IncludeGlobalServiceEvents"`
	IsMultiRegionTrail         bool   `json:"IsMultiRegionTrail"`
	HomeRegion                 string `json:"HomeRegion,omitempty"`
	TrailARN                   string `json:"TrailARN"`
	LogFileValidationEnabled   bool   `json:"LogFileValidationEnabled"`
	HasCustomEventSelectors    *bool  `json:"HasCustomEventSelectors,omitempty"`
	HasInsightSelectors        *bool  `json:"HasInsightSelectors,omitempty"`
	IsOrganizationTrail        bool   `json:"IsOrganizationTrail"`
}

func (s *Server) trailJSON(t *trailConfig, describe bool) trailJSON {
	j := trailJSON{
		Name: t.name, S3BucketName: t.s3Bucket, S3KeyPrefix: t.s3Prefix, IncludeGlobalServiceEvents: t.includeGlobal,
		IsMultiRegionTrail: t.multiRegion, TrailARN: s.trailARN(t), LogFileValidationEnabled: t.logValidation,
		IsOrganizationTrail: t.orgTrail,
	}
	if describe {
		no := false
		j.HomeRegion, j.HasCustomEventSelectors, j.HasInsightSelectors = t.homeRegion, &t.custom, &no
	}
	return j
}

// trailOperations are the trail operations, by name; each runs with s.mu
// held and changes nothing when it fails.
var trailOperations = map[string]func(s *Server, region string, body []byte) (any, *apiError){
	"CreateTrail":       (*Server).createTrail,
	"DescribeTrails":    (*Server).describeTrails,
	"GetEventSelectors": (*Server).getEventSelectors,
	"PutEventSelectors": (*Server).putEventSelectors,
	"DeleteTrail":       (*Server).deleteTrail,
}

// decodeCT decodes a CloudTrail request body (an empty body is {}).
func decodeCT(body []byte, v any) *apiError {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errf(CodeCTSerialization, "The request body is not valid: %v", err)
	}
	return nil
}

// trailsLocked returns the trails map, made on first use. Caller holds s.mu.
func (s *Server) trailsLocked() map[string]*trailConfig {
	if s.trails == nil {
		s.trails = map[string]*trailConfig{}
	}
	return s.trails
}

// findTrail resolves a trail name or ARN as seen from region: a name
// finds a trail that applies to region; an ARN finds its trail anywhere.
func (s *Server) findTrail(region, ref string) (*trailConfig, *apiError) {
	if ref == "" {
		return nil, errf(CodeCTInvalidTrailName, "Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_); it must not be empty.")
	}
	if strings.HasPrefix(ref, "arn:") {
		for _, t := range s.trailsLocked() {
			if s.trailARN(t) == ref {
				return t, nil
			}
		}
		return nil, errf(CodeCTTrailNotFound, "Unknown trail: %s for the user: %s", ref, s.accountID())
	}
	if t, ok := s.trailsLocked()[ref]; ok && t.appliesTo(region) {
		return t, nil
	}
	if !trailNameRE.MatchString(ref) {
		return nil, errf(CodeCTInvalidTrailName, "Trail name %q is not valid: 3 to 128 letters, numbers, periods, underscores and dashes, starting and ending with a letter or number.", ref)
	}
	return nil, errf(CodeCTTrailNotFound, "Unknown trail: arn:aws:cloudtrail:%s:%s:trail/%s for the user: %s", region, s.accountID(), ref, s.accountID())
}

type createTrailInput struct {
	Name                       string `json:"Name"`
	S3BucketName               string `json:"S3BucketName"`
	S3KeyPrefix                string `json:"S3KeyPrefix"`
	IncludeGlobalServiceEvents *bool  `json:"IncludeGlobalServiceEvents"`
	IsMultiRegionTrail         bool   `json:"IsMultiRegionTrail"`
	EnableLogFileValidation    bool   `json:"EnableLogFileValidation"`
	IsOrganizationTrail        bool   `json:"IsOrganizationTrail"`
}

// createTrail makes a trail whose home is the calling region. The S3
// bucket is not checked beyond being named.
func (s *Server) createTrail(region string, body []byte) (any, *apiError) {
	var in createTrailInput
	if aerr := decodeCT(body, &in); aerr != nil {
		return nil, aerr
	}
	if !trailNameRE.MatchString(in.Name) || strings.Contains(in.Name, "..") {
		return nil, errf(CodeCTInvalidTrailName, "Trail name %q is not valid: 3 to 128 letters, numbers, periods, underscores and dashes, starting and ending with a letter or number.", in.Name)
	}
	if in.S3BucketName == "" {
		return nil, errf(CodeCTInvalidS3BucketName, "S3 bucket name must not be empty.")
	}
	if _, dup := s.trailsLocked()[in.Name]; dup {
		return nil, errf(CodeCTTrailAlreadyExists, "Trail %s already exists for customer: %s", in.Name, s.accountID())
	}
	if in.IncludeGlobalServiceEvents != nil && !*in.IncludeGlobalServiceEvents && in.IsMultiRegionTrail {
		return nil, errf(CodeCTInvalidParamCombo, "Multi-Region trail must include global service events.")
	}
	t := &trailConfig{
		name: in.Name, homeRegion: region, s3Bucket: in.S3BucketName, s3Prefix: in.S3KeyPrefix,
		multiRegion: in.IsMultiRegionTrail, includeGlobal: in.IncludeGlobalServiceEvents == nil || *in.IncludeGlobalServiceEvents,
		orgTrail: in.IsOrganizationTrail, logValidation: in.EnableLogFileValidation, seq: s.nextSeq(),
		basic: []EventSelector{{ReadWriteType: "All", IncludeManagementEvents: true}},
	}
	s.trailsLocked()[t.name] = t
	return s.trailJSON(t, false), nil
}

type describeTrailsInput struct {
	TrailNameList       []string `json:"trailNameList"`
	IncludeShadowTrails *bool    `json:"includeShadowTrails"`
}

// describeTrails lists the trails that apply to region: its own, and
// (unless includeShadowTrails is false) other regions' multi-region trails
// as shadow trails. trailNameList keeps those named (names or ARNs);
// names that match nothing are left out, not an error.
func (s *Server) describeTrails(region string, body []byte) (any, *apiError) {
	var in describeTrailsInput
	if aerr := decodeCT(body, &in); aerr != nil {
		return nil, aerr
	}
	shadows := in.IncludeShadowTrails == nil || *in.IncludeShadowTrails
	ts := slices.Collect(maps.Values(s.trailsLocked()))
	sortBySeq(ts, func(t *trailConfig) int64 { return t.seq })
	list := []trailJSON{}
	for _, t := range ts {
		if !t.appliesTo(region) || (t.homeRegion != region && !shadows) {
			continue
		}
		if len(in.TrailNameList) > 0 && !slices.Contains(in.TrailNameList, t.name) && !slices.Contains(in.TrailNameList, s.trailARN(t)) {
			continue
		}
		list = append(list, s.trailJSON(t, true))
	}
	return map[string]any{"trailList": list}, nil
}

type trailNameInput struct {
	TrailName string `json:"TrailName"`
}

func (s *Server) selectorsJSON(t *trailConfig) map[string]any {
	out := map[string]any{"TrailARN": s.trailARN(t)}
	if t.advanced != nil {
		out["AdvancedEventSelectors"] = t.advanced
	} else {
		out["EventSelectors"] = t.basic
	}
	return out
}

// getEventSelectors answers a trail's selectors, basic or advanced
// (whichever the trail uses).
func (s *Server) getEventSelectors(region string, body []byte) (any, *apiError) {
	var in trailNameInput
	if aerr := decodeCT(body, &in); aerr != nil {
		return nil, aerr
	}
	t, aerr := s.findTrail(region, in.TrailName)
	if aerr != nil {
		return nil, aerr
	}
	return s.selectorsJSON(t), nil
}

type putEventSelectorsInput struct {
	TrailName              string                  `json:"TrailName"`
	EventSelectors         []eventSelectorInput    `json:"EventSelectors"`
	AdvancedEventSelectors []AdvancedEventSelector `json:"AdvancedEventSelectors"`
}

type eventSelectorInput struct {
	ReadWriteType                 string         `json:"ReadWriteType"`
	IncludeManagementEvents       *bool          `json:"IncludeManagementEvents"`
	DataResources                 []DataResource `json:"DataResources"`
	ExcludeManagementEventSources []string       `json:"ExcludeManagementEventSources"`
}

// advancedFields are the fields an advanced selector may test.
var advancedFields = []string{"eventCategory", "eventSource", "eventName", "eventType", "readOnly",
	"resources.type", "resources.ARN", "errorCode", "userIdentity.arn", "sessionCredentialFromConsole", "vpcEndpointId"}

// putEventSelectors replaces a trail's selectors with basic or advanced
// ones (not both), from the trail's home region only.
func (s *Server) putEventSelectors(region string, body []byte) (any, *apiError) {
	var in putEventSelectorsInput
	if aerr := decodeCT(body, &in); aerr != nil {
		return nil, aerr
	}
	t, aerr := s.findTrail(region, in.TrailName)
	if aerr != nil {
		return nil, aerr
	}
	if t.homeRegion != region {
		return nil, errf(CodeCTInvalidHomeRegion, "This operation must be called from the trail's home region, %s.", t.homeRegion)
	}
	switch {
	case in.EventSelectors != nil && in.AdvancedEventSelectors != nil:
		return nil, errf(CodeCTInvalidParamCombo, "You cannot specify both EventSelectors and AdvancedEventSelectors.")
	case in.EventSelectors == nil && in.AdvancedEventSelectors == nil:
		return nil, errf(CodeCTInvalidParamCombo, "You must specify EventSelectors or AdvancedEventSelectors.")
	}
	if in.AdvancedEventSelectors != nil {
		if len(in.AdvancedEventSelectors) > maxAdvancedSelectorsPerTrail {
			return nil, errf(CodeCTInvalidEventSelectors, "A trail can have at most %d advanced event selectors.", maxAdvancedSelectorsPerTrail)
		}
		for i, a := range in.AdvancedEventSelectors {
			if len(a.FieldSelectors) == 0 {
				return nil, errf(CodeCTInvalidEventSelectors, "Advanced event selector %d has no field selectors.", i+1)
			}
			hasCategory := false
			for _, f := range a.FieldSelectors {
				if !slices.Contains(advancedFields, f.Field) {
					return nil, errf(CodeCTInvalidEventSelectors, "Field %q is not valid; valid fields are %s.", f.Field, strings.Join(advancedFields, ", "))
				}
				if f.Field == "eventCategory" {
					hasCategory = true
				}
			}
			if !hasCategory {
				return nil, errf(CodeCTInvalidEventSelectors, "Advanced event selector %d must have an eventCategory field selector.", i+1)
			}
		}
		t.advanced, t.basic = slices.Clone(in.AdvancedEventSelectors), nil
	} else {
		if len(in.EventSelectors) > maxBasicSelectors {
			return nil, errf(CodeCTInvalidEventSelectors, "A trail can have at most %d event selectors.", maxBasicSelectors)
		}
		var sel []EventSelector
		for _, e := range in.EventSelectors {
			rw := e.ReadWriteType
			switch rw {
			case "":
				rw = "All"
			case "All", "ReadOnly", "WriteOnly":
			default:
				return nil, errf(CodeCTInvalidEventSelectors, "ReadWriteType %q is not valid; valid values are ReadOnly, WriteOnly and All.", rw)
			}
			mgmt := e.IncludeManagementEvents == nil || *e.IncludeManagementEvents
			sel = append(sel, EventSelector{ReadWriteType: rw, IncludeManagementEvents: mgmt,
				DataResources: nonNil(e.DataResources), ExcludeManagementEventSources: nonNil(e.ExcludeManagementEventSources)})
		}
		t.basic, t.advanced = nonNil(sel), nil
	}
	t.custom = true
	return s.selectorsJSON(t), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type deleteTrailInput struct {
	Name string `json:"Name"`
}

// deleteTrail deletes a trail, from its home region only.
func (s *Server) deleteTrail(region string, body []byte) (any, *apiError) {
	var in deleteTrailInput
	if aerr := decodeCT(body, &in); aerr != nil {
		return nil, aerr
	}
	t, aerr := s.findTrail(region, in.Name)
	if aerr != nil {
		return nil, aerr
	}
	if t.homeRegion != region {
		return nil, errf(CodeCTInvalidHomeRegion, "This operation must be called from the trail's home region, %s.", t.homeRegion)
	}
	delete(s.trails, t.name)
	return struct{}{}, nil
}

// trailOperation runs one of the trail operations, or reports ok false
// for an operation that is not one of them.
func (s *Server) trailOperation(op, region string, body []byte) (out []byte, aerr *apiError, ok bool) {
	fn, ok := trailOperations[op]
	if !ok {
		return nil, nil, false
	}
	s.lock()
	defer s.unlock()
	v, aerr := fn(s, region, body)
	if aerr != nil {
		return nil, aerr, true
	}
	return marshalJSON(v), nil, true
}

// cloudTrailDenied is CloudTrail's refusal of an API Deny named. Caller
// need not hold s.mu.
func (s *Server) cloudTrailDenied(op string) *apiError {
	s.lock()
	denied := s.deniedLocked("cloudtrail:" + op)
	s.unlock()
	if !denied {
		return nil
	}
	return errf(CodeCTAccessDenied, "User: arn:aws:iam::%s:user/ec2sim is not authorized to perform: cloudtrail:%s (denied by ec2sim)", s.accountID(), op)
}

// credentialRegion is the region of r's SigV4 credential scope.
func credentialRegion(r *http.Request) string {
	region, _ := credentialScope(r)
	return region
}
