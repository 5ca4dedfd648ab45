package iampolicy_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/latchdev/latch/iampolicy"
)

// sdkPrefixes maps the aws-sdk-go-v2 service packages to the IAM service
// prefix of their actions. An SDK service latch starts to use must be
// added here (the test says so) before the policies can be checked.
var sdkPrefixes = map[string]string{
	"cloudtrail":         "cloudtrail",
	"cloudwatchlogs":     "logs",
	"ec2":                "ec2",
	"ec2instanceconnect": "ec2-instance-connect",
	"iam":                "iam",
	"lambda":             "lambda",
	"scheduler":          "scheduler",
	"sqs":                "sqs",
	"ssm":                "ssm",
	"sts":                "sts",
}

// sessionRole names the session role in callRoles.
const sessionRole = "session-role"

// callRoles says whose credentials the calls in a function or an SDK
// interface are made with, when not the server role's. A key is
// "FILE:NAME": FILE relative to the repository root with forward slashes,
// NAME a function or method (its name alone, without the receiver) or an
// interface type. Every SDK input built inside that function (closures
// included) and every method of that interface is checked against the
// role's policy instead of the server's; everything else is the server's.
//
// Session Manager: the server assumes the session role as the requester
// and starts the session with those credentials, in aws/ssm.go's
// startAsRequester, so ssm:StartSession is the session role's and the
// server's policy must not hold it. A StartSession built anywhere else is
// a server call, which the server's policy refuses, and the test fails.
// sts:AssumeRole is always the server's, wherever it is built: assuming
// the role is how the role's credentials come to be, so it is made with
// the credentials before them.
//
// "FILE:*" gives a whole file's calls to a role: `latch scan` reads the
// estate (aws/estate*.go) with the scan role, and `latch adopt` changes it
// (aws/adopt.go) with the adopt role, both admins' roles apart from the
// server's.
var callRoles = map[string]string{
	"aws/ssm.go:startAsRequester": sessionRole,
	"aws/ssm.go:sessionAPI":       sessionRole,
	"aws/estate.go:*":             scanRole,
	"aws/estate_ec2.go:*":         scanRole,
	"aws/estate_more.go:*":        scanRole,
	"aws/estate_iam.go:*":         scanRole,
	"aws/adopt.go:*":              adoptRole,
}

// The scan's and adopt's roles in callRoles.
const (
	scanRole  = "scan"
	adoptRole = "adopt"
)

// stsProviders are credential providers that call STS themselves: using
// one is the call, though latch builds no input for it.
var stsProviders = map[string]string{"NewAssumeRoleProvider": "sts:AssumeRole"}

// adminPrefixes are services latch calls only from admin tooling, with the
// operator's own credentials, never from the server's role: CloudTrail's
// LookupEvents is `latch audit proof` and `latch audit reconcile`.
var adminPrefixes = []string{"cloudtrail"}

// needNoPermission are calls IAM does not authorize: STS's
// GetCallerIdentity ("No permissions are required to perform this
// operation", STS API reference), which `latch doctor` makes.
var needNoPermission = []string{"sts:GetCallerIdentity"}

// sourceDirs are where latch makes AWS calls: package aws, the adapter,
// and the places that call an SDK client directly (`latch doctor` in
// cmd/latch; the Lambda handler, should it ever). awsauth is not among
// them: the STS requests it forwards are presigned by the client.
var sourceDirs = []string{"aws", filepath.Join("cmd", "latch"), "lambda"}

// awsCalls is what latch's code calls, derived from its source, not listed
// by hand.
type awsCalls struct {
	actions    map[string][]string            // IAM action → where it was found, made with the server role's credentials
	roles      map[string]map[string][]string // callRoles' role → IAM action → where
	interfaces []string                       // SDK client interfaces declared
	targets    map[string][]string            // Scheduler universal-target action → where
	unmatched  []string                       // callRoles keys whose file exists but has no such function or interface
}

// universalTarget is an EventBridge Scheduler universal target ARN: the
// schedule itself calls service's API action with its execution role.
var universalTarget = regexp.MustCompile(`^arn:aws:scheduler:::aws-sdk:([a-z0-9]+):([a-zA-Z0-9]+)$`)

