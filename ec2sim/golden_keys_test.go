package ec2sim_test

import (
	"encoding/base64"
	"net/url"
	"testing"
	"time"

	"github.com/latchdev/latch/ec2sim"
)

// TestGoldenKeys pins the XML of the key pair and launch template actions,
// as TestGolden does the others (run with -update to rewrite). Key
// material is random, so CreateKeyPair is not pinned; ImportKeyPair is.
func TestGoldenKeys(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{
		Seed: 1,
		Now:  func() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) },
	})
	v := func(kv ...string) url.Values {
		out := url.Values{"Version": {"2016-11-15"}}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	pub := base64.StdEncoding.EncodeToString([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXjuIwJBWRx3hMWxqpcf1GSVc2fzhLPLb/GRk8IJ/yT ops@example"))
	steps := []struct {
		name   string
		form   url.Values
		status int
	}{
		{"import-key-pair", v("Action", "ImportKeyPair", "KeyName", "deploy", "PublicKeyMaterial", pub,
			"TagSpecification.1.ResourceType", "key-pair", "TagSpecification.1.Tag.1.Key", "team", "TagSpecification.1.Tag.1.Value", "ops"), 200},
		{"describe-key-pairs", v("Action", "DescribeKeyPairs", "IncludePublicKey", "true"), 200},
		{"error-key-pair-not-found", v("Action", "DescribeKeyPairs", "KeyName.1", "nope"), 400},
		{"create-launch-template", v("Action", "CreateLaunchTemplate", "LaunchTemplateName", "web",
			"LaunchTemplateData.KeyName", "deploy", "LaunchTemplateData.ImageId", "ami-0123456789abcdef0",
			"LaunchTemplateData.InstanceType", "t3.micro", "LaunchTemplateData.SecurityGroupId.1", "sg-0123456789abcdef0",
			"LaunchTemplateData.IamInstanceProfile.Name", "web",
			"LaunchTemplateData.TagSpecification.1.ResourceType", "instance",
			"LaunchTemplateData.TagSpecification.1.Tag.1.Key", "app", "LaunchTemplateData.TagSpecification.1.Tag.1.Value", "web"), 200},
		{"describe-launch-template-versions", v("Action", "DescribeLaunchTemplateVersions",
			"LaunchTemplateVersion.1", "$Default", "LaunchTemplateVersion.2", "$Latest", "MaxResults", "200"), 200},
		{"run-instances-key-profile", v("Action", "RunInstances", "ImageId", "ami-0123456789abcdef0", "MinCount", "1", "MaxCount", "1",
			"KeyName", "deploy", "IamInstanceProfile.Name", "web"), 200},
	}
	for _, st := range steps {
		rec := post(t, sim, st.form, "")
		if rec.Code != st.status {
			t.Errorf("%s: status %d, want %d\n%s", st.name, rec.Code, st.status, rec.Body)
		}
		checkGolden(t, st.name, rec.Body.Bytes())
	}
}
