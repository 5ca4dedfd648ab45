package ec2sim_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/latchdev/latch/ec2sim"
)

const agentFleetHead = `
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - id: i-0123456789abcdef0
        security_groups: [g]
`

func TestParseFleet_AgentErrors(t *testing.T) {
	tests := []struct {
		name, agent, field, msg string
		line                    int
	}{
		{"unknown short status", "        agent: asleep\n", "agent.status", "asleep", 8},
		{"unknown status", "        agent:\n          status: asleep\n", "agent.status", "asleep", 9},
		{"unknown platform", "        agent:\n          status: online\n          platform: Solaris\n", "agent.platform", "Solaris", 10},
		{"bad version", "        agent: {version: latest}\n", "agent.version", "latest", 8},
		{"unknown key", "        agent:\n          colour: red\n", "agent.colour", "unknown field", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ec2sim.ParseFleet([]byte(agentFleetHead + tt.agent))
			var fe *ec2sim.FleetError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseFleet = %v, want a FleetError", err)
			}
			if want := "regions.us-east-1.instances[0]." + tt.field; fe.Field != want || fe.Line != tt.line || !strings.Contains(fe.Error(), tt.msg) {
				t.Errorf("err = %v (field %s, line %d), want field %s, line %d, mentioning %q", fe, fe.Field, fe.Line, want, tt.line, tt.msg)
			}
		})
	}
}

func TestLoadFleet_Agents(t *testing.T) {
	f, err := ec2sim.ParseFleet([]byte(agentFleetHead + `        agent: {status: offline, platform: Windows, version: 3.2.0.0}
      - id: i-0123456789abcdef1
        security_groups: [g]
        agent: online
      - id: i-0123456789abcdef2
        security_groups: [g]
`))
	if err != nil {
		t.Fatal(err)
	}
	e := newSSMEnv(t, ec2sim.Options{})
	if err := e.sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	out, err := e.ssm(latchServer).DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{"i-0123456789abcdef0", "i-0123456789abcdef1", "i-0123456789abcdef2"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceInformationList) != 2 {
		t.Fatalf("managed nodes = %+v, want the two with agents", out.InstanceInformationList)
	}
	w := out.InstanceInformationList[0]
	if w.PingStatus != ssmtypes.PingStatusConnectionLost || w.PlatformType != ssmtypes.PlatformTypeWindows ||
		aws.ToString(w.AgentVersion) != "3.2.0.0" || aws.ToBool(w.IsLatestVersion) {
		t.Errorf("offline Windows node = %+v", w)
	}
	if l := out.InstanceInformationList[1]; l.PingStatus != ssmtypes.PingStatusOnline || l.PlatformType != ssmtypes.PlatformTypeLinux {
		t.Errorf("online node = %+v", l)
	}
}
