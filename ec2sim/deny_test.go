package ec2sim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchdev/latch/ec2sim"
)

func TestDenyRefusesAnEC2Action(t *testing.T) {
	s := ec2sim.New(ec2sim.Options{})
	ts := httptest.NewServer(s)
	defer ts.Close()
	s.Deny("ec2:DescribeSecurityGroups")
	resp, err := http.PostForm(ts.URL, url.Values{"Action": {"DescribeSecurityGroups"}, "Version": {ec2sim.APIVersion}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), ec2sim.CodeUnauthorizedOperation) {
		t.Fatalf("denied call answered %d %s", resp.StatusCode, body)
	}
	s.Allow("ec2:DescribeSecurityGroups")
	resp, err = http.PostForm(ts.URL, url.Values{"Action": {"DescribeSecurityGroups"}, "Version": {ec2sim.APIVersion}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed again, the call answered %d", resp.StatusCode)
	}
}
