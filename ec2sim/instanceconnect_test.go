package ec2sim_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"

	"github.com/latchdev/latch/ec2sim"
)

const (
	aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXjuIwJBWRx3hMWxqpcf1GSVc2fzhLPLb/GRk8IJ/yT alice"
	bobKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK7o7Kh+aXR900OHg1vyYmVcdZNp6DpRAAqiEh8lzdlF bob"
)

// The keys an instance would read from its metadata are the user's
// unexpired pushes, and only theirs.
func TestAdmin_PushedKeysForAnInstanceUser(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := now
	sim := ec2sim.New(ec2sim.Options{Now: func() time.Time { return clock }})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	url := mustStart(t, sim)
	eic := ec2instanceconnect.NewFromConfig(simConfig(t, url, "us-east-1"))
	for user, key := range map[string]string{"ec2-user": aliceKey, "admin": bobKey} {
		if _, err := eic.SendSSHPublicKey(t.Context(), &ec2instanceconnect.SendSSHPublicKeyInput{
			InstanceId: aws.String(ec2sim.DemoWeb1), InstanceOSUser: aws.String(user), SSHPublicKey: aws.String(key),
		}); err != nil {
			t.Fatal(err)
		}
	}
	// One well-formed key per push: a second line would be a second
	// authorized key; RSA must have 2048 bits; the data must be a key.
	for name, bad := range map[string]string{
		"two lines":      aliceKey + "\n" + bobKey,
		"RSA 1024":       "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDDZSLQyMc98dmb5/7I+4JiJy6EguAPxrKUBLkls07zrHHPuD5lo8DPeCBy7e5g5sLbOM+IBKbkV1RQp/u9leLHHAAXi9/vfSzxwKxUdi9r6tZg8f3c5FR9FTRCk/+x3Kl/i7qKRPudEZwl6jguihS47tH7SBSyKjIPel/Qa2V6Jw==",
		"not a key blob": "ssh-ed25519 AAAAC3NzaC1yc2EAAAADAQAB",
	} {
		_, err := eic.SendSSHPublicKey(t.Context(), &ec2instanceconnect.SendSSHPublicKeyInput{
			InstanceId: aws.String(ec2sim.DemoWeb1), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(bad),
		})
		if err == nil || !strings.Contains(err.Error(), "InvalidArgsException") {
			t.Errorf("%s = %v; want InvalidArgsException", name, err)
		}
	}
	keys := func(query string) (int, string) {
		t.Helper()
		resp, err := http.Get(url + "/_sim/instance-connect/keys?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := keys("instance=" + ec2sim.DemoWeb1 + "&user=ec2-user"); st != 200 || body != aliceKey+"\n" {
		t.Errorf("ec2-user's keys = %d %q; want alice's key alone", st, body)
	}
	if st, body := keys("region=us-east-1&instance=" + ec2sim.DemoDB1 + "&user=ec2-user"); st != 200 || body != "" {
		t.Errorf("another instance's keys = %d %q; want none", st, body)
	}
	clock = now.Add(ec2sim.PushedKeyLifetime)
	if st, body := keys("instance=" + ec2sim.DemoWeb1 + "&user=admin"); st != 200 || body != "" {
		t.Errorf("keys after %v = %d %q; want none", ec2sim.PushedKeyLifetime, st, body)
	}
	for _, q := range []string{"user=ec2-user", "instance=" + ec2sim.DemoWeb1, "instance=" + ec2sim.DemoWeb1 + "&user=../etc"} {
		if st, body := keys(q); st != 400 || !strings.Contains(body, "required") {
			t.Errorf("?%s = %d %q; want 400 naming what is required", q, st, body)
		}
	}
}
