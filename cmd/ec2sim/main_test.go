package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/latchdev/latch/ec2sim"
)

// binary is the ec2sim command, built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ec2sim-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ec2sim")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startSim runs the binary and returns its URL, read from the first line
// of its output. The process is stopped with SIGTERM at cleanup, and must
// then exit cleanly.
func startSim(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout) // keep the pipe drained until exit
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("ec2sim after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second): // a deadline for a hung process, not a sleep
			_ = cmd.Process.Kill()
			t.Errorf("ec2sim did not stop after SIGTERM\n%s", stderr.String())
		}
	})
	select {
	case url := <-lines:
		if !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Fatalf("first line %q, want the server's URL\n%s", url, stderr.String())
		}
		return url
	case <-time.After(30 * time.Second):
		t.Fatalf("no URL from ec2sim\n%s", stderr.String())
		return ""
	}
}

func client(url string) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(url),
		HTTPClient:   noKeepAlive(),
	})
}

// noKeepAlive is an HTTP client with a connection per request, as
// internal/awstest's: on a loaded machine the SDK's transport now and then
// closes a kept-alive connection while it still reads a large response
// ("use of closed network connection", aws-sdk-go-v2#2737), and these
// tests make one attempt.
func noKeepAlive() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableKeepAlives = true
	return &http.Client{Transport: t}
}

func TestServesTheDemoFleet(t *testing.T) {
	url := startSim(t)
	out, err := client(url).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.Reservations); n != 4 {
		t.Errorf("%d instances, want the demo fleet's 4", n)
	}
	_, err = client(url).AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(ec2sim.DemoWebLatchGroup), IpProtocol: aws.String("tcp"),
		FromPort: aws.Int32(22), ToPort: aws.Int32(22), CidrIp: aws.String("192.0.2.1/32"),
	})
	if err != nil {
		t.Errorf("authorize on the demo's web-latch group: %v", err)
	}
}

func TestFleetFlag(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		url := startSim(t, "-fleet", "none", "-rule-limit", "1")
		out, err := client(url).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
		if err != nil || len(out.Reservations) != 0 {
			t.Errorf("instances = %v, %v; want none", out, err)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fleet.yaml")
		fleet := "regions:\n  eu-west-1:\n    security_groups: [{id: sg-0123456789abcdef0, name: g}]\n"
		if err := os.WriteFile(path, []byte(fleet), 0o600); err != nil {
			t.Fatal(err)
		}
		url := startSim(t, "-fleet", path)
		c := ec2.NewFromConfig(aws.Config{
			Region:       "eu-west-1",
			Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
			BaseEndpoint: aws.String(url),
		})
		out, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
		if err != nil || len(out.SecurityGroups) != 1 {
			t.Errorf("group from fleet file = %v, %v", out, err)
		}
	})
}

