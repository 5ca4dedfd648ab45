package ec2sim

// Network interfaces and attaching security groups to them. An instance
// has its primary interface (device index 0; instance.eniID and groupIDs)
// and optionally more (instance.extraENIs: a fleet's interfaces:, or
// Server.AddInterface). ModifyInstanceAttribute with GroupId.N replaces
// the groups of the primary interface, and refuses an instance with
// several interfaces, as EC2 does ("specify an interface ID for the
// operation instead"); ModifyNetworkInterfaceAttribute with
// SecurityGroupId.N replaces those of any interface. Other attributes of
// either call are not modelled (UnsupportedOperation).

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Codes of the attach calls.
const (
	CodeInvalidInstanceID                 = "InvalidInstanceID"
	CodeIncorrectInstanceState            = "IncorrectInstanceState"
	CodeInvalidNetworkInterfaceIDNotFound = "InvalidNetworkInterfaceID.NotFound"
	CodeInvalidNetworkInterfaceMalformed  = "InvalidNetworkInterfaceID.Malformed"
	CodeGroupsPerInterfaceLimitExceeded   = "SecurityGroupsPerInterfaceLimitExceeded"
)

// maxGroupsPerInterface is EC2's default quota of security groups per
// network interface.
const maxGroupsPerInterface = 5

// eni is a network interface beyond an instance's primary one.
type eni struct {
	id          string
	deviceIndex int
	privateIP   netip.Addr
	groupIDs    []string
}

// interfaces are the instance's interfaces, the primary first, as values:
// change groups with setInterfaceGroups.
func (in *instance) interfaces() []eni {
	out := []eni{{id: in.eniID, deviceIndex: 0, privateIP: in.privateIP, groupIDs: in.groupIDs}}
	for _, e := range in.extraENIs {
		out = append(out, *e)
	}
	return out
}

