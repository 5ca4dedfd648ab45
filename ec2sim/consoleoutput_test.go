package ec2sim_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	cryptossh "golang.org/x/crypto/ssh"

	"github.com/latchdev/latch/ec2sim"
)

// hostKey is a fresh public key in authorized_keys form, with the size and
// label ssh-keygen -l would print for it, worked out by x/crypto rather
// than by the simulator.
type hostKey struct {
	line, label string
	bits        int
	pub         cryptossh.PublicKey
}

func newHostKey(t *testing.T, priv any) hostKey {
	t.Helper()
	var k hostKey
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		k.bits, k.label = 256, "ED25519"
	case *ecdsa.PrivateKey:
		k.bits, k.label = p.Curve.Params().BitSize, "ECDSA"
	case *rsa.PrivateKey:
		k.bits, k.label = p.N.BitLen(), "RSA"
	}
	signer, err := cryptossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k.pub = signer.PublicKey()
	k.line = strings.TrimSpace(string(cryptossh.MarshalAuthorizedKey(k.pub)))
	return k
}

// someHostKeys is one key of each type an instance may have.
func someHostKeys(t *testing.T) []hostKey {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := []hostKey{newHostKey(t, ed)}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		p, _ := ecdsa.GenerateKey(c, rand.Reader)
		keys = append(keys, newHostKey(t, p))
	}
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return append(keys, newHostKey(t, r))
}

// keyFleet has one instance per state at 10.0.1.N, all with keys, and
// one running instance without.
func keyFleet(keys []string) ec2sim.Fleet {
	var instances []ec2sim.FleetInstance
	for i, state := range []string{"running", "pending", "stopped", "terminated", "running"} {
		in := ec2sim.FleetInstance{
			ID: fmt.Sprintf("i-00000000000000%03d", i), PrivateIP: fmt.Sprintf("10.0.1.%d", 10+i),
			SecurityGroups: []string{"g"}, State: state, HostKeys: keys,
		}
		if i == 4 {
			in.HostKeys = nil
		}
		instances = append(instances, in)
	}
	return ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{"us-east-1": {
		VPCs:           []ec2sim.FleetVPC{{ID: "vpc-0123456789abcdef0", CIDR: "10.0.0.0/16"}},
		SecurityGroups: []ec2sim.FleetGroup{{Name: "g", VPC: "vpc-0123456789abcdef0"}},
		Instances:      instances,
	}}}
}

// console returns the instance's decoded console text, "" for none.
func console(t *testing.T, c *ec2.Client, id string) string {
	t.Helper()
	out, err := c.GetConsoleOutput(t.Context(), &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if err != nil {
		t.Fatalf("GetConsoleOutput(%s) = %v", id, err)
	}
	if aws.ToString(out.InstanceId) != id || out.Timestamp == nil {
		t.Errorf("instanceId %q, timestamp %v; want %s and a time", aws.ToString(out.InstanceId), out.Timestamp, id)
	}
	if out.Output == nil {
		return ""
	}
	text, err := base64.StdEncoding.DecodeString(*out.Output)
	if err != nil {
		t.Fatalf("output is not base64: %v", err)
	}
	return string(text)
}

// block returns the lines between cloud-init's BEGIN and END markers of
// what ("KEYS", "FINGERPRINTS"), without any syslog prefix.
func block(text, what string) []string {
	var out []string
	in := false
	for l := range strings.Lines(text) {
		l = strings.TrimRight(l, "\r\n")
		if i := strings.Index(l, " ec2: "); strings.HasPrefix(l, "<14>") && i > 0 {
			l = l[i+len(" ec2: "):]
		}
		switch l {
		case "-----BEGIN SSH HOST KEY " + what + "-----":
			in = true
		case "-----END SSH HOST KEY " + what + "-----":
			return out
		default:
			if in {
				out = append(out, l)
			}
		}
	}
	return nil
}

func TestGetConsoleOutput_ShowsHostKeysAsCloudInit(t *testing.T) {
	keys := someHostKeys(t)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k.line+" comment from the fleet")
	}
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	sim := ec2sim.New(ec2sim.Options{Now: func() time.Time { return now }})
	if err := sim.LoadFleet(keyFleet(lines)); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, mustStart(t, sim), "us-east-1")
	out, err := c.GetConsoleOutput(t.Context(), &ec2.GetConsoleOutputInput{InstanceId: aws.String("i-00000000000000000")})
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(9 * time.Second); !aws.ToTime(out.Timestamp).Equal(want) {
		t.Errorf("timestamp %v, want the end of boot %v, when the output was last written", out.Timestamp, want)
	}
	text := console(t, c, "i-00000000000000000")
	var wantKeys, wantFPs []string
	for _, k := range keys {
		wantKeys = append(wantKeys, k.line+" root@ip-10-0-1-10")
		wantFPs = append(wantFPs, fmt.Sprintf("%d %s root@ip-10-0-1-10 (%s)", k.bits, cryptossh.FingerprintSHA256(k.pub), k.label))
	}
	if got := block(text, "KEYS"); !slices.Equal(got, wantKeys) {
		t.Errorf("keys block = %q\nwant %q\nconsole:\n%s", got, wantKeys, text)
	}
	if got := block(text, "FINGERPRINTS"); !slices.Equal(got, wantFPs) {
		t.Errorf("fingerprints block = %q\nwant %q", got, wantFPs)
	}
	if strings.Count(text, "\n") != strings.Count(text, "\r\n") {
		t.Errorf("console lines should all end in CRLF, as a serial console's do")
	}
}

