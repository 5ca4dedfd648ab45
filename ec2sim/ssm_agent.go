package ec2sim

// Instances' SSM agents, and DescribeInstanceInformation, which lists the
// instances that have one (managed nodes). An instance has an agent when
// its fleet says so (agent:) or [Server.SetAgent] gives it one;
// RunInstances launches instances without.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Agent ping statuses, as DescribeInstanceInformation reports them.
const (
	PingOnline         = "Online"
	PingConnectionLost = "ConnectionLost"
	PingInactive       = "Inactive"
)

// DefaultAgentVersion is the agent version of an agent given none, and
// the one DescribeInstanceInformation calls the latest.
const DefaultAgentVersion = "3.3.1142.0"

const (
	defaultInfoResults = 10
	minInfoResults     = 5
	maxInfoResults     = 50
)

var agentVersionPattern = regexp.MustCompile(`^[0-9]{1,6}(\.[0-9]{1,6}){2,3}$`)

// Agent is an instance's SSM agent.
type Agent struct {
	// PingStatus is Online, ConnectionLost or Inactive; "" means Online.
	// Whatever it says, the agent of an instance that is not running is
	// reported ConnectionLost and cannot take sessions.
	PingStatus string
	// PlatformType is Linux, Windows or MacOS; "" means Linux.
	PlatformType string
	// PlatformName and PlatformVersion describe the operating system;
	// "" means one typical of PlatformType (Amazon Linux 2023, …).
	PlatformName, PlatformVersion string
	// Version is the agent's version, as 3.3.1142.0; "" means
	// DefaultAgentVersion.
	Version string
}

type agentState struct {
	Agent
	since time.Time // when PingStatus last changed: the last ping of an agent that is not online
}

// platforms are the platform types with a typical name and version each.
var platforms = map[string][2]string{
	"Linux":   {"Amazon Linux", "2023"},
	"Windows": {"Microsoft Windows Server 2022 Datacenter", "10.0.20348"},
	"MacOS":   {"macOS", "14.5"},
}

// normalize fills in a's defaults and checks it.
func (a Agent) normalize() (Agent, error) {
	if a.PingStatus == "" {
		a.PingStatus = PingOnline
	}
	if a.PlatformType == "" {
		a.PlatformType = "Linux"
	}
	if a.Version == "" {
		a.Version = DefaultAgentVersion
	}
	switch a.PingStatus {
	case PingOnline, PingConnectionLost, PingInactive:
	default:
		return a, fmt.Errorf("ping status %q: want Online, ConnectionLost or Inactive", a.PingStatus)
	}
	p, ok := platforms[a.PlatformType]
	if !ok {
		return a, fmt.Errorf("platform %q: want Linux, Windows or MacOS", a.PlatformType)
	}
	if a.PlatformName == "" {
		a.PlatformName = p[0]
	}
	if a.PlatformVersion == "" {
		a.PlatformVersion = p[1]
	}
	if !agentVersionPattern.MatchString(a.Version) {
		return a, fmt.Errorf("agent version %q: want dotted numbers such as %s", a.Version, DefaultAgentVersion)
	}
	return a, nil
}

// SetAgent gives an instance an SSM agent, or changes it (to take an agent
// offline, say); the zero Agent removes it, so the instance is no longer
// a managed node. Sessions already open are left alone.
func (s *Server) SetAgent(region, instanceID string, agent Agent) error {
	s.lock()
	defer s.unlock()
	reg, ok := s.regions[region]
	var in *instance
	if ok {
		in = reg.instances[instanceID]
	}
	if in == nil {
		return fmt.Errorf("ec2sim: SetAgent: no instance %s in %s", instanceID, region)
	}
	if agent == (Agent{}) {
		in.agent = nil
		return nil
	}
	a, err := agent.normalize()
	if err != nil {
		return fmt.Errorf("ec2sim: SetAgent %s: %w", instanceID, err)
	}
	since := s.now().UTC()
	if in.agent != nil && in.agent.PingStatus == a.PingStatus {
		since = in.agent.since
	}
	in.agent = &agentState{Agent: a, since: since}
	return nil
}

