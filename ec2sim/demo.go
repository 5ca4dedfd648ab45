package ec2sim

import (
	_ "embed"
	"fmt"
)

//go:embed demo-fleet.yaml
var demoFleetYAML []byte

// IDs in the demo fleet, for docs and tests. See [DemoFleet].
const (
	DemoRegion        = "us-east-1"
	DemoVPC           = "vpc-0a1b2c3d4e5f60718"
	DemoDefaultGroup  = "sg-0d1e2f3a4b5c6d7e8" // "default", unmanaged
	DemoAppGroup      = "sg-0a11ce5e0000a0001" // "app", unmanaged, HTTPS from anywhere
	DemoWebLatchGroup = "sg-0f00dcafe0000b001" // "web-latch", latch:managed=true; on web-1 and web-2
	DemoDBLatchGroup  = "sg-0f00dcafe0000d001" // "db-latch", latch:managed=true; on db-1
	DemoLegacyGroup   = "sg-0bad0055000000001" // "legacy-ssh", unmanaged, SSH from anywhere: a mistake for latch scan
	DemoBastion       = "i-0a0b0c0d0e0f00004"  // "bastion-old": public address, key pair, a role with ec2:*
	DemoWeb1          = "i-0a0b0c0d0e0f00001"  // web-1, env=dev
	DemoWeb2          = "i-0a0b0c0d0e0f00002"  // web-2, env=dev
	DemoDB1           = "i-0a0b0c0d0e0f00003"  // db-1, env=prod
)

// DemoFleet returns the fleet of demo-fleet.yaml: one VPC in us-east-1,
// instances web-1 and web-2 (env=dev) and db-1 (env=prod), the managed
// groups web-latch and db-latch, and the unmanaged groups default and app.
// Each call returns a fresh copy.
func DemoFleet() Fleet {
	f, err := ParseFleet(demoFleetYAML)
	if err != nil {
		// The file is compiled in and covered by tests; failing here means
		// the build itself is broken.
		panic(fmt.Sprintf("ec2sim: embedded demo fleet: %v", err))
	}
	return f
}

// DemoFleetYAML returns the demo fleet's YAML source, as a starting point
// for a fleet file of one's own.
func DemoFleetYAML() []byte {
	return append([]byte(nil), demoFleetYAML...)
}
