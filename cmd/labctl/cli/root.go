// Package cli implements labctl, the command-line client of labd.
//
// Run is the whole program: it parses the arguments, talks to labd over gRPC
// and writes to the writers it is given, so tests run it against an
// in-process fake server and compare its output with golden files.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Defaults of the global flags.
const (
	DefaultServer  = "127.0.0.1:7700"
	DefaultTimeout = 10 * time.Second
)

// Environment variables read for the defaults of --server and --lab (and
// --token: EnvToken).
const (
	EnvServer = "LABCTL_SERVER"
	EnvLab    = "LABCTL_LAB"
)

// An Option changes how Run works; tests use them to pin the clock, the
// environment and the topology parser.
type Option func(*app)

// WithClock makes Run take the time from now (for AGE columns and the
// duration ping reports).
func WithClock(now func() time.Time) Option {
	return func(a *app) { a.now = now }
}

// WithEnv makes Run read environment variables through getenv instead of
// os.Getenv.
func WithEnv(getenv func(string) string) Option {
	return func(a *app) { a.getenv = getenv }
}

// WithTopologyParser makes apply -f and delete -f parse topology files with
// parse instead of the topology package. name is the file's name as given,
// or <stdin>; errors should start with it.
func WithTopologyParser(parse func(name string, data []byte) (*labv1.Topology, error)) Option {
	return func(a *app) { a.parseTopology = parse }
}

// WithDialOptions adds gRPC dial options (after the transport credentials).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(a *app) { a.dialOpts = append(a.dialOpts, opts...) }
}

// Run runs labctl with args (without the program name) and returns the exit
// code. Every failure is reported as one line "error: ..." on stderr.
// Cancelling ctx (Ctrl-C) interrupts the running call; ping then still prints
// its summary.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, opts ...Option) int {
	a := &app{
		stdin:         stdin,
		stdout:        stdout,
		stderr:        stderr,
		now:           time.Now,
		getenv:        os.Getenv,
		parseTopology: parseTopology,
	}
	for _, o := range opts {
		o(a)
	}
	defer a.close()

	root := a.newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "error: %s\n", a.errorMessage(err))
	return 1
}

// app holds what every command shares: the writers, the global flags and the
// connection to labd.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	// plaintext: the connection speaks no TLS (a loopback labd, no CA known).
	plaintext     bool
	getenv        func(string) string
	parseTopology func(name string, data []byte) (*labv1.Topology, error)
	dialOpts      []grpc.DialOption
	waitPoll      time.Duration // apply --wait's poll interval; 0: defaultWaitPoll

	// Global flags. server is the flag until connect resolves it
	// (endpoint.go), then the server connected to.
	server      string
	token       string
	contextName string
	lab         string
	output      string
	timeout     time.Duration

	cfg *Config // read once (config.go)

	conn *grpc.ClientConn
	lc   labv1.LabServiceClient
	nc   labv1.NodeServiceClient
	vc   labv1.LiveServiceClient
	ac   labv1.AuthServiceClient

	notedAge atomic.Bool // the replica-age note is printed (replicaage.go)
}

// exitError ends Run with a code and no message: what it had to say is
// already printed (ping with no reply, a traceroute that did not arrive).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (a *app) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "labctl",
		Short: "labctl controls a labnet virtual TCP/IP lab",
		Long: `labctl controls a labnet virtual TCP/IP lab through the labd gRPC API.

Describe a lab in a topology file and apply it, look at what runs, send
packets from the virtual hosts and measure what their TCP connections do:

  labctl apply -f lab.yaml
  labctl get hosts
  labctl describe host h1
  labctl ping h1 10.0.2.10 -c 3
  labctl traceroute h1 h2
  labctl impair h1:eth0 --loss 10% --delay 20ms
  labctl connections h1 -i
  labctl fetch h1 http://h2/ -O index.html
  labctl bench h1 h2 --bytes 100M

On the machine that runs labd, labctl finds labd's local admin credential by
itself. Elsewhere, log in once with the line "labctl user invite NAME"
prints; the server, its CA and the token are kept as a context in
~/.config/labctl/config:

  labctl login --server 10.0.0.5:7700 --ca-hash sha256:... --token lnt_...
  labctl whoami
  labctl auth can-i delete lab/net1`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch a.output {
			case outputTable, outputJSON, outputYAML:
			default:
				return fmt.Errorf("unknown output format %q (want table, json or yaml)", a.output)
			}
			if a.timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, not %s", a.timeout)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", "", "labd gRPC address host:port (env "+EnvServer+"; default: the context's server, else "+DefaultServer+")")
	pf.StringVar(&a.token, "token", "", "bearer token (env "+EnvToken+"; default: the context's token)")
	pf.StringVar(&a.contextName, "context", "", "config context to use instead of the current one")
	pf.StringVar(&a.lab, "lab", a.getenv(EnvLab), "lab to work in; empty: look names up across all labs (env "+EnvLab+")")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table, json or yaml")
	pf.DurationVar(&a.timeout, "timeout", DefaultTimeout, "time limit for each API call (not for ping, traceroute and bench; fetch has its own)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{outputTable, outputJSON, outputYAML}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("lab", a.completeLabs)

	root.AddCommand(
		a.newApplyCommand(),
		a.newDeleteCommand(),
		a.newGetCommand(),
		a.newDescribeCommand(),
		a.newPingCommand(),
		a.newTracerouteCommand(),
		a.newImpairCommand(),
		a.newConnectionsCommand(),
		a.newFetchCommand(),
		a.newBenchCommand(),
		a.newCaptureCommand(),
		a.newPortForwardCommand(), a.newSocksCommand(), a.newExposeCommand(),
		a.newHealthCommand(),
		a.newNodeCommand(), a.newLabCommand(),
		a.newLoginCommand(), a.newLogoutCommand(), a.newWhoAmICommand(),
		a.newConfigCommand(),
		a.newUserCommand(), a.newTokenCommand(), a.newAuthCommand(),
	)
	return root
}

// errorMessage turns err into the one line printed after "error: ".
func (a *app) errorMessage(err error) string {
	if msg, ok := a.rpcErrorMessage(err); ok {
		return msg
	}
	return oneLine(err.Error())
}

// oneLine folds cobra's multi-line messages ("unknown command ...\n\nDid you
// mean this?\n\tget\n") into one line.
func oneLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	first := strings.TrimSpace(lines[0])
	var suggestions []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "\t") {
			suggestions = append(suggestions, fmt.Sprintf("%q", strings.TrimSpace(l)))
		}
	}
	if len(suggestions) > 0 {
		return first + "; did you mean " + strings.Join(suggestions, " or ") + "?"
	}
	return first
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(usage string, n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s needs %s (got %d argument%s)", cmd.CommandPath(), usage, len(args), plural(len(args)))
		}
		return nil
	}
}

// someArgs requires at least one argument, each one of what.
func someArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%s needs at least one %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
