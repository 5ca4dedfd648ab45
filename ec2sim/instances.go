package ec2sim

import (
	"strings"
	"time"
)

// instanceStates maps EC2 instance state names to their codes.
var instanceStates = map[string]int{
	"pending":       0,
	"running":       16,
	"shutting-down": 32,
	"terminated":    48,
	"stopping":      64,
	"stopped":       80,
}

type xmlGroupIdentifier struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	Status              string `xml:"status"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlPrivateIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	Primary          bool   `xml:"primary"`
}

type xmlNetworkInterface struct {
	NetworkInterfaceID    string                  `xml:"networkInterfaceId"`
	SubnetID              string                  `xml:"subnetId"`
	VpcID                 string                  `xml:"vpcId"`
	OwnerID               string                  `xml:"ownerId"`
	Status                string                  `xml:"status"`
	PrivateIPAddress      string                  `xml:"privateIpAddress"`
	SourceDestCheck       bool                    `xml:"sourceDestCheck"`
	GroupSet              set[xmlGroupIdentifier] `xml:"groupSet"`
	Attachment            xmlAttachment           `xml:"attachment"`
	PrivateIPAddressesSet set[xmlPrivateIP]       `xml:"privateIpAddressesSet"`
	InterfaceType         string                  `xml:"interfaceType"`
}

type xmlInstance struct {
	InstanceID          string                   `xml:"instanceId"`
	ImageID             string                   `xml:"imageId"`
	InstanceState       xmlInstanceState         `xml:"instanceState"`
	PrivateDNSName      string                   `xml:"privateDnsName"`
	InstanceType        string                   `xml:"instanceType"`
	LaunchTime          string                   `xml:"launchTime"`
	SubnetID            string                   `xml:"subnetId"`
	VpcID               string                   `xml:"vpcId"`
	PrivateIPAddress    string                   `xml:"privateIpAddress"`
	GroupSet            set[xmlGroupIdentifier]  `xml:"groupSet"`
	NetworkInterfaceSet set[xmlNetworkInterface] `xml:"networkInterfaceSet"`
	TagSet              set[xmlTag]              `xml:"tagSet"`
}

type xmlReservation struct {
	ReservationID string                  `xml:"reservationId"`
	OwnerID       string                  `xml:"ownerId"`
	GroupSet      set[xmlGroupIdentifier] `xml:"groupSet"`
	InstancesSet  set[xmlInstance]        `xml:"instancesSet"`
}

type describeInstancesResponse struct {
	meta
	ReservationSet set[xmlReservation] `xml:"reservationSet"`
	NextToken      string              `xml:"nextToken,omitempty"`
}

func (s *Server) xmlInstance(r *region, in *instance) xmlInstance {
	var groups set[xmlGroupIdentifier]
	for _, id := range in.groupIDs {
		name := ""
		if g, ok := r.groups[id]; ok {
			name = g.name
		}
		groups.Items = append(groups.Items, xmlGroupIdentifier{id, name})
	}
	ip := in.privateIP.String()
	dns := "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + internalDomain(r.name)
	nic := xmlNetworkInterface{
		NetworkInterfaceID: in.eniID,
		SubnetID:           in.subnetID,
		VpcID:              in.vpcID,
		OwnerID:            s.accountID(),
		Status:             "in-use",
		PrivateIPAddress:   ip,
		SourceDestCheck:    true,
		GroupSet:           groups,
		Attachment: xmlAttachment{
			AttachmentID:        "eni-attach-" + strings.TrimPrefix(in.eniID, "eni-"),
			Status:              "attached",
			DeleteOnTermination: true,
		},
		PrivateIPAddressesSet: set[xmlPrivateIP]{Items: []xmlPrivateIP{{ip, true}}},
		InterfaceType:         "interface",
	}
	return xmlInstance{
		InstanceID:          in.id,
		ImageID:             in.imageID,
		InstanceState:       xmlInstanceState{instanceStates[in.state], in.state},
		PrivateDNSName:      dns,
		InstanceType:        in.instanceType,
		LaunchTime:          in.launchTime.UTC().Format(time.RFC3339),
		SubnetID:            in.subnetID,
		VpcID:               in.vpcID,
		PrivateIPAddress:    ip,
		GroupSet:            groups,
		NetworkInterfaceSet: set[xmlNetworkInterface]{Items: []xmlNetworkInterface{nic}},
		TagSet:              tagSet(in.tags),
	}
}

// internalDomain is the private DNS suffix EC2 uses in a region.
func internalDomain(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

var instanceFields = fields[*instance]{
	"instance-id":         func(in *instance) []string { return []string{in.id} },
	"vpc-id":              func(in *instance) []string { return []string{in.vpcID} },
	"subnet-id":           func(in *instance) []string { return []string{in.subnetID} },
	"private-ip-address":  func(in *instance) []string { return []string{in.privateIP.String()} },
	"instance-state-name": func(in *instance) []string { return []string{in.state} },
	"instance.group-id":   func(in *instance) []string { return in.groupIDs },
	"network-interface.network-interface-id": func(in *instance) []string {
		return []string{in.eniID}
	},
}

// describeInstances lists instances, each in a reservation of its own.
func (s *Server) describeInstances(r *region, p params) (response, *apiError) {
	pg, err := p.paging()
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	if err := checkFilters(filters, instanceFields); err != nil {
		return nil, err
	}
	ids := p.list("InstanceId")
	if pg.max > 0 && len(ids) > 0 {
		return nil, errf(CodeInvalidParameterCombination,
			"The parameter instancesSet cannot be used with the parameter maxResults")
	}
	var candidates []*instance
	for _, id := range ids {
		if !validID(id, "i") {
			return nil, errf(CodeInvalidInstanceIDMalformed, "Invalid id: %q (expecting \"i-...\")", id)
		}
	}
	for _, id := range ids {
		in, ok := r.instances[id]
		if !ok {
			return nil, errf(CodeInvalidInstanceIDNotFound, "The instance ID '%s' does not exist", id)
		}
		candidates = append(candidates, in)
	}
	if len(ids) == 0 {
		for _, in := range r.instances {
			candidates = append(candidates, in)
		}
	}
	var matched []*instance
	seen := map[string]bool{}
	for _, in := range candidates {
		ok, err := match(filters, in, in.tags, instanceFields)
		if err != nil {
			return nil, err
		}
		if ok && !seen[in.id] {
			seen[in.id] = true
			matched = append(matched, in)
		}
	}
	sortBySeq(matched, func(in *instance) int64 { return in.seq })
	items, next := paginate(matched, func(in *instance) string { return seqKey(in.seq) }, pg)
	resp := &describeInstancesResponse{NextToken: next}
	for _, in := range items {
		resp.ReservationSet.Items = append(resp.ReservationSet.Items, xmlReservation{
			ReservationID: "r-" + strings.TrimPrefix(in.id, "i-"),
			OwnerID:       s.accountID(),
			InstancesSet:  set[xmlInstance]{Items: []xmlInstance{s.xmlInstance(r, in)}},
		})
	}
	return resp, nil
}