func TestGetConsoleOutput_OnlyAfterBootAndWithKeys(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(keyFleet([]string{someHostKeys(t)[0].line})); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, mustStart(t, sim), "us-east-1")
	for id, want := range map[string]bool{
		"i-00000000000000001": false, // pending: not booted yet
		"i-00000000000000002": true,  // stopped: keeps its last boot's output
		"i-00000000000000003": true,  // terminated: likewise
		"i-00000000000000004": false, // running without host keys
	} {
		if text := console(t, c, id); (text != "") != want {
			t.Errorf("%s: console %q; want output %v", id, text, want)
		}
	}
}

func TestGetConsoleOutput_DemoFleet(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	for _, line := range block(console(t, c, ec2sim.DemoWeb1), "KEYS") {
		if _, comment, _, _, err := cryptossh.ParseAuthorizedKey([]byte(line)); err != nil || comment != "root@ip-10-0-1-10" {
			t.Errorf("web-1 host key %q: comment %q, %v", line, comment, err)
		}
	}
	if n := len(block(console(t, c, ec2sim.DemoWeb1), "KEYS")); n != 2 {
		t.Errorf("web-1 shows %d host keys, want 2", n)
	}
	if text := console(t, c, ec2sim.DemoDB1); text != "" {
		t.Errorf("db-1, which has no host keys, has console %q", text)
	}
}

func TestGetConsoleOutput_Errors(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	for id, code := range map[string]string{
		"i-0123456789abcdef0": "InvalidInstanceID.NotFound",
		"web-1":               "InvalidInstanceID.Malformed",
		"i-123":               "InvalidInstanceID.Malformed",
	} {
		_, err := c.GetConsoleOutput(t.Context(), &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
		if errorCode(err) != code {
			t.Errorf("GetConsoleOutput(%s) = %v, want %s", id, err, code)
		}
	}
	// The SDK refuses to send a request without InstanceId, so post one.
	form := func(kv ...string) url.Values {
		f := url.Values{"Action": {"GetConsoleOutput"}, "Version": {"2016-11-15"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	for _, tt := range []struct {
		name string
		form url.Values
		code string
	}{
		{"no InstanceId", form(), "MissingParameter"},
		{"empty InstanceId", form("InstanceId", ""), "MissingParameter"},
		{"Latest not a boolean", form("InstanceId", ec2sim.DemoWeb1, "Latest", "yes"), "InvalidParameterValue"},
	} {
		rec := post(t, sim, tt.form, "")
		var doc errorDoc
		if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != 400 || doc.Code != tt.code {
			t.Errorf("%s: %d %s; want 400 %s", tt.name, rec.Code, rec.Body, tt.code)
		}
	}
}

func TestSetHostKeys(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	key := someHostKeys(t)[0].line
	if err := sim.SetHostKeys("us-east-1", ec2sim.DemoDB1, []string{key + " my-host"}); err != nil {
		t.Fatal(err)
	}
	if got := block(console(t, c, ec2sim.DemoDB1), "KEYS"); !slices.Equal(got, []string{key + " root@ip-10-0-2-20"}) {
		t.Errorf("db-1's keys after SetHostKeys = %q", got)
	}
	if err := sim.SetHostKeys("us-east-1", ec2sim.DemoWeb1, nil); err != nil {
		t.Fatal(err)
	}
	if text := console(t, c, ec2sim.DemoWeb1); text != "" {
		t.Errorf("web-1's console after its keys were cleared = %q", text)
	}
	for _, tt := range []struct{ region, id, key, want string }{
		{"us-east-1", "i-0123456789abcdef0", key, "no instance i-0123456789abcdef0"},
		{"eu-west-1", ec2sim.DemoWeb1, key, "no instance"},
		{"us-east-1", ec2sim.DemoWeb1, "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519, ecdsa-sha2-nistp256"},
	} {
		if err := sim.SetHostKeys(tt.region, tt.id, []string{tt.key}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SetHostKeys(%s, %s, %.20q) = %v; want an error with %q", tt.region, tt.id, tt.key, err, tt.want)
		}
	}
}
