// Command latch opens time-bound, tagged security-group rules on EC2 and
// makes sure they close: see `latch --help`.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latchdev/latch"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// stopSignals end any command, as Ctrl-C does: main cancels the context
// every command runs under.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// holdSignals end, as Ctrl-C does, a command that holds access open in the
// foreground (a foreground `latch grant`): the terminal closing (SIGHUP)
// and Ctrl-\ (SIGQUIT, so no goroutine dump). Such a command adds them with
// whileHolding. They are not process-wide: `latch server` reloads its
// policy on SIGHUP and must keep running, and the daemons keep Go's
// goroutine dump on SIGQUIT.
var holdSignals = []os.Signal{syscall.SIGHUP, syscall.SIGQUIT}

// whileHolding returns ctx, ended also by holdSignals until stop is called.
func whileHolding(ctx context.Context) (_ context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(ctx, holdSignals...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks a mistake in how latch was called: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run is latch with its world passed in, so tests run the real program.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(lambdaArgs(args, getenv))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.close()
	if err == nil {
		return exitOK
	}
	if code, ok := errors.AsType[exitStatus](err); ok {
		return int(code) // a command's own status, e.g. ssh's; it has said why
	}
	fmt.Fprintln(stderr, "latch:", latch.ErrorMessage(err))
	return exitCode(err)
}

func exitCode(err error) int {
	if _, ok := errors.AsType[usageError](err); ok {
		return exitUsage
	}
	if latch.ErrorCode(err) == latch.EINVALID {
		return exitUsage
	}
	return exitRuntime
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "latch",
		Short: "Just-in-time, time-bound access to EC2 instances",
		Long: `latch opens one security-group rule, for one address, for a bounded time,
and makes sure it closes: the expiry is written onto the rule itself, so any
latch process (the daemon, a sweep, a later run) revokes it even if the one
that opened it died.

Every flag can also be set by an environment variable: LATCH_ and the flag's
name in capitals with dashes as underscores (--sweep-interval is
LATCH_SWEEP_INTERVAL). A flag on the command line wins.`,
		Example: `  latch demo                                   # try it, offline
  latch grant --sg sg-0123456789abcdef0 --ip auto --port 22 --for 30m --reason "deploy"
  latch ls
  latch run                                    # the revoker daemon`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: a.applyEnv,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// `latch audit verfy --public-key k`: the typo, not the flag
		// the group does not know, is the mistake to name.
		if isGroup(c) && c.Flags().NArg() > 0 {
			return unknownCommand(c, c.Flags().Arg(0))
		}
		return usagef("%w\nSee '%s --help'.", err, c.CommandPath())
	})
	a.logFlags(root)
	root.SetUsageTemplate(usageTemplate(root.UsageTemplate()))
	root.AddCommand(a.grantCommand(), a.revokeCommand(), a.lsCommand(), a.sweepCommand(), a.runCommand(), a.demoCommand(),
		a.serverCommand(), a.policyCommand(), a.requestCommand(), a.reviewCommand(true), a.reviewCommand(false), a.withdrawCommand(), a.whoamiCommand(), a.loginCommand(), a.auditCommand(), a.lambdaCommand(), a.doctorCommand(), a.iamPolicyCommand(),
		a.sshCommand(), a.sshCACommand(), a.sshConfigCommand(), a.sessionCommand(), a.benchCommand(), a.scanCommand(), a.adoptCommand())
	wrapAll(root)
	return root
}

// usageTemplate is cobra's usage template with the command's flags
// shown by group: its own first, then each shared group under its title
// ("AWS flags:", "Server flags:", …).
func usageTemplate(cobraTemplate string) string {
	templateFuncs.Do(func() { cobra.AddTemplateFunc("groupedFlags", groupedFlags) })
	const own = "{{if .HasAvailableLocalFlags}}\n\nFlags:\n{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}"
	if !strings.Contains(cobraTemplate, own) {
		return cobraTemplate // a cobra whose template differs: ungrouped, still complete
	}
	return strings.Replace(cobraTemplate, own, "{{if .HasAvailableLocalFlags}}{{groupedFlags .}}{{end}}", 1)
}

// templateFuncs adds groupedFlags to cobra's template functions once:
// cobra keeps them in a package variable.
var templateFuncs sync.Once

// groupedFlags is the "Flags:" section of c's usage, then one section for
// each group of shared flags c has (see addFlags), in the order added.
func groupedFlags(c *cobra.Command) string {
	sets := map[string]*pflag.FlagSet{}
	var titles []string
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		title := "Flags"
		if g := f.Annotations[groupAnnotationKey]; len(g) > 0 {
			title = g[0] + " flags"
		}
		if sets[title] == nil {
			sets[title] = pflag.NewFlagSet(title, pflag.ContinueOnError)
			titles = append(titles, title)
		}
		sets[title].AddFlag(f)
	})
	// The command's own flags first; the groups in a fixed order.
	slices.SortStableFunc(titles, func(x, y string) int {
		return cmp.Compare(groupRank(x), groupRank(y))
	})
	var b strings.Builder
	for _, title := range titles {
		if usage := strings.TrimRight(sets[title].FlagUsages(), " \n"); usage != "" {
			fmt.Fprintf(&b, "\n\n%s:\n%s", title, usage)
		}
	}
	return b.String()
}

// groupRank orders help's flag sections: the command's own, then the
// shared groups, the ones a person sets most often first.
func groupRank(title string) int {
	for i, g := range []flagGroup{serverFlags, awsFlags, dbFlags, backstopFlags, auditKeyFlags} {
		if title == g.title+" flags" {
			return i + 1
		}
	}
	return 0
}

// wrapAll makes argument-count errors usage errors in every subcommand,
// and makes every command group (root, audit, policy, ssh-ca, …) refuse
// what is not one of its subcommands.
func wrapAll(c *cobra.Command) {
	if !c.Runnable() && c.HasSubCommands() {
		makeGroup(c)
	}
	for _, sub := range c.Commands() {
		if sub.Runnable() {
			sub.Args = wrapArgs(sub.Args)
		}
		wrapAll(sub)
	}
}

// makeGroup makes c, a command that only holds subcommands, show its help
// when run bare and exit 2 on anything else, suggesting the subcommand
// meant. Cobra alone shows the help and exits 0 for `latch audit verfy`,
// which a cron job would take for success.
//
// A bare group exits 0 with its help, as a bare latch (and kubectl, docker)
// does: nobody means anything else by it, while a typo means a command
// that did not run.
func makeGroup(c *cobra.Command) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[groupAnnotation] = "true"
	c.SuggestionsMinimumDistance = 2
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return unknownCommand(c, args[0])
		}
		return c.Help()
	}
}

// groupAnnotation marks a command makeGroup made a group.
const groupAnnotation = "latch:group"

func isGroup(c *cobra.Command) bool { return c.Annotations[groupAnnotation] != "" }

// unknownCommand is the usage error for name, which is not a subcommand of
// group, suggesting the closest one.
func unknownCommand(group *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, group.CommandPath())
	if s := group.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usagef("%s\nSee '%s --help'.", msg, group.CommandPath())
}

// wrapArgs makes argument-count errors usage errors.
func wrapArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		check = cobra.NoArgs
	}
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usagef("%w\nSee '%s --help'.", err, c.CommandPath())
		}
		return nil
	}
}

// lambdaArgs: Lambda starts a provided.al2023 function's bootstrap with no
// arguments, so under the Lambda runtime a bare latch is `latch lambda`.
func lambdaArgs(args []string, getenv func(string) string) []string {
	if len(args) == 0 && getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return []string{"lambda"}
	}
	return args
}