func TestExitStatus(t *testing.T) {
	badFleet := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badFleet, []byte("regions:\n  us-east-1:\n    instances: [{security_groups: [nope]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown flag", []string{"-bogus"}, 2, "bogus"},
		{"negative rule limit", []string{"-rule-limit", "-1"}, 2, "-rule-limit"},
		{"stray argument", []string{"serve"}, 2, "serve"},
		{"bad account", []string{"-account", "12"}, 2, "-account"},
		{"identity without a secret", []string{"-identity", "AKID"}, 2, `"AKID" for flag -identity`},
		{"identity with an empty key", []string{"-identity", ":secret:arn:aws:iam::123456789012:user/a"}, 2, "access key"},
		{"identity without an ARN", []string{"-identity", "AKID:secret:"}, 2, "ARN"},
		{"identity whose ARN names no account", []string{"-identity", "AKID:secret:arn:aws:iam::12:user/a"}, 2, "account"},
		{"identity given twice", []string{"-identity", "AKID:s:arn:aws:iam::123456789012:user/a", "-identity", "AKID:t:arn:aws:iam::123456789012:user/b"}, 2, "AKID"},
		{"missing fleet file", []string{"-fleet", filepath.Join(t.TempDir(), "absent.yaml")}, 1, "absent.yaml"},
		{"invalid fleet", []string{"-fleet", badFleet}, 1, "instances[0].security_groups[0]"},
		{"zero throttle scale", []string{"-throttle", "-throttle-scale", "0"}, 2, "-throttle-scale"},
		{"bad listen address", []string{"-listen", "256.0.0.1:0"}, 1, "256.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tt.code {
				t.Fatalf("exit = %v, want status %d\n%s", err, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// Each -identity may call sts:GetCallerIdentity with its key, and STS
// names it by its ARN; a key not given is refused.
func TestIdentityFlag(t *testing.T) {
	url := startSim(t, "-identity", "AKIDALICE:alice-secret:arn:aws:iam::123456789012:user/alice",
		"-identity", "AKIDBOB:bob-secret:arn:aws:sts::123456789012:assumed-role/dev/bob")
	caller := func(key, secret string) (string, error) {
		c := sts.NewFromConfig(aws.Config{
			Region:       "us-east-1",
			Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
			BaseEndpoint: aws.String(url),
		})
		out, err := c.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.Arn), nil
	}
	for key, want := range map[string]string{
		"AKIDALICE": "arn:aws:iam::123456789012:user/alice",
		"AKIDBOB":   "arn:aws:sts::123456789012:assumed-role/dev/bob",
	} {
		secret := map[string]string{"AKIDALICE": "alice-secret", "AKIDBOB": "bob-secret"}[key]
		if got, err := caller(key, secret); err != nil || got != want {
			t.Errorf("GetCallerIdentity as %s = %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := caller("AKIDMALLORY", "x"); err == nil || !strings.Contains(err.Error(), ec2sim.CodeInvalidClientTokenID) {
		t.Errorf("an unknown key: %v, want %s", err, ec2sim.CodeInvalidClientTokenID)
	}
}

func TestFireSchedulesFlag(t *testing.T) {
	url := startSim(t, "-fire-schedules")
	out, err := client(url).AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(ec2sim.DemoWebLatchGroup), IpProtocol: aws.String("tcp"),
		FromPort: aws.Int32(22), ToPort: aws.Int32(22), CidrIp: aws.String("192.0.2.2/32"),
	})
	if err != nil {
		t.Fatal(err)
	}
	rule := aws.ToString(out.SecurityGroupRules[0].SecurityGroupRuleId)
	sched := scheduler.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(url),
	})
	_, err = sched.CreateSchedule(t.Context(), &scheduler.CreateScheduleInput{
		Name:               aws.String("latch-" + rule),
		ScheduleExpression: aws.String("at(" + time.Now().UTC().Format("2006-01-02T15:04:05") + ")"),
		FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
		Target: &stypes.Target{
			Arn:     aws.String("arn:aws:scheduler:::aws-sdk:ec2:revokeSecurityGroupIngress"),
			RoleArn: aws.String("arn:aws:iam::123456789012:role/latch-backstop"),
			Input:   aws.String(`{"GroupId":"` + ec2sim.DemoWebLatchGroup + `","SecurityGroupRuleIds":["` + rule + `"]}`),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The schedule is due now; the next tick, within a second, revokes
	// the rule. Watch for that from this process.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second) // a deadline for a hung process, not a sleep
	for {
		if !hasRule(t, url, rule) {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("rule %s still there 10 s after its schedule was due", rule)
		}
	}
}

func hasRule(t *testing.T, url, id string) bool {
	t.Helper()
	resp, err := http.Get(url + "/_sim/rules?group=" + ec2sim.DemoWebLatchGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rules []ec2sim.Rule
	if err := json.NewDecoder(resp.Body).Decode(&rules); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.ID == id {
			return true
		}
	}
	return false
}

// -throttle turns on EC2's buckets, scaled: at 0.02 DescribeSecurityGroups
// unfiltered holds one token, so the second call in a row is throttled.
func TestThrottleFlag(t *testing.T) {
	url := startSim(t, "-throttle", "-throttle-scale", "0.02")
	c := ec2.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint:     aws.String(url),
		RetryMaxAttempts: 1,
		HTTPClient:       noKeepAlive(),
	})
	if _, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{})
	if err == nil || !strings.Contains(err.Error(), ec2sim.CodeRequestLimitExceeded) {
		t.Fatalf("second call: %v, want %s", err, ec2sim.CodeRequestLimitExceeded)
	}
	resp, err := http.Get(url + "/_sim/throttle")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Buckets   *ec2sim.Throttle
		Throttled map[string]int
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Buckets == nil || got.Buckets.Unfiltered.Size != 1 || got.Throttled["DescribeSecurityGroups"] != 1 {
		t.Errorf("GET /_sim/throttle = %+v, want unfiltered size 1 and one throttled", got)
	}
}
