package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/internal/ssmplugintest"
	"github.com/latchdev/latch/policy"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/ssmclient"
)

// benchSessionPolicy auto-approves port forwarding to port 7 of
// instances tagged env=box, for dev.
const benchSessionPolicy = `
version: 1
rules:
  - name: box-ssm
    targets: {tags: {env: box}}
    who: {groups: [dev]}
    ssm: {documents: [port-forward], ports: [7]}
    duration: {default: 30m, max: 1h}
    approval: auto
    reason_required: false
`

const benchSessionRole = "arn:aws:iam::123456789012:role/latch-session"

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) Policy() *policy.Policy { return s.p }

// sessionBench is the access service with Session Manager on the
// simulator, in process over loopback HTTP: the real SDK, the real
// aws.SessionManager and a SQLite store, and one instance, box, tagged
// latch:managed=true with its agent online.
type sessionBench struct {
	env    *awstest.Env
	aws    *timedClient // every AWS call the broker makes goes through it
	sm     *latchaws.SessionManager
	b      *broker.Broker
	access *broker.Access
	box    latch.InstanceID
	who    latch.Identity
}

func newSessionBench(b *testing.B) *sessionBench {
	b.Helper()
	env := awstest.NewSim(b, ec2sim.Options{})
	env.Identity(b, "AKIDLATCHTEST", "secret", "arn:aws:sts::123456789012:assumed-role/latch-server/bench") // the server's credentials
	box := latch.InstanceID(env.Instance(b, map[string]string{"Name": "box", "env": "box", latch.TagManaged: "true"}))
	if err := env.Sim.SetAgent(awstest.Region, string(box), ec2sim.Agent{PingStatus: ec2sim.PingOnline}); err != nil {
		b.Fatal(err)
	}
	p, err := policy.Parse("bench.yaml", []byte(benchSessionPolicy))
	if err != nil {
		b.Fatal(err)
	}
	store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "latch.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	cfg := env.Config()
	timed := &timedClient{inner: cfg.HTTPClient}
	cfg.HTTPClient = timed
	sm := latchaws.NewSessionManager(cfg, benchSessionRole, nil)
	inv := latchaws.NewInventory(cfg, nil)
	br := broker.New(store, nil, map[string]broker.GroupLookup{awstest.Region: inv}, broker.Options{
		MaxDuration: policy.DurationCap, Sessions: map[string]latch.SessionManager{awstest.Region: sm}, SessionRole: benchSessionRole,
	})
	const issuer = "https://idp.test"
	access := broker.NewAccess(br, store, staticPolicy{p}, map[string]latch.Inventory{awstest.Region: inv},
		broker.AccessOptions{DefaultRegion: awstest.Region, OIDCIssuer: issuer})
	who := latch.Identity{Kind: latch.KindOIDC, Issuer: issuer, Subject: "u-alice", Email: "alice@example.com", Groups: []string{"dev"}}
	return &sessionBench{env: env, aws: timed, sm: sm, b: br, access: access, box: box, who: who}
}

