package iampolicy_test

import (
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
	"sts":                "sts",
}

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
	actions    map[string][]string // IAM action → where it was found
	interfaces []string            // SDK client interfaces declared
	targets    map[string][]string // Scheduler universal-target action → where
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
//     performs on latch's behalf.
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
	calls := awsCalls{actions: map[string][]string{}, targets: map[string][]string{}}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		services := map[string]string{} // local import name → IAM prefix
		for _, imp := range f.Imports {
			ipath, _ := strconv.Unquote(imp.Path.Value)
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
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				it, ok := n.Type.(*ast.InterfaceType)
				if !ok {
					return true
				}
				for _, m := range it.Methods.List {
					ft, ok := m.Type.(*ast.FuncType)
					if !ok || len(m.Names) == 0 {
						continue
					}
					for _, p := range ft.Params.List {
						if action, ok := input(p.Type); ok && strings.HasSuffix(action, ":"+m.Names[0].Name) {
							calls.actions[action] = append(calls.actions[action], n.Name.Name+" at "+where(m))
							if !slices.Contains(calls.interfaces, n.Name.Name) {
								calls.interfaces = append(calls.interfaces, n.Name.Name)
							}
						}
					}
				}
				return false
			case *ast.CompositeLit:
				if action, ok := input(n.Type); ok {
					calls.actions[action] = append(calls.actions[action], "built at "+where(n))
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
	calls := parseAWSCalls(t, root)
	for _, want := range []string{"ec2API", "inventoryAPI", "cloudtrailAPI"} {
		if !slices.Contains(calls.interfaces, want) {
			t.Errorf("package aws no longer declares the SDK interface %s (found %v): "+
				"update this test so that it still finds every call", want, calls.interfaces)
		}
	}
	t.Logf("latch calls %v (interfaces %v); universal targets %v", keys(calls.actions), calls.interfaces, keys(calls.targets))

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
		t.Fatalf("found no EC2 authorize/revoke calls (%v): the parser is broken", keys(calls.actions))
	}
	allowedExtra := map[string]bool{"iam:PassRole": true}

	server := set(iampolicy.Actions(iampolicy.Server(full)))
	for _, action := range keys(called) {
		if !server[action] {
			t.Errorf("latch calls %s (%s) but the server policy does not allow it", action, strings.Join(calls.actions[action], ", "))
		}
	}
	for _, action := range keys(server) {
		switch {
		case called[action], allowedExtra[action] && schedulerInCode:
		case !schedulerInCode && (service(action) == "scheduler" || action == "iam:PassRole"):
			t.Logf("not checked against code: %s (latch makes no Scheduler calls yet)", action)
		case slices.Contains(adminPrefixes, service(action)):
			t.Errorf("the server policy allows %s, which only admin tooling calls", action)
		default:
			t.Errorf("the server policy allows %s, which no code in %v calls", action, sourceDirs)
		}
	}

	// The function is the same program: the server's actions and its logs.
	lambda := set(iampolicy.Actions(iampolicy.Lambda(full)))
	for a := range server {
		if !lambda[a] {
			t.Errorf("the lambda policy lacks the server's %s", a)
		}
	}
	for a := range lambda {
		if !server[a] && a != "logs:CreateLogStream" && a != "logs:PutLogEvents" {
			t.Errorf("the lambda policy allows %s beyond the server's and its own logs", a)
		}
	}

	// The scheduler role performs exactly the universal targets' actions
	// (and may report to its dead-letter queue).
	if len(calls.targets) == 0 {
		t.Log("not checked against code: the scheduler role (latch names no Scheduler universal target yet)")
		return
	}
	sched := iampolicy.Actions(iampolicy.Scheduler(iampolicy.Options{}))
	if want := keys(calls.targets); !slices.Equal(sched, want) {
		t.Errorf("scheduler role allows %v; the universal targets in latch's code call %v", sched, want)
	}
	withDLQ := iampolicy.Actions(iampolicy.Scheduler(full))
	want := append(keys(calls.targets), "sqs:SendMessage")
	slices.Sort(want)
	if !slices.Equal(withDLQ, want) {
		t.Errorf("scheduler role with a dead-letter queue allows %v, want %v", withDLQ, want)
	}
}