// parseAWSCalls reads every non-test Go file in dirs and collects, as IAM
// actions:
//
//   - the methods of every interface it declares over an SDK client (a
//     method taking *svc.NameInput is the call svc:Name): ec2API,
//     inventoryAPI, cloudtrailAPI, and the Scheduler backstop's interface
//     once it exists;
//   - every svc.NameInput value it builds, which catches a client called
//     directly or through a paginator rather than through an interface;
//   - every Scheduler universal target ARN, the action the scheduler role
//     performs on latch's behalf;
//   - every use of an STS credential provider (stscreds), which calls STS
//     itself.
//
// Calls inside a function or interface callRoles names go to that role,
// the rest to the server.
func parseAWSCalls(t *testing.T, root string) awsCalls {
	t.Helper()
	var files []string
	for _, dir := range sourceDirs {
		found, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		files = append(files, found...)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %v under %s", sourceDirs, root)
	}
	calls := awsCalls{actions: map[string][]string{}, roles: map[string]map[string][]string{}, targets: map[string][]string{}}
	fset := token.NewFileSet()
	found := map[string]bool{} // callRoles keys seen
	filesSeen := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		filesSeen[rel] = true
		services := map[string]string{} // local import name → IAM prefix
		stscreds := ""                  // local name of the stscreds package, if imported
		for _, imp := range f.Imports {
			ipath, _ := strconv.Unquote(imp.Path.Value)
			if ipath == "github.com/aws/aws-sdk-go-v2/credentials/stscreds" {
				stscreds = "stscreds"
				if imp.Name != nil {
					stscreds = imp.Name.Name
				}
			}
			svc, ok := strings.CutPrefix(ipath, "github.com/aws/aws-sdk-go-v2/service/")
			if !ok || strings.Contains(svc, "/") {
				continue // not a service client package (types, internal, ...)
			}
			prefix, known := sdkPrefixes[svc]
			if !known {
				t.Fatalf("%s imports %s: add its IAM service prefix to sdkPrefixes, then its actions to the policies", path, ipath)
			}
			name := svc
			if imp.Name != nil {
				name = imp.Name.Name
			}
			services[name] = prefix
		}
		// input returns the action for svc.NameInput, if e is one.
		input := func(e ast.Expr) (string, bool) {
			if star, ok := e.(*ast.StarExpr); ok {
				e = star.X
			}
			sel, ok := e.(*ast.SelectorExpr)
			if !ok {
				return "", false
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return "", false
			}
			prefix, ok := services[pkg.Name]
			op, isInput := strings.CutSuffix(sel.Sel.Name, "Input")
			if !ok || !isInput || op == "" {
				return "", false
			}
			return prefix + ":" + op, true
		}
		where := func(n ast.Node) string {
			p := fset.Position(n.Pos())
			rel, _ := filepath.Rel(root, p.Filename)
			return filepath.ToSlash(rel) + ":" + strconv.Itoa(p.Line)
		}
		// record notes a call made in owner (a function or interface).
		record := func(owner, action, at string) {
			key := rel + ":" + owner
			role, marked := callRoles[key]
			if !marked {
				key = rel + ":*"
				role, marked = callRoles[key]
			}
			if marked {
				found[key] = true
			}
			if !marked || action == "sts:AssumeRole" {
				calls.actions[action] = append(calls.actions[action], at)
				return
			}
			if calls.roles[role] == nil {
				calls.roles[role] = map[string][]string{}
			}
			calls.roles[role][action] = append(calls.roles[role][action], at)
		}
		for _, decl := range f.Decls {
			owner := "" // the enclosing function; "" at package level
			if fd, ok := decl.(*ast.FuncDecl); ok {
				owner = fd.Name.Name
				if callRoles[rel+":"+owner] != "" {
					found[rel+":"+owner] = true
				}
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.TypeSpec:
					it, ok := n.Type.(*ast.InterfaceType)
					if !ok {
						return true
					}
					if callRoles[rel+":"+n.Name.Name] != "" {
						found[rel+":"+n.Name.Name] = true
					}
					for _, m := range it.Methods.List {
						ft, ok := m.Type.(*ast.FuncType)
						if !ok || len(m.Names) == 0 {
							continue
						}
						for _, p := range ft.Params.List {
							if action, ok := input(p.Type); ok && strings.HasSuffix(action, ":"+m.Names[0].Name) {
								record(n.Name.Name, action, n.Name.Name+" at "+where(m))
								if !slices.Contains(calls.interfaces, n.Name.Name) {
									calls.interfaces = append(calls.interfaces, n.Name.Name)
								}
							}
						}
					}
					return false
				case *ast.CompositeLit:
					if action, ok := input(n.Type); ok {
						record(owner, action, "built at "+where(n))
					}
				case *ast.SelectorExpr:
					if pkg, ok := n.X.(*ast.Ident); ok && stscreds != "" && pkg.Name == stscreds {
						if action, ok := stsProviders[n.Sel.Name]; ok {
							record(owner, action, "stscreds."+n.Sel.Name+" at "+where(n))
						}
					}
				case *ast.BasicLit:
					if n.Kind != token.STRING {
						return true
					}
					s, _ := strconv.Unquote(n.Value)
					if m := universalTarget.FindStringSubmatch(s); m != nil {
						prefix, known := sdkPrefixes[m[1]]
						if !known {
							t.Fatalf("%s: universal target %s: add %s to sdkPrefixes", where(n), s, m[1])
						}
						api := []rune(m[2])
						api[0] = unicode.ToUpper(api[0])
						action := prefix + ":" + string(api)
						calls.targets[action] = append(calls.targets[action], where(n))
					}
				}
				return true
			})
		}
	}
	for key := range callRoles {
		file, name, _ := strings.Cut(key, ":")
		if filesSeen[file] && !found[key] && name != "*" {
			calls.unmatched = append(calls.unmatched, key)
		}
	}
	return calls
}