// pingStatus is the agent's status as SSM sees it: an instance that is not
// running cannot ping.
func (in *instance) pingStatus() string {
	if in.agent == nil {
		return ""
	}
	if in.state != "running" && in.agent.PingStatus == PingOnline {
		return PingConnectionLost
	}
	return in.agent.PingStatus
}

type infoFilter struct {
	Key    *string  `json:"Key"`
	Values []string `json:"Values"`
}

type legacyInfoFilter struct {
	Key      *string  `json:"key"`
	ValueSet []string `json:"valueSet"`
}

type describeInstanceInfoInput struct {
	InstanceInformationFilterList []legacyInfoFilter
	Filters                       []infoFilter
	MaxResults                    *int
	NextToken                     *string
}

type instanceInfoJSON struct {
	InstanceID       string       `json:"InstanceId"`
	PingStatus       string       `json:"PingStatus"`
	LastPingDateTime epochSeconds `json:"LastPingDateTime"`
	AgentVersion     string       `json:"AgentVersion"`
	IsLatestVersion  bool         `json:"IsLatestVersion"`
	PlatformType     string       `json:"PlatformType"`
	PlatformName     string       `json:"PlatformName"`
	PlatformVersion  string       `json:"PlatformVersion"`
	ResourceType     string       `json:"ResourceType"`
	IPAddress        string       `json:"IPAddress"`
	ComputerName     string       `json:"ComputerName"`
	SourceID         string       `json:"SourceId"`
	SourceType       string       `json:"SourceType"`
}

type describeInstanceInfoOutput struct {
	InstanceInformationList []instanceInfoJSON `json:"InstanceInformationList"`
	NextToken               string             `json:"NextToken,omitempty"`
}

// infoKeys are the filter keys of DescribeInstanceInformation, besides
// tag-key and tag:KEY (Filters only).
var infoKeys = []string{"InstanceIds", "AgentVersion", "PingStatus", "PlatformTypes", "ActivationIds", "IamRole", "ResourceType", "AssociationStatus"}

// describeInstanceInformation lists the region's managed nodes in launch
// order, every filter applying (AND).
func (s *Server) describeInstanceInformation(c *ssmCall, in describeInstanceInfoInput) (describeInstanceInfoOutput, *apiError) {
	out := describeInstanceInfoOutput{InstanceInformationList: []instanceInfoJSON{}}
	limit := defaultInfoResults
	if in.MaxResults != nil {
		if *in.MaxResults < minInfoResults || *in.MaxResults > maxInfoResults {
			return out, validationErr("maxResults", strconv.Itoa(*in.MaxResults), "Member must have value between 5 and 50")
		}
		limit = *in.MaxResults
	}
	filters := make([]infoFilter, 0, len(in.Filters)+len(in.InstanceInformationFilterList))
	for _, f := range in.InstanceInformationFilterList {
		if f.Key != nil && (strings.HasPrefix(*f.Key, "tag") || !slices.Contains(infoKeys, *f.Key)) {
			return out, errf(CodeSSMInvalidFilterKey, "The filter key %s is not valid in InstanceInformationFilterList.", *f.Key)
		}
		filters = append(filters, infoFilter{f.Key, f.ValueSet})
	}
	filters = append(filters, in.Filters...)
	var tests []func(*instance) bool
	var fp strings.Builder
	for _, f := range filters {
		test, aerr := infoTest(f)
		if aerr != nil {
			return out, aerr
		}
		tests = append(tests, test)
		fmt.Fprintf(&fp, "%s=%s\x00", *f.Key, strings.Join(f.Values, "\x01"))
	}
	after, fingerprint, aerr := pageStart(in.NextToken, "DescribeInstanceInformation", c.region, fp.String())
	if aerr != nil {
		return out, aerr
	}
	s.lock()
	defer s.unlock()
	reg, ok := s.regions[c.region]
	if !ok {
		return out, nil
	}
	var list []*instance
	for _, inst := range reg.instances {
		if inst.agent == nil || inst.state == "terminated" || inst.seq <= after {
			continue
		}
		if !slices.ContainsFunc(tests, func(t func(*instance) bool) bool { return !t(inst) }) {
			list = append(list, inst)
		}
	}
	sortBySeq(list, func(i *instance) int64 { return i.seq })
	if len(list) > limit {
		list = list[:limit]
		out.NextToken = pageToken(list[limit-1].seq, fingerprint)
	}
	now := s.now().UTC()
	for _, inst := range list {
		a := inst.agent
		status := inst.pingStatus()
		last := a.since
		if status == PingOnline {
			last = now
		}
		out.InstanceInformationList = append(out.InstanceInformationList, instanceInfoJSON{
			InstanceID: inst.id, PingStatus: status, LastPingDateTime: epochSeconds{last},
			AgentVersion: a.Version, IsLatestVersion: a.Version == DefaultAgentVersion,
			PlatformType: a.PlatformType, PlatformName: a.PlatformName, PlatformVersion: a.PlatformVersion,
			ResourceType: "EC2Instance", IPAddress: inst.privateIP.String(),
			ComputerName: "ip-" + strings.ReplaceAll(inst.privateIP.String(), ".", "-") + "." + computerDomain(c.region),
			SourceID:     inst.id, SourceType: "AWS::EC2::Instance",
		})
	}
	return out, nil
}

