package ec2sim

import (
	"maps"
	"net/netip"
	"slices"
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
	PrivateIPAddress string          `xml:"privateIpAddress"`
	Primary          bool            `xml:"primary"`
	Association      *xmlAssociation `xml:"association,omitempty"`
}

// xmlAssociation is the public address bound to a network interface (EC2's
// InstanceNetworkInterfaceAssociation).
type xmlAssociation struct {
	PublicIP      string `xml:"publicIp"`
	PublicDNSName string `xml:"publicDnsName"`
	IPOwnerID     string `xml:"ipOwnerId"`
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
	Association           *xmlAssociation         `xml:"association,omitempty"`
	PrivateIPAddressesSet set[xmlPrivateIP]       `xml:"privateIpAddressesSet"`
	InterfaceType         string                  `xml:"interfaceType"`
}

type xmlInstance struct {
	InstanceID          string                   `xml:"instanceId"`
	ImageID             string                   `xml:"imageId"`
	InstanceState       xmlInstanceState         `xml:"instanceState"`
	PrivateDNSName      string                   `xml:"privateDnsName"`
	DNSName             string                   `xml:"dnsName,omitempty"`
	InstanceType        string                   `xml:"instanceType"`
	LaunchTime          string                   `xml:"launchTime"`
	SubnetID            string                   `xml:"subnetId"`
	VpcID               string                   `xml:"vpcId"`
	PrivateIPAddress    string                   `xml:"privateIpAddress"`
	IPAddress           string                   `xml:"ipAddress,omitempty"`
	GroupSet            set[xmlGroupIdentifier]  `xml:"groupSet"`
	NetworkInterfaceSet set[xmlNetworkInterface] `xml:"networkInterfaceSet"`
	TagSet              set[xmlTag]              `xml:"tagSet"`
	KeyName             string                   `xml:"keyName,omitempty"`
	IamInstanceProfile  *xmlIamInstanceProfile   `xml:"iamInstanceProfile,omitempty"`
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
	// The instance's groupSet gathers the groups of all its interfaces.
	groups := r.groupIdentifiers(in.allGroupIDs())
	ip := in.privateIP.String()
	dns := "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + internalDomain(r.name)
	assoc := in.association(r.name)
	x := xmlInstance{
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
		NetworkInterfaceSet: s.xmlInterfaces(r, in),
		TagSet:              tagSet(in.tags),
	}
	if assoc != nil {
		x.IPAddress, x.DNSName = assoc.PublicIP, assoc.PublicDNSName
	}
	x.KeyName, x.IamInstanceProfile = in.keyName, xmlProfile(in.profileARN)
	return x
}

// publicAddr is the instance's public IPv4 address, if it has one now: EC2
// releases an auto-assigned public address when an instance stops.
func (in *instance) publicAddr() (netip.Addr, bool) {
	return in.publicIP, in.publicIP.IsValid() && in.state == "running"
}

// association is the instance's public address as EC2 reports it on the
// network interface, or nil. The owner "amazon" marks an address EC2
// assigned, as opposed to an Elastic IP.
func (in *instance) association(region string) *xmlAssociation {
	addr, ok := in.publicAddr()
	if !ok {
		return nil
	}
	return &xmlAssociation{PublicIP: addr.String(), PublicDNSName: publicDNSName(region, addr), IPOwnerID: "amazon"}
}

// publicIPs is the instance's public address for filters: none, or one.
func (in *instance) publicIPs() []string {
	if addr, ok := in.publicAddr(); ok {
		return []string{addr.String()}
	}
	return nil
}

// publicDNSName is the public hostname EC2 gives an address in a region.
func publicDNSName(region string, addr netip.Addr) string {
	host := "ec2-" + strings.ReplaceAll(addr.String(), ".", "-")
	if region == "us-east-1" {
		return host + ".compute-1.amazonaws.com"
	}
	return host + "." + region + ".compute.amazonaws.com"
}

// internalDomain is the private DNS suffix EC2 uses in a region.
func internalDomain(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

var instanceListing = listing[*instance]{
	fields: fields[*instance]{
		"instance-id":                            func(in *instance) []string { return []string{in.id} },
		"vpc-id":                                 func(in *instance) []string { return []string{in.vpcID} },
		"subnet-id":                              func(in *instance) []string { return []string{in.subnetID} },
		"private-ip-address":                     func(in *instance) []string { return []string{in.privateIP.String()} },
		"ip-address":                             (*instance).publicIPs,
		"instance-state-name":                    func(in *instance) []string { return []string{in.state} },
		"instance.group-id":                      (*instance).allGroupIDs,
		"network-interface.network-interface-id": (*instance).eniIDs,
		"network-interface.association.public-ip": (*instance).publicIPs,
		"key-name":                 func(in *instance) []string { return []string{in.keyName} },
		"iam-instance-profile.arn": func(in *instance) []string { return []string{in.profileARN} },
	},
	tags: func(in *instance) map[string]string { return in.tags },
	key:  func(in *instance) string { return seqKey(in.seq) },
}

// describeInstances lists instances, each in a reservation of its own.
func (s *Server) describeInstances(r *region, p params) (response, *apiError) {
	items, next, err := describe(p, instanceListing, func(pg page) ([]*instance, *apiError) {
		ids := p.list("InstanceId")
		if len(ids) == 0 {
			return slices.Collect(maps.Values(r.instances)), nil
		}
		if pg.max > 0 {
			return nil, errf(CodeInvalidParameterCombination,
				"The parameter instancesSet cannot be used with the parameter maxResults")
		}
		for _, id := range ids {
			if !validID(id, "i") {
				return nil, errf(CodeInvalidInstanceIDMalformed, "Invalid id: %q (expecting \"i-...\")", id)
			}
		}
		var candidates []*instance
		for _, id := range ids {
			in, ok := r.instances[id]
			if !ok {
				return nil, errf(CodeInvalidInstanceIDNotFound, "The instance ID '%s' does not exist", id)
			}
			candidates = append(candidates, in)
		}
		return candidates, nil
	})
	if err != nil {
		return nil, err
	}
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