// BenchmarkSessionStart measures the time from an approved request to
// the real session-manager-plugin ready to forward a port, and its
// parts: request (policy, instance and agent checks, store: the grant),
// start (Access.StartSession: sts:AssumeRole as the requester, then
// ssm:StartSession, and the store), and plugin (the plugin's start and
// its data-channel handshake, until it prints "Waiting for connections").
// The grant's end, which terminates the session, is not timed.
func BenchmarkSessionStart(b *testing.B) {
	plugin := ssmplugintest.Path(b)
	b.Run("plugin-ready", func(b *testing.B) {
		f := newSessionBench(b)
		ctx := b.Context()
		var request, start, ready, requestAWS, startAWS time.Duration
		var requestCalls, startCalls int64
		b.ResetTimer()
		for range b.N {
			a0, n0 := f.aws.read()
			t0 := time.Now()
			r, err := f.access.Request(ctx, f.who, broker.RequestInput{Target: string(f.box), Document: latch.DocPortForward,
				Protocol: latch.TCP, Ports: latch.PortRange{From: 7, To: 7}})
			if err != nil {
				b.Fatal(err)
			}
			if r.GrantID == "" {
				b.Fatalf("request %s is %s, not granted", r.ID, r.State)
			}
			t1 := time.Now()
			a1, n1 := f.aws.read()
			h, err := f.access.StartSession(ctx, f.who, r.GrantID, 0)
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			a2, n2 := f.aws.read()
			requestAWS, startAWS = requestAWS+a1-a0, startAWS+a2-a1
			requestCalls, startCalls = requestCalls+n1-n0, startCalls+n2-n1
			stop := runPlugin(b, plugin, h)
			t3 := time.Now()
			request, start, ready = request+t1.Sub(t0), start+t2.Sub(t1), ready+t3.Sub(t2)

			b.StopTimer()
			stop()
			if _, err := f.b.Revoke(ctx, r.GrantID, "bench"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		n := float64(b.N)
		b.ReportMetric(ms(request)/n, "request-ms")
		b.ReportMetric(ms(requestAWS)/n, "request-aws-ms")
		b.ReportMetric(float64(requestCalls)/n, "request-aws-calls")
		b.ReportMetric(ms(start)/n, "start-ms")
		b.ReportMetric(ms(startAWS)/n, "start-aws-ms")
		b.ReportMetric(float64(startCalls)/n, "start-aws-calls")
		b.ReportMetric(ms(request+start)/n, "handover-ms")
		b.ReportMetric(ms(ready)/n, "plugin-ms")
		b.ReportMetric(ms(request+start+ready)/n, "total-ms")
	})

	// The two AWS calls alone, through the SDK as aws.SessionManager makes
	// them, and aws.SessionManager.Start, which makes both.
	b.Run("aws-calls", func(b *testing.B) {
		f := newSessionBench(b)
		ctx := b.Context()
		cfg := f.env.Config()
		stsc := sts.NewFromConfig(cfg)
		var assume, startSession, smStart time.Duration
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			role, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(benchSessionRole),
				RoleSessionName: aws.String("alice"), SourceIdentity: aws.String("alice"), DurationSeconds: aws.Int32(900)})
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			c := role.Credentials
			asRole := ssm.NewFromConfig(cfg, func(o *ssm.Options) {
				o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
						SessionToken: aws.ToString(c.SessionToken)}, nil
				})
			})
			out, err := asRole.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(string(f.box)),
				DocumentName: aws.String(latch.DocPortForward.AWSName()), Parameters: latchaws.SessionParameters(latch.DocPortForward, 7, 0),
				Reason: aws.String(latch.SessionReason("g-0000000000000001", time.Now().Add(time.Hour)))})
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			h, err := f.sm.Start(ctx, latch.SessionStart{Grant: "g-0000000000000001", Target: f.box, Document: latch.DocPortForward,
				Port: 7, Requester: fmt.Sprintf("alice-%d", i), Expires: time.Now().Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			assume, startSession, smStart = assume+t1.Sub(t0), startSession+t2.Sub(t1), smStart+t3.Sub(t2)

			b.StopTimer()
			for _, id := range []latch.SSMSessionID{latch.SSMSessionID(aws.ToString(out.SessionId)), h.SessionID} {
				if err := f.sm.Terminate(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
		n := float64(b.N)
		b.ReportMetric(ms(assume)/n, "assumerole-ms")
		b.ReportMetric(ms(startSession)/n, "startsession-ms")
		b.ReportMetric(ms(smStart)/n, "sm.Start-ms")
	})
}

// runPlugin starts the session-manager-plugin with h, a port-forwarding
// session, and returns once it has completed the data channel's handshake
// and listens: it prints "Waiting for connections". stop kills it.
func runPlugin(b *testing.B, plugin string, h latch.SessionHandle) (stop func()) {
	b.Helper()
	s := ssmclient.Session{SessionID: h.SessionID, TokenValue: h.TokenValue, StreamURL: h.StreamURL, Region: h.Region,
		Target: h.Target, DocumentName: h.Document.AWSName(), Parameters: h.Parameters}
	argv, env, err := s.Command(plugin)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(ssmplugintest.Env(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	ready := make(chan error, 1)
	go func() {
		var seen strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Waiting for connections") {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("the plugin's output ended before it was ready:\n%s", seen.String())
	}()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			b.Fatalf("%v\nstderr: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		stop()
		b.Fatalf("the plugin was not ready after 30s; stderr: %s", stderr.String())
	}
	return stop
}

// timedClient is an AWS HTTP client that adds up its calls and the time
// they took, round trip and response body.
type timedClient struct {
	inner aws.HTTPClient
	mu    sync.Mutex
	total time.Duration
	calls int64
}

func (c *timedClient) Do(r *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := c.inner.Do(r)
	if err == nil {
		// The SDK reads the body after Do returns; read it here, so that
		// the call's time is the whole answer's.
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body, err = io.NopCloser(bytes.NewReader(body)), rerr
	}
	c.mu.Lock()
	c.total += time.Since(t0)
	c.calls++
	c.mu.Unlock()
	return resp, err
}

func (c *timedClient) read() (time.Duration, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, c.calls
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