// computerDomain is the internal DNS domain EC2 gives a region's hosts.
func computerDomain(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

// infoTest checks one filter and returns the test an instance must pass.
func infoTest(f infoFilter) (func(*instance) bool, *apiError) {
	if f.Key == nil {
		return nil, validationErr("filters.member.key", nullValue, "Member must not be null")
	}
	key, vals := *f.Key, f.Values
	if len(vals) == 0 || len(vals) > 100 {
		return nil, errf(CodeSSMInvalidInstanceInfoFilter, "The filter %s needs 1 to 100 values.", key)
	}
	oneOf := func(v string) bool { return slices.Contains(vals, v) }
	badValue := func(allowed ...string) *apiError {
		for _, v := range vals {
			if !slices.Contains(allowed, v) {
				return errf(CodeSSMInvalidInstanceInfoFilter, "%s is not a valid value for filter %s (want one of %s).", v, key, strings.Join(allowed, ", "))
			}
		}
		return nil
	}
	switch {
	case key == "InstanceIds":
		for _, v := range vals {
			if !validID(v, "i") && !validID(v, "mi") {
				return nil, errf(CodeSSMInvalidInstanceID, "%s is not a valid instance ID.", v)
			}
		}
		return func(i *instance) bool { return oneOf(i.id) }, nil
	case key == "PingStatus":
		if aerr := badValue(PingOnline, PingConnectionLost, PingInactive); aerr != nil {
			return nil, aerr
		}
		return func(i *instance) bool { return oneOf(i.pingStatus()) }, nil
	case key == "PlatformTypes":
		if aerr := badValue("Linux", "Windows", "MacOS"); aerr != nil {
			return nil, aerr
		}
		return func(i *instance) bool { return oneOf(i.agent.PlatformType) }, nil
	case key == "ResourceType":
		if aerr := badValue("EC2Instance", "ManagedInstance"); aerr != nil {
			return nil, aerr
		}
		return func(*instance) bool { return oneOf("EC2Instance") }, nil
	case key == "AgentVersion":
		return func(i *instance) bool { return oneOf(i.agent.Version) }, nil
	case key == "ActivationIds", key == "IamRole", key == "AssociationStatus":
		// Not modelled: EC2 instances have no activation, and the
		// simulator neither instance profiles nor associations.
		return func(*instance) bool { return false }, nil
	case key == "tag-key":
		return func(i *instance) bool {
			return slices.ContainsFunc(vals, func(k string) bool { _, ok := i.tags[k]; return ok })
		}, nil
	case strings.HasPrefix(key, "tag:") && len(key) > len("tag:"):
		tag := key[len("tag:"):]
		return func(i *instance) bool { v, ok := i.tags[tag]; return ok && oneOf(v) }, nil
	}
	return nil, errf(CodeSSMInvalidFilterKey, "The filter key %s is not valid; valid keys are %s, tag-key and tag:KEY.", key, strings.Join(infoKeys, ", "))
}