// allGroupIDs are the groups of all its interfaces, each once, in order.
func (in *instance) allGroupIDs() []string {
	var out []string
	for _, nic := range in.interfaces() {
		for _, id := range nic.groupIDs {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// eniIDs are the IDs of all its interfaces.
func (in *instance) eniIDs() []string {
	var out []string
	for _, nic := range in.interfaces() {
		out = append(out, nic.id)
	}
	return out
}

// setInterfaceGroups sets the groups of the interface at index i of
// interfaces().
func (in *instance) setInterfaceGroups(i int, groups []string) {
	if i == 0 {
		in.groupIDs = groups
		return
	}
	in.extraENIs[i-1].groupIDs = groups
}

// findENI finds the instance an interface is attached to and its index in
// interfaces().
func (r *region) findENI(id string) (*instance, int, *apiError) {
	if !validID(id, "eni") {
		return nil, 0, errf(CodeInvalidNetworkInterfaceMalformed, "Invalid id: %q (expecting \"eni-...\")", id)
	}
	for _, in := range r.instances {
		if in.state == "terminated" {
			continue
		}
		for i, nic := range in.interfaces() {
			if nic.id == id {
				return in, i, nil
			}
		}
	}
	return nil, 0, errf(CodeInvalidNetworkInterfaceIDNotFound, "The networkInterface ID '%s' does not exist", id)
}

// interfaceGroups validates the groups a request gives an interface of in:
// at least one, at most five, each existing and in the instance's VPC.
// Duplicates count once.
func (r *region) interfaceGroups(in *instance, ids []string, param string) ([]string, *apiError) {
	if len(ids) == 0 {
		return nil, missing(param)
	}
	var out []string
	for _, id := range ids {
		g, err := r.group(id)
		if err != nil {
			return nil, err
		}
		if g.vpcID != in.vpcID {
			return nil, errf(CodeInvalidParameter, "Security group %s and subnet %s belong to different networks.", g.id, in.subnetID)
		}
		if !slices.Contains(out, g.id) {
			out = append(out, g.id)
		}
	}
	if len(out) > maxGroupsPerInterface {
		return nil, errf(CodeGroupsPerInterfaceLimitExceeded,
			"The maximum number of security groups per interface has been reached. (%d, the limit is %d)", len(out), maxGroupsPerInterface)
	}
	return out, nil
}

// unsupportedAttributes refuses what these calls carry beside groups.
func unsupportedAttributes(p params, action string, allowed ...string) *apiError {
	for name := range p {
		base, _, _ := strings.Cut(name, ".")
		switch base {
		case "Action", "Version", "DryRun":
			continue
		}
		if !slices.Contains(allowed, base) {
			return errf(CodeUnsupportedOperation, "ec2sim's %s changes security groups only; %s is not modelled", action, base)
		}
	}
	return nil
}

// modifyInstanceAttribute replaces the groups of an instance's only
// interface (GroupId.N).
func (s *Server) modifyInstanceAttribute(r *region, p params) (response, *apiError) {
	id := p.str("InstanceId")
	switch {
	case id == "":
		return nil, missing("InstanceId")
	case !validID(id, "i"):
		return nil, errf(CodeInvalidInstanceIDMalformed, "Invalid id: %q (expecting \"i-...\")", id)
	}
	if err := unsupportedAttributes(p, "ModifyInstanceAttribute", "InstanceId", "GroupId"); err != nil {
		return nil, err
	}
	in, ok := r.instances[id]
	if !ok {
		return nil, errf(CodeInvalidInstanceIDNotFound, "The instance ID '%s' does not exist", id)
	}
	if in.state == "terminated" || in.state == "shutting-down" {
		return nil, errf(CodeIncorrectInstanceState, "The instance '%s' is not in a state from which it can be modified.", id)
	}
	if len(in.extraENIs) > 0 {
		return nil, errf(CodeInvalidInstanceID,
			"There are multiple interfaces attached to instance '%s'. Please specify an interface ID for the operation instead.", id)
	}
	groups, err := r.interfaceGroups(in, p.list("GroupId"), "GroupId")
	if err != nil {
		return nil, err
	}
	in.setInterfaceGroups(0, groups)
	return &returnResponse{Return: true}, nil
}

// modifyNetworkInterfaceAttribute replaces the groups of one interface
// (SecurityGroupId.N).
func (s *Server) modifyNetworkInterfaceAttribute(r *region, p params) (response, *apiError) {
	id := p.str("NetworkInterfaceId")
	if id == "" {
		return nil, missing("NetworkInterfaceId")
	}
	if err := unsupportedAttributes(p, "ModifyNetworkInterfaceAttribute", "NetworkInterfaceId", "SecurityGroupId"); err != nil {
		return nil, err
	}
	in, i, err := r.findENI(id)
	if err != nil {
		return nil, err
	}
	groups, err := r.interfaceGroups(in, p.list("SecurityGroupId"), "SecurityGroupId")
	if err != nil {
		return nil, err
	}
	in.setInterfaceGroups(i, groups)
	return &returnResponse{Return: true}, nil
}

// xmlInterfaces renders the instance's interfaces for DescribeInstances;
// the public address is the primary interface's.
func (s *Server) xmlInterfaces(r *region, in *instance) set[xmlNetworkInterface] {
	var out set[xmlNetworkInterface]
	for _, nic := range in.interfaces() {
		ip := nic.privateIP.String()
		var assoc *xmlAssociation
		if nic.deviceIndex == 0 {
			assoc = in.association(r.name)
		}
		out.Items = append(out.Items, xmlNetworkInterface{
			NetworkInterfaceID: nic.id,
			SubnetID:           in.subnetID,
			VpcID:              in.vpcID,
			OwnerID:            s.accountID(),
			Status:             "in-use",
			PrivateIPAddress:   ip,
			SourceDestCheck:    true,
			GroupSet:           r.groupIdentifiers(nic.groupIDs),
			Attachment: xmlAttachment{
				AttachmentID:        "eni-attach-" + strings.TrimPrefix(nic.id, "eni-"),
				DeviceIndex:         nic.deviceIndex,
				Status:              "attached",
				DeleteOnTermination: nic.deviceIndex == 0,
			},
			Association:           assoc,
			PrivateIPAddressesSet: set[xmlPrivateIP]{Items: []xmlPrivateIP{{ip, true, assoc}}},
			InterfaceType:         "interface",
		})
	}
	return out
}

// groupIdentifiers names groups by ID and name.
func (r *region) groupIdentifiers(ids []string) set[xmlGroupIdentifier] {
	var groups set[xmlGroupIdentifier]
	for _, id := range ids {
		name := ""
		if g, ok := r.groups[id]; ok {
			name = g.name
		}
		groups.Items = append(groups.Items, xmlGroupIdentifier{id, name})
	}
	return groups
}

// AddInterface attaches a new network interface to an instance, at the
// next device index, in groups (IDs in the instance's VPC), and returns
// its ID. It is the simulator's stand-in for CreateNetworkInterface and
// AttachNetworkInterface, which it does not model.
func (s *Server) AddInterface(region, instanceID string, groups ...string) (string, error) {
	s.lock()
	defer s.unlock()
	reg, ok := s.regions[region]
	var in *instance
	if ok {
		in = reg.instances[instanceID]
	}
	if in == nil {
		return "", fmt.Errorf("ec2sim: AddInterface: no instance %s in %s", instanceID, region)
	}
	ids, aerr := reg.interfaceGroups(in, groups, "groups")
	if aerr != nil {
		return "", fmt.Errorf("ec2sim: AddInterface %s: %s: %s", instanceID, aerr.Code, aerr.Message)
	}
	reserved := map[netip.Addr]bool{}
	for _, other := range reg.instances {
		for _, nic := range other.interfaces() {
			reserved[nic.privateIP] = true
		}
	}
	e := &eni{
		id: s.ids.resource("eni"), deviceIndex: len(in.extraENIs) + 1,
		privateIP: reg.freeAddress(reg.vpcs[in.vpcID], reserved), groupIDs: ids,
	}
	in.extraENIs = append(in.extraENIs, e)
	return e.id, nil
}

// trailAttach renders the requestParameters of the attach calls as
// CloudTrail does: the target and its new groupSet.
func trailAttach(rp map[string]any, action string, p params) {
	param, key := "GroupId", "instanceId"
	setStr(rp, p, "InstanceId", key)
	if action == "ModifyNetworkInterfaceAttribute" {
		param = "SecurityGroupId"
		setStr(rp, p, "NetworkInterfaceId", "networkInterfaceId")
	}
	var items []any
	for _, id := range p.list(param) {
		items = append(items, map[string]any{"groupId": id})
	}
	rp["groupSet"] = jsonList(items)
}

// resourceTypeENI is CloudTrail's resource type of a network interface.
const resourceTypeENI = "AWS::EC2::NetworkInterface"