func set(actions []string) map[string]bool {
	m := map[string]bool{}
	for _, a := range actions {
		m[a] = true
	}
	return m
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func service(action string) string { s, _, _ := strings.Cut(action, ":"); return s }

// TestPoliciesAllowWhatTheCodeCallsAndNothingMore keeps the server policy
// equal to the AWS calls latch's code makes: every call allowed, and
// nothing allowed that no code calls, except iam:PassRole, which no code
// calls but Scheduler requires of whoever creates a schedule with a role.
//
// The check does not assume the Scheduler backstop (aws/backstop.go)
// exists: without Scheduler calls in the code, the policies' scheduler
// actions, iam:PassRole and the scheduler role cannot be checked against
// it, and the test says so in its log while checking everything else.
// TestPoliciesCheckWithoutTheBackstop keeps that path working.
func TestPoliciesAllowWhatTheCodeCallsAndNothingMore(t *testing.T) {
	checkPoliciesAgainstCode(t, "..")
}

// TestPoliciesCheckWithoutTheBackstop runs the same check on a copy of the
// sources without the files that use Scheduler, as the tree was before the
// backstop, so the check stays usable on either side of it.
func TestPoliciesCheckWithoutTheBackstop(t *testing.T) {
	root := t.TempDir()
	for _, dir := range sourceDirs {
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(path, "_test.go") || strings.Contains(string(src), `"github.com/aws/aws-sdk-go-v2/service/scheduler"`) {
				continue
			}
			if err := os.WriteFile(filepath.Join(root, dir, filepath.Base(path)), src, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkPoliciesAgainstCode(t, root)
}

func checkPoliciesAgainstCode(t *testing.T, root string) {
	t.Helper()
	calls := parseAWSCalls(t, root)
	t.Logf("latch calls %v as the server, %v as other roles (interfaces %v); universal targets %v",
		keys(calls.actions), calls.roles, calls.interfaces, keys(calls.targets))
	errs, notes := policyProblems(calls)
	for _, n := range notes {
		t.Log(n)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

// policyProblems compares the policies with calls: errs are what is wrong,
// notes what could not be checked against the code.
func policyProblems(calls awsCalls) (errs, notes []string) {
	errorf := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	notef := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	for _, want := range []string{"ec2API", "inventoryAPI", "cloudtrailAPI"} {
		if !slices.Contains(calls.interfaces, want) {
			errorf("package aws no longer declares the SDK interface %s (found %v): "+
				"update this test so that it still finds every call", want, calls.interfaces)
		}
	}
	for _, key := range calls.unmatched {
		errorf("callRoles names %s, but that file has no such function or interface: "+
			"its calls would be checked as the server's; update callRoles", key)
	}

	called := map[string]bool{}
	schedulerInCode := false
	for action := range calls.actions {
		if slices.Contains(adminPrefixes, service(action)) || slices.Contains(needNoPermission, action) {
			continue
		}
		called[action] = true
		schedulerInCode = schedulerInCode || service(action) == "scheduler"
	}
	if !called["ec2:AuthorizeSecurityGroupIngress"] || !called["ec2:RevokeSecurityGroupIngress"] {
		return append(errs, fmt.Sprintf("found no EC2 authorize/revoke calls (%v): the parser is broken", keys(calls.actions))), notes
	}
	sessionCalls := calls.roles[sessionRole]
	ssmInCode := len(sessionCalls) > 0 || slices.ContainsFunc(keys(called), func(a string) bool { return service(a) == "ssm" })
	// Session Manager's part of the server policy, which only the code of
	// aws/ssm.go can be checked against.
	ssmStatement := func(a string) bool {
		return service(a) == "ssm" || a == "sts:AssumeRole" || a == "sts:SetSourceIdentity"
	}
	// Actions IAM authorizes that no code calls by name: iam:PassRole for
	// whoever creates a schedule with a role, sts:SetSourceIdentity for
	// whoever assumes a role with a source identity.
	allowedExtra := map[string]bool{"iam:PassRole": schedulerInCode, "sts:SetSourceIdentity": called["sts:AssumeRole"]}

	server := set(iampolicy.Actions(iampolicy.Server(full)))
	for _, action := range keys(called) {
		if !server[action] {
			errorf("latch calls %s (%s) but the server policy does not allow it", action, strings.Join(calls.actions[action], ", "))
		}
	}
	for _, action := range keys(server) {
		switch {
		case called[action], allowedExtra[action]:
		case !schedulerInCode && (service(action) == "scheduler" || action == "iam:PassRole"):
			notef("not checked against code: %s (latch makes no Scheduler calls yet)", action)
		case !ssmInCode && ssmStatement(action):
			notef("not checked against code: %s (latch makes no Session Manager calls yet)", action)
		case slices.Contains(adminPrefixes, service(action)):
			errorf("the server policy allows %s, which only admin tooling calls", action)
		default:
			errorf("the server policy allows %s, which no code in %v calls", action, sourceDirs)
		}
	}
	if server["ssm:StartSession"] {
		errorf("the server policy allows ssm:StartSession: only the session role may start sessions")
	}

	// The session role does exactly what the code does with its credentials.
	if !ssmInCode {
		notef("not checked against code: the session role (latch makes no Session Manager calls yet)")
	} else {
		session := iampolicy.Actions(iampolicy.SessionRole(full))
		if want := keys(sessionCalls); !slices.Equal(session, want) {
			errorf("the session role allows %v; latch's code calls %v with its credentials (%v)", session, want, sessionCalls)
		}
	}

	// The scan's role reads exactly what the scan's code reads; adopt's
	// role reads that too and makes exactly adopt's changes.
	if scanCalls := calls.roles[scanRole]; len(scanCalls) == 0 {
		notef("not checked against code: the scan role (no code in aws/estate*.go yet)")
	} else {
		scan := iampolicy.Actions(iampolicy.Scan(full))
		if want := keys(scanCalls); !slices.Equal(scan, want) {
			errorf("the scan role allows %v; latch scan's code calls %v (%v)", scan, want, scanCalls)
		}
		if adoptCalls := calls.roles[adoptRole]; len(adoptCalls) > 0 {
			want := keys(adoptCalls)
			// Tags given at creation (TagSpecifications) are authorized
			// as ec2:CreateTags, which no code calls by name.
			if adoptCalls["ec2:CreateSecurityGroup"] != nil {
				want = append(want, "ec2:CreateTags")
			}
			for _, a := range keys(scanCalls) {
				if !slices.Contains(want, a) {
					want = append(want, a)
				}
			}
			slices.Sort(want)
			if adopt := iampolicy.Actions(iampolicy.Adopt(full)); !slices.Equal(adopt, want) {
				errorf("the adopt role allows %v; latch adopt's code calls %v and reads as the scan does", adopt, want)
			}
		}
	}

	// The function is the same program: the server's actions and its logs.
	lambda := set(iampolicy.Actions(iampolicy.Lambda(full)))
	for a := range server {
		if !lambda[a] {
			errorf("the lambda policy lacks the server's %s", a)
		}
	}
	for a := range lambda {
		if !server[a] && a != "logs:CreateLogStream" && a != "logs:PutLogEvents" {
			errorf("the lambda policy allows %s beyond the server's and its own logs", a)
		}
	}

	// The scheduler role performs exactly the universal targets' actions
	// (and may report to its dead-letter queue).
	if len(calls.targets) == 0 {
		notef("not checked against code: the scheduler role (latch names no Scheduler universal target yet)")
		return errs, notes
	}
	sched := iampolicy.Actions(iampolicy.Scheduler(iampolicy.Options{}))
	if want := keys(calls.targets); !slices.Equal(sched, want) {
		errorf("scheduler role allows %v; the universal targets in latch's code call %v", sched, want)
	}
	withDLQ := iampolicy.Actions(iampolicy.Scheduler(full))
	want := append(keys(calls.targets), "sqs:SendMessage")
	slices.Sort(want)
	if !slices.Equal(withDLQ, want) {
		errorf("scheduler role with a dead-letter queue allows %v, want %v", withDLQ, want)
	}
	return errs, notes
}

// sessionManagerSource stands for aws/ssm.go as the check expects it: the
// session started in startAsRequester with the session role's
// credentials (which a provider there gets by assuming the role, a
// server call); the role assumed, sessions ended and listed, and agents
// read with the server's.
const sessionManagerSource = `package aws

import (
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

type sessionAPI interface {
	StartSession(context.Context, *ssm.StartSessionInput, ...func(*ssm.Options)) (*ssm.StartSessionOutput, error)
}

func (m *SessionManager) startAsRequester() {
	creds := stscreds.NewAssumeRoleProvider(m.sts, m.roleARN)
	ssm.NewFromConfig(cfg, creds).StartSession(ctx, &ssm.StartSessionInput{})
}

func (m *SessionManager) server() {
	m.sts.AssumeRole(ctx, &sts.AssumeRoleInput{})
	m.ssm.TerminateSession(ctx, &ssm.TerminateSessionInput{})
	m.ssm.DescribeSessions(ctx, &ssm.DescribeSessionsInput{})
	m.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
}
`

// copySources copies latch's non-test sources in sourceDirs to a new
// directory, replacing or adding the files in extra (path → content).
func copySources(t *testing.T, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range sourceDirs {
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, dir, filepath.Base(path)), src, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, src := range extra {
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(path)), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestPoliciesCheckSessionManagerCalls runs the check on the sources with
// aws/ssm.go as sessionManagerSource, whatever the tree holds: the server
// policy must allow its server calls and the session role exactly
// StartSession; a StartSession made anywhere but startAsRequester, or a
// startAsRequester that is gone, must fail the check.
func TestPoliciesCheckSessionManagerCalls(t *testing.T) {
	calls := parseAWSCalls(t, copySources(t, map[string]string{"aws/ssm.go": sessionManagerSource}))
	if got := keys(calls.roles[sessionRole]); !slices.Equal(got, []string{"ssm:StartSession"}) {
		t.Errorf("session role calls %v, want [ssm:StartSession]", got)
	}
	if _, ok := calls.actions["ssm:StartSession"]; ok {
		t.Error("StartSession in startAsRequester was counted as the server's")
	}
	errs, notes := policyProblems(calls)
	for _, e := range errs {
		t.Errorf("with aws/ssm.go: %s", e)
	}
	for _, n := range notes {
		if strings.Contains(n, "Session Manager") {
			t.Errorf("with aws/ssm.go: %s", n)
		}
	}

	leak := strings.Replace(sessionManagerSource, "func (m *SessionManager) server() {",
		"func (m *SessionManager) server() {\n\tm.ssm.StartSession(ctx, &ssm.StartSessionInput{})", 1)
	errs, _ = policyProblems(parseAWSCalls(t, copySources(t, map[string]string{"aws/ssm.go": leak})))
	if !slices.ContainsFunc(errs, func(e string) bool {
		return strings.HasPrefix(e, "latch calls ssm:StartSession") && strings.Contains(e, "the server policy does not allow it")
	}) {
		t.Errorf("a StartSession with the server's credentials passed the check: %v", errs)
	}

	renamed := strings.Replace(sessionManagerSource, "startAsRequester", "startSession", 1)
	errs, _ = policyProblems(parseAWSCalls(t, copySources(t, map[string]string{"aws/ssm.go": renamed})))
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, "callRoles names aws/ssm.go:startAsRequester") }) {
		t.Errorf("a renamed startAsRequester passed the check: %v", errs)
	}
}

// TestPoliciesCheckTheSessionBackstop finds the session backstop's
// universal target (ssm:terminateSession in aws/backstop.go) in the code,
// and fails the check when the scheduler role allows TerminateSession but
// the code names no such target: the role allows exactly what the
// schedules call.
func TestPoliciesCheckTheSessionBackstop(t *testing.T) {
	calls := parseAWSCalls(t, "..")
	if where, ok := calls.targets["ssm:TerminateSession"]; !ok || !slices.ContainsFunc(where, func(w string) bool { return strings.HasPrefix(w, "aws/backstop.go") }) {
		t.Fatalf("universal targets %v; want ssm:TerminateSession in aws/backstop.go", calls.targets)
	}
	src, err := os.ReadFile(filepath.Join("..", "aws", "backstop.go"))
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(src), `"arn:aws:scheduler:::aws-sdk:ssm:terminateSession"`, `"no target"`, 1)
	errs, _ := policyProblems(parseAWSCalls(t, copySources(t, map[string]string{"aws/backstop.go": without})))
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, "scheduler role allows") }) {
		t.Errorf("a scheduler role allowing TerminateSession with no session target in the code passed the check: %v", errs)
	}
}
