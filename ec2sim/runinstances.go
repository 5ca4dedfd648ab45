package ec2sim

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// maxRunCount bounds MaxCount: far above what a test launches, far below
// what would make one call expensive. EC2's own bound is the account's
// vCPU quota, answered as InstanceLimitExceeded.
const maxRunCount = 100

// Error codes of the instance lifecycle actions.
const (
	CodeInvalidAMIIDMalformed    = "InvalidAMIID.Malformed"
	CodeInvalidSubnetIDMalformed = "InvalidSubnetID.Malformed"
	CodeInstanceLimitExceeded    = "InstanceLimitExceeded"
	CodeInvalidParameter         = "InvalidParameter"
)

// runTaggable are the resource types RunInstances may tag. Only the
// instance's tags are kept: volumes and network interfaces are not
// modelled as resources.
var runTaggable = map[string]bool{
	"instance": true, "volume": true, "network-interface": true, "spot-instances-request": true,
}

type runInstancesResponse struct {
	meta
	ReservationID string                  `xml:"reservationId"`
	OwnerID       string                  `xml:"ownerId"`
	GroupSet      set[xmlGroupIdentifier] `xml:"groupSet"`
	InstancesSet  set[xmlInstance]        `xml:"instancesSet"`
}

// runInstances launches MaxCount instances (the simulator always has the
// capacity, so never fewer) from any well-formed AMI ID. They are running
// at once, as every change in the simulator is visible at once, but the
// answer shows them pending, as EC2's does. Each gets the next free
// private address of its VPC and no public address.
func (s *Server) runInstances(r *region, p params) (response, *apiError) {
	image, ok := p.get("ImageId")
	if !ok || image == "" {
		return nil, missing("ImageId")
	}
	if !validID(image, "ami") {
		return nil, errf(CodeInvalidAMIIDMalformed, "Invalid id: %q (expecting \"ami-...\")", image)
	}
	minCount, okMin, err := p.integer("MinCount")
	if err != nil {
		return nil, err
	}
	if !okMin {
		return nil, missing("MinCount")
	}
	maxCount, okMax, err := p.integer("MaxCount")
	if err != nil {
		return nil, err
	}
	if !okMax {
		return nil, missing("MaxCount")
	}
	switch {
	case minCount < 1:
		return nil, invalidValue("MinCount", p.str("MinCount"), "It must be at least 1.")
	case maxCount < minCount:
		return nil, errf(CodeInvalidParameterValue, "Value (%d) for parameter MaxCount is invalid. It must be at least MinCount (%d).", maxCount, minCount)
	case minCount > maxRunCount:
		return nil, errf(CodeInstanceLimitExceeded, "You have requested more instances (%d) than your current instance limit of %d allows.", minCount, maxRunCount)
	}
	count := min(maxCount, maxRunCount)
	instanceType := p.str("InstanceType")
	if instanceType == "" {
		instanceType = "m1.small" // EC2's documented default
	}
	subnet := p.str("SubnetId")
	if subnet != "" && !validID(subnet, "subnet") {
		return nil, errf(CodeInvalidSubnetIDMalformed, "Invalid id: %q (expecting \"subnet-...\")", subnet)
	}

	var groups []*group
	// Groups come top-level, or with the primary interface (as AWS wants
	// them when NetworkInterface.1 is given).
	for _, id := range slices.Concat(p.list("SecurityGroupId"), p.list("NetworkInterface.1.SecurityGroupId")) {
		g, err := r.group(id)
		if err != nil {
			return nil, err
		}
		groups = append(groups, g)
	}
	for _, name := range p.list("SecurityGroup") {
		g := r.groupByName(r.defaultVPC, name)
		if g == nil {
			return nil, errf(CodeInvalidGroupNotFound, "The security group '%s' does not exist in default VPC '%s'", name, r.defaultVPC)
		}
		groups = append(groups, g)
	}
	vpcID := r.defaultVPC
	if len(groups) > 0 {
		vpcID = groups[0].vpcID
	}
	var groupIDs []string
	for _, g := range groups {
		if g.vpcID != vpcID {
			return nil, errf(CodeInvalidParameter, "Security groups %s and %s belong to different networks.", groups[0].id, g.id)
		}
		if !slices.Contains(groupIDs, g.id) {
			groupIDs = append(groupIDs, g.id)
		}
	}
	if len(groupIDs) == 0 {
		// No group: the VPC's default group, as in EC2, if the VPC has one.
		if g := r.groupByName(vpcID, "default"); g != nil {
			groupIDs = []string{g.id}
		}
	}

	// NetworkInterface.1 with AssociatePublicIpAddress asks for a public
	// address on the primary interface, as a launch into a public subnet
	// does; it is the only interface parameter modelled.
	public := p.str("NetworkInterface.1.AssociatePublicIpAddress") == "true"

	keyName, profileARN, aerr := s.launchIdentity(r, p)
	if aerr != nil {
		return nil, aerr
	}

	tags := map[string]string{}
	for _, m := range p.members("TagSpecification") {
		rt := p.str(m + ".ResourceType")
		if !runTaggable[rt] {
			return nil, errf(CodeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		for _, t := range p.tags(m + ".Tag") {
			if err := checkTag(t.key, t.value); err != nil {
				return nil, err
			}
			if rt == "instance" {
				tags[t.key] = t.value
			}
		}
	}
	if len(tags) > maxTags {
		return nil, errf(CodeTagLimitExceeded, "The maximum number of tags (%d) for a resource has been reached.", maxTags)
	}

	resp := &runInstancesResponse{ReservationID: s.ids.resource("r"), OwnerID: s.accountID()}
	launched := s.now().UTC().Truncate(1e9)
	if subnet == "" {
		subnet = s.ids.resource("subnet")
	}
	v := r.vpcs[vpcID]
	for range count {
		id := s.ids.resource("i")
		in := &instance{
			id: id, eniID: "eni-" + strings.TrimPrefix(id, "i-"), vpcID: vpcID, subnetID: subnet,
			privateIP: r.freeAddress(v, map[netip.Addr]bool{}), groupIDs: slices.Clone(groupIDs),
			state: "running", instanceType: instanceType, imageID: image,
			launchTime: launched, seq: s.nextSeq(), tags: maps.Clone(tags),
			keyName: keyName, profileARN: profileARN,
		}
		if public {
			in.publicIP = r.freePublicAddress()
		}
		r.instances[id] = in
		x := s.xmlInstance(r, in)
		x.InstanceState = xmlInstanceState{instanceStates["pending"], "pending"}
		resp.InstancesSet.Items = append(resp.InstancesSet.Items, x)
	}
	return resp, nil
}

type xmlStateChange struct {
	InstanceID    string           `xml:"instanceId"`
	CurrentState  xmlInstanceState `xml:"currentState"`
	PreviousState xmlInstanceState `xml:"previousState"`
}

type terminateInstancesResponse struct {
	meta
	InstancesSet set[xmlStateChange] `xml:"instancesSet"`
}

// terminateInstances ends instances at once (no shutting-down in between):
// they leave their security groups, so the groups can be deleted, and stay
// visible as terminated, as EC2 shows them for a while. It is all or
// nothing: one unknown ID fails the call.
func (s *Server) terminateInstances(r *region, p params) (response, *apiError) {
	ids := p.list("InstanceId")
	if len(ids) == 0 {
		return nil, missing("InstanceId")
	}
	var targets []*instance
	for _, id := range ids {
		if !validID(id, "i") {
			return nil, errf(CodeInvalidInstanceIDMalformed, "Invalid id: %q (expecting \"i-...\")", id)
		}
		in, ok := r.instances[id]
		if !ok {
			return nil, errf(CodeInvalidInstanceIDNotFound, "The instance ID '%s' does not exist", id)
		}
		targets = append(targets, in)
	}
	resp := &terminateInstancesResponse{}
	for _, in := range targets {
		prev := xmlInstanceState{instanceStates[in.state], in.state}
		in.state = "terminated"
		in.groupIDs, in.extraENIs = nil, nil
		resp.InstancesSet.Items = append(resp.InstancesSet.Items, xmlStateChange{
			InstanceID:    in.id,
			CurrentState:  xmlInstanceState{instanceStates["terminated"], "terminated"},
			PreviousState: prev,
		})
	}
	return resp, nil
}

// freePublicAddress picks a public IPv4 address no instance of r has, from
// 3.0.0.0/8 (one of AWS's own blocks; the simulator's addresses route
// nowhere). Caller holds s.mu.
func (r *region) freePublicAddress() netip.Addr {
	a := netip.MustParseAddr("3.0.0.10")
	for r.instanceWithPublicIP(a) != nil {
		a = a.Next()
	}
	return a
}
