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
	aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEw7Fo6JrUXMwKcJk2d1cJ0mJq1o0bA9mXK3GGfBb4Rk alice"
	bobKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBEbWz4j4T1t1qv5ZGqLrqJ0nH9l6E6k0vQbS0i6Z8uA bob"
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
	// One key per push: a second line would be a second authorized key.
	_, err := eic.SendSSHPublicKey(t.Context(), &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId: aws.String(ec2sim.DemoWeb1), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(aliceKey + "\n" + bobKey),
	})
	if err == nil || !strings.Contains(err.Error(), "InvalidArgsException") {
		t.Errorf("two keys in one push = %v; want InvalidArgsException", err)
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
