package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"sigs.k8s.io/yaml"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// stepClock returns start, then start+step, start+2*step, ... on each call:
// AGE columns see start, and ping sees step between its first and last
// look at the clock.
func stepClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	next := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := next
		next = next.Add(step)
		return t
	}
}

// testParseTopology reads a topology as YAML of the protojson form, so these
// tests do not depend on the topology package's file format.
func testParseTopology(path string, b []byte) (*labv1.Topology, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var t labv1.Topology
	if err := protojson.Unmarshal(j, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs labctl against server with a pinned clock and an empty
// environment.
func runCLI(ctx context.Context, server, stdin string, args []string, opts ...Option) result {
	var out, errb bytes.Buffer
	opts = append([]Option{
		WithClock(stepClock(t0, 2003*time.Millisecond)),
		WithEnv(func(string) string { return "" }),
		WithTopologyParser(testParseTopology),
	}, opts...)
	code := Run(ctx, append([]string{"--server", server}, args...), strings.NewReader(stdin), &out, &errb, opts...)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// checkGolden compares got with testdata/name.golden, or rewrites it with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("stdout differs from %s (-want +got):\n%s", path, diff)
	}
}

type cliCase struct {
	name   string
	args   []string
	stdin  string
	code   int
	golden bool     // stdout is in testdata/<name>.golden; otherwise it must be empty
	stderr string   // exact stderr
	calls  []string // writes and live calls the server must have seen; nil: not checked
}

func runCases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer()
			addr := f.start(t)
			got := runCLI(t.Context(), addr, tc.stdin, tc.args)
			if got.code != tc.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", got.code, tc.code, got.stderr)
			}
			if got.stderr != tc.stderr {
				t.Errorf("stderr:\n got %q\nwant %q", got.stderr, tc.stderr)
			}
			if tc.golden {
				checkGolden(t, tc.name, got.stdout)
			} else if got.stdout != "" {
				t.Errorf("stdout = %q, want nothing", got.stdout)
			}
			if tc.calls != nil {
				if diff := cmp.Diff(tc.calls, f.recorded(), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestGet(t *testing.T) {
	runCases(t, []cliCase{
		{name: "get_labs", args: []string{"get", "labs"}, golden: true},
		{name: "get_labs_json", args: []string{"get", "lab", "-o", "json"}, golden: true},
		{name: "get_labs_yaml", args: []string{"get", "labs", "-o", "yaml"}, golden: true},
		{name: "get_lab_with_lab_flag", args: []string{"get", "labs", "--lab", "demo"}, golden: true},
		{name: "get_networks", args: []string{"get", "networks"}, golden: true},
		{name: "get_nets_in_lab", args: []string{"--lab", "demo", "get", "nets"}, golden: true},
		{name: "get_network_unique", args: []string{"get", "net", "lan2"}, golden: true},
		{name: "get_hosts", args: []string{"get", "hosts"}, golden: true},
		{name: "get_hosts_in_lab", args: []string{"get", "hosts", "--lab", "demo"}, golden: true},
		{name: "get_hosts_json", args: []string{"get", "hosts", "-o", "json"}, golden: true},
		{name: "get_hosts_yaml", args: []string{"get", "hosts", "-o", "yaml", "--lab", "demo"}, golden: true},
		{name: "get_host_json", args: []string{"get", "host", "demo/h1", "-o", "json"}, golden: true},
		{name: "get_host_yaml", args: []string{"get", "host", "r1", "-o", "yaml"}, golden: true},
		{name: "get_two_hosts_json", args: []string{"get", "host", "h2", "other/h1", "-o", "json"}, golden: true},
		{name: "get_nodes", args: []string{"get", "nodes"}, golden: true},
		{name: "get_node_json", args: []string{"get", "node", "n1", "-o", "json"}, golden: true},
		{name: "get_hosts_empty_lab", args: []string{"get", "hosts", "--lab", "empty"},
			stderr: "No hosts found in lab empty.\n"},
		{name: "get_host_ambiguous", args: []string{"get", "host", "h1"}, code: 1,
			stderr: "error: host \"h1\" is in several labs (demo, other): use --lab or LAB/h1\n"},
		{name: "get_host_not_found", args: []string{"get", "host", "h9"}, code: 1,
			stderr: "error: host \"h9\" not found\n"},
		{name: "get_host_not_found_in_lab", args: []string{"get", "host", "h9", "--lab", "demo"}, code: 1,
			stderr: "error: host \"labs/demo/hosts/h9\" not found\n"},
		{name: "get_lab_unknown_lab", args: []string{"get", "hosts", "--lab", "nope"}, code: 1,
			stderr: "error: lab \"labs/nope\" not found\n"},
		{name: "get_unknown_type", args: []string{"get", "pods"}, code: 1,
			stderr: "error: unknown resource type \"pods\" (want labs, networks, hosts or nodes)\n"},
		{name: "get_no_type", args: []string{"get"}, code: 1,
			stderr: "error: get needs a resource type: labs, networks, hosts or nodes\n"},
		{name: "get_bad_output", args: []string{"get", "hosts", "-o", "xml"}, code: 1,
			stderr: "error: unknown output format \"xml\" (want table, json or yaml)\n"},
		{name: "get_bad_reference", args: []string{"get", "host", "a/b/c"}, code: 1,
			stderr: "error: invalid host reference \"a/b/c\" (want HOST or LAB/HOST)\n"},
	})
}

func TestApply(t *testing.T) {
	demo := filepath.Join("testdata", "topology", "demo.yaml")
	class := filepath.Join("testdata", "topology", "class.yaml")
	bad := filepath.Join("testdata", "topology", "bad.yaml")
	classYAML, err := os.ReadFile(class)
	if err != nil {
		t.Fatal(err)
	}
	runCases(t, []cliCase{
		{name: "apply", args: []string{"apply", "-f", demo}, golden: true},
		{name: "apply_two_files", args: []string{"apply", "-f", demo, "-f", class}, golden: true},
		{name: "apply_dry_run", args: []string{"apply", "-f", class, "--dry-run"}, golden: true},
		{name: "apply_stdin", args: []string{"apply", "-f", "-"}, stdin: string(classYAML), golden: true},
		{name: "apply_json", args: []string{"apply", "-f", class, "-o", "json"}, golden: true},
		{name: "apply_invalid", args: []string{"apply", "-f", bad}, code: 1,
			stderr: "error: hosts[1].interfaces[0].ipv4: 10.0.9.1 is not in network lan1 (10.0.1.0/24)\n"},
		// Nothing is applied when a later file is bad.
		{name: "apply_missing_file", args: []string{"apply", "-f", class, "-f", "testdata/nope.yaml"}, code: 1,
			stderr: "error: open testdata/nope.yaml: no such file or directory\n"},
		{name: "apply_no_file", args: []string{"apply"}, code: 1,
			stderr: "error: no topology file: use -f FILE (or -f - for standard input)\n"},
		{name: "apply_stdin_twice", args: []string{"apply", "-f", "-", "-f", "-"}, code: 1,
			stderr: "error: -f - given twice: standard input can be read only once\n"},
		{name: "apply_stdin_error", args: []string{"apply", "-f", "-"}, stdin: "lab: [", code: 1,
			stderr: "error: <stdin>: yaml: line 1: did not find expected node content\n"},
		{name: "apply_args", args: []string{"apply", "lab.yaml"}, code: 1,
			stderr: "error: unknown command \"lab.yaml\" for \"labctl apply\"\n"},
	})
}

func TestApplyDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"demo.yaml", "class.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "topology", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFakeServer()
	addr := f.start(t)
	got := runCLI(t.Context(), addr, "", []string{"apply", "-f", dir, "--dry-run"})
	if got.code != 0 {
		t.Fatalf("exit code %d: %s", got.code, got.stderr)
	}
	var labs []string
	for _, r := range f.applied {
		if !r.GetValidateOnly() {
			t.Errorf("apply --dry-run sent validate_only=false for lab %s", r.GetTopology().GetLab())
		}
		labs = append(labs, r.GetTopology().GetLab())
	}
	// A directory is applied file by file, in name order.
	if diff := cmp.Diff([]string{"class", "demo"}, labs); diff != "" {
		t.Errorf("applied labs (-want +got):\n%s", diff)
	}
	checkGolden(t, "apply_directory_dry_run", got.stdout)
}

// TestRealTopologyFormat runs apply with labctl's own parser (the topology
// package) instead of the test one.
func TestRealTopologyFormat(t *testing.T) {
	twoLans := filepath.Join("testdata", "realformat", "two-lans.yaml")
	typo := filepath.Join("testdata", "realformat", "typo.yaml")
	stdin, err := os.ReadFile(twoLans)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		args         []string
		stdin        string
		code         int
		stderrPrefix string
	}{
		{name: "file", args: []string{"apply", "-f", twoLans}},
		{name: "stdin", args: []string{"apply", "-f", "-"}, stdin: string(stdin)},
		{name: "typo", args: []string{"apply", "-f", typo}, code: 1, stderrPrefix: "error: " + typo + ":8: "},
		{name: "typo_stdin", args: []string{"apply", "-f", "-"}, stdin: "name: demo\nnetwrks: []\n", code: 1, stderrPrefix: "error: <stdin>:2: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer()
			addr := f.start(t)
			got := runCLI(t.Context(), addr, tc.stdin, tc.args, WithTopologyParser(parseTopology))
			if got.code != tc.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", got.code, tc.code, got.stderr)
			}
			if tc.code != 0 {
				if !strings.HasPrefix(got.stderr, tc.stderrPrefix) || strings.Count(got.stderr, "\n") != 1 {
					t.Errorf("stderr = %q, want one line starting %q", got.stderr, tc.stderrPrefix)
				}
				return
			}
			checkGolden(t, "realformat_apply", got.stdout)
			if len(f.applied) != 1 {
				t.Fatalf("%d Apply calls, want 1", len(f.applied))
			}
			h1 := f.applied[0].GetTopology().GetHosts()[1]
			if got, want := h1.GetRoutes(), []*labv1.Route{{To: "default", Via: "10.0.1.1"}}; !cmp.Equal(got, want, protocmp.Transform()) {
				t.Errorf("h1 routes = %v, want %v (gateway shorthand)", got, want)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	demo := filepath.Join("testdata", "topology", "demo.yaml")
	runCases(t, []cliCase{
		{name: "delete_file", args: []string{"delete", "-f", demo}, golden: true},
		{name: "delete_hosts", args: []string{"delete", "hosts", "h2", "other/h1", "labs/demo/hosts/r1"}, golden: true,
			calls: []string{"DeleteHost labs/demo/hosts/h2", "DeleteHost labs/other/hosts/h1", "DeleteHost labs/demo/hosts/r1"}},
		{name: "delete_host_in_lab", args: []string{"--lab", "demo", "delete", "host", "h1"}, golden: true,
			calls: []string{"DeleteHost labs/demo/hosts/h1"}},
		{name: "delete_net", args: []string{"delete", "net", "lan2"}, golden: true,
			calls: []string{"DeleteNetwork labs/demo/networks/lan2"}},
		{name: "delete_labs", args: []string{"delete", "labs", "demo", "other"}, golden: true,
			calls: []string{"DeleteLab labs/demo", "DeleteLab labs/other"}},
		{name: "delete_some_missing", args: []string{"delete", "host", "demo/h9", "h2", "h1"}, golden: true, code: 1,
			stderr: "error: host \"labs/demo/hosts/h9\" not found\n" +
				"error: host \"h1\" is in several labs (demo, other): use --lab or LAB/h1\n",
			calls: []string{"DeleteHost labs/demo/hosts/h9", "DeleteHost labs/demo/hosts/h2"}},
		{name: "delete_no_names", args: []string{"delete", "host"}, code: 1,
			stderr: "error: delete host needs at least one NAME\n", calls: []string{}},
		{name: "delete_nodes", args: []string{"delete", "nodes", "n1"}, code: 1,
			stderr: "error: unknown resource type \"nodes\" (want labs, networks or hosts)\n", calls: []string{}},
		{name: "delete_nothing", args: []string{"delete"}, code: 1,
			stderr: "error: delete needs -f FILE or TYPE NAME...\n"},
		{name: "delete_both", args: []string{"delete", "-f", demo, "host", "h2"}, code: 1,
			stderr: "error: delete takes either -f FILE or TYPE NAME..., not both\n", calls: []string{}},
	})
}

func TestDescribe(t *testing.T) {
	runCases(t, []cliCase{
		{name: "describe_host", args: []string{"describe", "host", "demo/h1"}, golden: true},
		{name: "describe_router", args: []string{"describe", "host", "r1"}, golden: true},
		{name: "describe_host_status_unavailable", args: []string{"describe", "hosts", "h2"}, golden: true},
		{name: "describe_host_unplaced", args: []string{"describe", "host", "h1", "--lab", "other"}, golden: true},
		{name: "describe_network", args: []string{"describe", "network", "demo/lan1"}, golden: true},
		{name: "describe_lab", args: []string{"describe", "lab", "demo"}, golden: true},
		{name: "describe_lab_from_flag", args: []string{"describe", "lab", "--lab", "empty"}, golden: true},
		{name: "describe_two_hosts", args: []string{"describe", "host", "r1", "h2"}, golden: true},
		{name: "describe_host_not_found", args: []string{"describe", "host", "nope"}, code: 1,
			stderr: "error: host \"nope\" not found\n"},
		{name: "describe_no_name", args: []string{"describe", "host"}, code: 1,
			stderr: "error: describe host needs a NAME\n"},
		{name: "describe_node", args: []string{"describe", "node", "n1"}, code: 1,
			stderr: "error: unknown resource type \"node\" (want labs, networks or hosts)\n"},
	})
}

func TestPing(t *testing.T) {
	runCases(t, []cliCase{
		{name: "ping", args: []string{"ping", "demo/h1", "10.0.2.10", "-c", "3"}, golden: true,
			calls: []string{"Ping labs/demo/hosts/h1 10.0.2.10 count=3 interval=0s timeout=0s ttl=0 size=0 ipv6=false"}},
		{name: "ping_errors", args: []string{"ping", "--lab", "demo", "h1", "h2", "-c", "3", "-i", "0.2", "-W", "1.5", "-t", "2", "-s", "100"}, golden: true,
			calls: []string{"Ping labs/demo/hosts/h1 h2 count=3 interval=200ms timeout=1.5s ttl=2 size=100 ipv6=false"}},
		{name: "ping_no_reply", args: []string{"ping", "demo/h1", "10.0.9.9", "-c", "2"}, golden: true, code: 1},
		{name: "ping_timeout_and_dup", args: []string{"ping", "demo/h1", "10.0.2.11"}, golden: true},
		{name: "ping_ipv6", args: []string{"ping", "demo/h1", "fd00:0:0:1::1", "-6", "-c", "1"}, golden: true,
			calls: []string{"Ping labs/demo/hosts/h1 fd00:0:0:1::1 count=1 interval=0s timeout=0s ttl=0 size=0 ipv6=true"}},
		{name: "ping_broken_stream", args: []string{"ping", "demo/h1", "broken"}, golden: true, code: 1,
			stderr: "error: host labs/demo/hosts/h1 stopped\n"},
		{name: "ping_bad_destination", args: []string{"ping", "demo/h1", "nope"}, code: 1,
			stderr: "error: destination: \"nope\" is neither an address nor a host of lab demo\n"},
		{name: "ping_ambiguous_host", args: []string{"ping", "h1", "10.0.2.10"}, code: 1,
			stderr: "error: host \"h1\" is in several labs (demo, other): use --lab or LAB/h1\n", calls: []string{}},
		{name: "ping_unique_host", args: []string{"ping", "h2", "10.0.2.10", "-c", "3"}, golden: true,
			calls: []string{"Ping labs/demo/hosts/h2 10.0.2.10 count=3 interval=0s timeout=0s ttl=0 size=0 ipv6=false"}},
		{name: "ping_both_families", args: []string{"ping", "demo/h1", "h2", "-4", "-6"}, code: 1,
			stderr: "error: -4 and -6 cannot be used together\n", calls: []string{}},
		{name: "ping_bad_ttl", args: []string{"ping", "demo/h1", "h2", "-t", "300"}, code: 1,
			stderr: "error: ttl 300 out of range (1-255)\n", calls: []string{}},
		{name: "ping_bad_interval", args: []string{"ping", "demo/h1", "h2", "-i", "fast"}, code: 1,
			stderr: "error: invalid argument \"fast\" for \"-i, --interval\" flag: strconv.ParseFloat: parsing \"fast\": invalid syntax\n"},
		{name: "ping_one_arg", args: []string{"ping", "h1"}, code: 1,
			stderr: "error: labctl ping needs HOST DEST (got 1 argument)\n"},
	})
}

// interruptWriter cancels the run once its output contains a mark, as a
// Ctrl-C after the first reply would.
type interruptWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	mark   string
	cancel context.CancelFunc
}

func (w *interruptWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.mark) {
		w.cancel()
	}
	return n, err
}

func TestPingInterrupted(t *testing.T) {
	addr := newFakeServer().start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &interruptWriter{mark: "icmp_seq=1 ", cancel: cancel}
	var errb bytes.Buffer
	code := Run(ctx, []string{"--server", addr, "ping", "demo/h1", "forever"}, strings.NewReader(""), out, &errb,
		WithClock(stepClock(t0, 3*time.Second+456*time.Millisecond)), WithEnv(func(string) string { return "" }))
	if code != 0 {
		t.Errorf("exit code = %d, want 0 (a reply came back); stderr %q", code, errb.String())
	}
	if errb.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", errb.String())
	}
	checkGolden(t, "ping_interrupted", out.buf.String())
}

func TestTraceroute(t *testing.T) {
	runCases(t, []cliCase{
		{name: "traceroute", args: []string{"traceroute", "demo/h1", "10.0.2.10"}, golden: true,
			calls: []string{"Traceroute labs/demo/hosts/h1 10.0.2.10 max_hops=0 probes=0 timeout=0s ipv6=false"}},
		{name: "traceroute_not_reached", args: []string{"traceroute", "demo/h1", "h2", "-m", "4", "-q", "3", "-w", "0.5"}, golden: true, code: 1,
			calls: []string{"Traceroute labs/demo/hosts/h1 h2 max_hops=4 probes=3 timeout=500ms ipv6=false"}},
		{name: "traceroute_error", args: []string{"traceroute", "demo/h1", "nowhere"}, code: 1,
			stderr: "error: host \"labs/demo/hosts/h1\" not found\n"},
	})
}

func TestErrors(t *testing.T) {
	runCases(t, []cliCase{
		{name: "unknown_command", args: []string{"gett", "hosts"}, code: 1,
			stderr: "error: unknown command \"gett\" for \"labctl\"; did you mean \"get\"?\n"},
		{name: "unknown_flag", args: []string{"get", "hosts", "--colour"}, code: 1,
			stderr: "error: unknown flag: --colour\n"},
		{name: "unknown_shorthand", args: []string{"ping", "-x"}, code: 1,
			stderr: "error: unknown shorthand flag: 'x' in -x\n"},
	})
}

func TestServerUnreachable(t *testing.T) {
	// A port nobody listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	for _, args := range [][]string{
		{"get", "hosts"},
		{"ping", "h1", "h2"},
		{"describe", "host", "demo/h1"},
		{"delete", "host", "demo/h1", "demo/h2"},
		{"connections", "demo/h1"},
		{"fetch", "demo/h1", "http://h2/"},
		{"bench", "demo/h1", "h2"},
	} {
		got := runCLI(t.Context(), addr, "", args)
		want := "error: cannot reach labd at " + addr + ": dial tcp " + addr + ": connect: connection refused (is labd running?)\n"
		if got.code != 1 || got.stderr != want || got.stdout != "" {
			t.Errorf("labctl %s: code %d, stdout %q, stderr:\n got %q\nwant %q", strings.Join(args, " "), got.code, got.stdout, got.stderr, want)
		}
	}
}

func TestTimeout(t *testing.T) {
	f := newFakeServer()
	addr := f.start(t)
	got := runCLI(t.Context(), addr, "", []string{"get", "node", "slow", "--timeout", "50ms"})
	want := "error: labd at " + addr + " did not answer within 50ms\n"
	if got.code != 1 || got.stderr != want {
		t.Errorf("code %d, stderr:\n got %q\nwant %q", got.code, got.stderr, want)
	}
	got = runCLI(t.Context(), addr, "", []string{"get", "nodes", "--timeout", "0s"})
	if want := "error: --timeout must be positive, not 0s\n"; got.code != 1 || got.stderr != want {
		t.Errorf("code %d, stderr:\n got %q\nwant %q", got.code, got.stderr, want)
	}
}

func TestNoArguments(t *testing.T) {
	got := runCLI(t.Context(), "127.0.0.1:1", "", nil)
	if got.code != 0 || !strings.Contains(got.stdout, "Available Commands:") || got.stderr != "" {
		t.Errorf("labctl with no arguments: code %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
}

func TestEnvironment(t *testing.T) {
	addr := newFakeServer().start(t)
	env := map[string]string{EnvServer: addr, EnvLab: "demo"}
	var out, errb bytes.Buffer
	code := Run(t.Context(), []string{"get", "hosts"}, strings.NewReader(""), &out, &errb,
		WithClock(stepClock(t0, time.Second)), WithEnv(func(k string) string { return env[k] }))
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, errb.String())
	}
	// LABCTL_LAB=demo: no LAB column, only demo's hosts.
	checkGolden(t, "get_hosts_in_lab", out.String())
}

// compNoFile is what cobra's __complete says on stderr after our completions.
const compNoFile = "Completion ended with directive: ShellCompDirectiveNoFileComp\n"

func TestCompletion(t *testing.T) {
	runCases(t, []cliCase{
		{name: "complete_ping_host", args: []string{"__complete", "ping", ""}, golden: true, stderr: compNoFile},
		{name: "complete_ping_dest_in_lab", args: []string{"__complete", "--lab", "demo", "ping", "h1", "h"}, golden: true, stderr: compNoFile},
		{name: "complete_traceroute_dest", args: []string{"__complete", "traceroute", "other/h1", ""}, golden: true, stderr: compNoFile},
		{name: "complete_ping_dest", args: []string{"__complete", "ping", "h2", ""}, golden: true, stderr: compNoFile},
		{name: "complete_ping_lab_prefix", args: []string{"__complete", "ping", "demo/"}, golden: true, stderr: compNoFile},
		{name: "complete_describe_types", args: []string{"__complete", "describe", ""}, golden: true, stderr: compNoFile},
		{name: "complete_describe_hosts", args: []string{"__complete", "describe", "host", "r"}, golden: true, stderr: compNoFile},
		{name: "complete_get_nodes", args: []string{"__complete", "get", "nodes", ""}, golden: true, stderr: compNoFile},
		{name: "complete_lab_flag", args: []string{"__complete", "get", "hosts", "--lab", ""}, golden: true, stderr: compNoFile},
	})
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		got := runCLI(t.Context(), "127.0.0.1:1", "", []string{"completion", shell})
		if got.code != 0 || !strings.Contains(got.stdout, "labctl") {
			t.Errorf("completion %s: code %d, %d bytes, stderr %q", shell, got.code, len(got.stdout), got.stderr)
		}
	}
}

func TestImpair(t *testing.T) {
	runCases(t, []cliCase{
		{name: "impair", args: []string{"impair", "demo/h1:eth0", "--loss", "10%", "--delay", "20ms", "--jitter", "5ms"}, golden: true,
			calls: []string{"SetImpairment labs/demo/hosts/h1 eth0 {loss 10%, delay 20ms±5ms}"}},
		{name: "impair_every_flag", args: []string{"impair", "r1:eth1", "--rate", "1.5Mbit", "--corrupt", "0.1%", "--reorder", "25%",
			"--duplicate", "2%", "--jitter", "1ms", "--delay", "100ms", "--loss", "1%"}, golden: true,
			calls: []string{"SetImpairment labs/demo/hosts/r1 eth1 {loss 1%, delay 100ms±1ms, duplicate 2%, reorder 25%, corrupt 0.1%, rate 1500kbit}"}},
		// The flags replace the whole impairment: r1's eth1 had loss, delay and rate.
		{name: "impair_replaces", args: []string{"impair", "r1:eth1", "--delay", "1s"}, golden: true,
			calls: []string{"SetImpairment labs/demo/hosts/r1 eth1 {delay 1s}"}},
		{name: "impair_clear", args: []string{"--lab", "demo", "impair", "r1:eth1", "--clear"}, golden: true,
			calls: []string{"SetImpairment labs/demo/hosts/r1 eth1 {}"}},
		{name: "impair_json", args: []string{"impair", "h2:eth0", "--rate", "64kbit", "-o", "json"}, golden: true},
		{name: "impair_no_interface", args: []string{"impair", "h2", "--loss", "1%"}, code: 1,
			stderr: "error: \"h2\": want HOST:IFACE, e.g. h1:eth0\n", calls: []string{}},
		{name: "impair_empty_interface", args: []string{"impair", "h2:", "--loss", "1%"}, code: 1,
			stderr: "error: \"h2:\": want HOST:IFACE, e.g. h1:eth0\n", calls: []string{}},
		{name: "impair_nothing", args: []string{"impair", "h2:eth0"}, code: 1,
			stderr: "error: nothing to set: give impairments (--loss, --delay, --jitter, --duplicate, --reorder, --corrupt, --rate) or --clear\n", calls: []string{}},
		{name: "impair_clear_and_flags", args: []string{"impair", "h2:eth0", "--clear", "--loss", "1%"}, code: 1,
			stderr: "error: --clear cannot be combined with impairment flags\n", calls: []string{}},
		{name: "impair_bad_percentage", args: []string{"impair", "h2:eth0", "--loss", "150%"}, code: 1,
			stderr: "error: --loss: \"150%\" is out of range 0%-100%\n", calls: []string{}},
		{name: "impair_no_percent_sign", args: []string{"impair", "h2:eth0", "--corrupt", "1"}, code: 1,
			stderr: "error: --corrupt: \"1\" is not a percentage such as 10% (the % sign is required)\n", calls: []string{}},
		{name: "impair_bad_duration", args: []string{"impair", "h2:eth0", "--delay", "20"}, code: 1,
			stderr: "error: --delay: \"20\" is not a duration such as 20ms (a unit is required: ns, us, ms, s, m, h)\n", calls: []string{}},
		{name: "impair_bad_rate", args: []string{"impair", "h2:eth0", "--rate", "10mb"}, code: 1,
			stderr: "error: --rate: \"10mb\": unknown unit \"mb\" (units: bit, kbit, mbit, gbit, tbit)\n", calls: []string{}},
		{name: "impair_unknown_interface", args: []string{"impair", "h2:eth7", "--loss", "1%"}, code: 1,
			stderr: "error: interface \"eth7\" not found on host h2\n",
			calls:  []string{"SetImpairment labs/demo/hosts/h2 eth7 {loss 1%}"}},
		{name: "impair_ambiguous_host", args: []string{"impair", "h1:eth0", "--loss", "1%"}, code: 1,
			stderr: "error: host \"h1\" is in several labs (demo, other): use --lab or LAB/h1\n", calls: []string{}},
		{name: "impair_two_args", args: []string{"impair", "h1:eth0", "h2:eth0"}, code: 1,
			stderr: "error: labctl impair needs HOST:IFACE (got 2 arguments)\n"},
		{name: "complete_impair_hosts", args: []string{"__complete", "impair", "r"}, golden: true,
			stderr: "Completion ended with directive: ShellCompDirectiveNoSpace, ShellCompDirectiveNoFileComp\n"},
		{name: "complete_impair_interfaces", args: []string{"__complete", "impair", "r1:"}, golden: true, stderr: compNoFile},
	})
}

// TestImpairThenDescribe checks that describe shows what impair set.
func TestImpairThenDescribe(t *testing.T) {
	f := newFakeServer()
	addr := f.start(t)
	if got := runCLI(t.Context(), addr, "", []string{"impair", "demo/h1:eth0", "--loss", "10%", "--delay", "20ms", "--jitter", "5ms", "--reorder", "5%"}); got.code != 0 {
		t.Fatalf("impair: code %d, stderr %q", got.code, got.stderr)
	}
	got := runCLI(t.Context(), addr, "", []string{"describe", "host", "demo/h1"})
	if got.code != 0 {
		t.Fatalf("describe: code %d, stderr %q", got.code, got.stderr)
	}
	if want := "    Impair:     loss 10%, delay 20ms±5ms, reorder 5%\n"; !strings.Contains(got.stdout, want) {
		t.Errorf("describe host h1 does not show %q:\n%s", want, got.stdout)
	}
}

func TestConnections(t *testing.T) {
	runCases(t, []cliCase{
		{name: "connections", args: []string{"connections", "demo/h1"}, golden: true,
			calls: []string{"ListConnections labs/demo/hosts/h1"}},
		{name: "connections_info", args: []string{"connections", "--lab", "demo", "h1", "-i"}, golden: true},
		{name: "connections_absolute", args: []string{"conns", "demo/h1", "--tcp", "--absolute"}, golden: true},
		{name: "connections_udp", args: []string{"connections", "demo/h1", "--udp"}, golden: true},
		{name: "connections_listening", args: []string{"connections", "demo/h1", "-l", "-i"}, golden: true},
		{name: "connections_tcp_listening", args: []string{"connections", "demo/h1", "-t", "-l"}, golden: true},
		{name: "connections_json", args: []string{"connections", "demo/h1", "-o", "json"}, golden: true},
		{name: "connections_yaml", args: []string{"connections", "demo/h1", "-l", "-o", "yaml"}, golden: true},
		{name: "connections_none", args: []string{"connections", "h2"},
			stderr: "No connections found on host h2.\n"},
		{name: "connections_none_json", args: []string{"connections", "h2", "-o", "json"}, golden: true},
		{name: "connections_unavailable", args: []string{"connections", "r1"}, code: 1,
			stderr: "error: node n2 is unreachable\n"},
		{name: "connections_ambiguous", args: []string{"connections", "h1"}, code: 1,
			stderr: "error: host \"h1\" is in several labs (demo, other): use --lab or LAB/h1\n", calls: []string{}},
		{name: "connections_no_host", args: []string{"connections"}, code: 1,
			stderr: "error: labctl connections needs HOST (got 0 arguments)\n"},
		{name: "complete_connections", args: []string{"__complete", "connections", "demo/"}, golden: true, stderr: compNoFile},
	})
}

func TestTCPInfoLine(t *testing.T) {
	// Relative sequence numbers are right across wrap-around of the 32-bit
	// sequence space, on either side.
	ti := &labv1.TCPInfo{Iss: 0xffff_fff0, SndUna: 0x10, SndNxt: 0x20, Irs: 5, RcvNxt: 6, Ssthresh: 1<<30 - 1}
	got := tcpInfoLine(ti, false)
	for _, want := range []string{" snd_una:32 ", " snd_nxt:48 ", " rcv_nxt:1 ", " ssthresh:1073741823 ", " srtt:0ms "} {
		if !strings.Contains(" "+got+" ", want) {
			t.Errorf("tcpInfoLine = %q, missing %q", got, want)
		}
	}
	if got := tcpInfoLine(ti, true); !strings.Contains(got, " snd_una:16 snd_nxt:32 rcv_nxt:6 ") {
		t.Errorf("tcpInfoLine absolute = %q", got)
	}
}

func TestFetch(t *testing.T) {
	runCases(t, []cliCase{
		{name: "fetch", args: []string{"fetch", "demo/h1", "http://10.0.2.10/"}, golden: true,
			calls: []string{"Fetch labs/demo/hosts/h1 http://10.0.2.10/ timeout=30s"}},
		{name: "fetch_include", args: []string{"fetch", "demo/h1", "http://h2/", "-i", "--timeout", "2m"}, golden: true,
			calls: []string{"Fetch labs/demo/hosts/h1 http://h2/ timeout=2m0s"}},
		// -O -: the body on stdout, the summary on stderr (the fake clock
		// moves 2.003s between the start and the end).
		{name: "fetch_stdout_summary", args: []string{"fetch", "demo/h1", "http://h2/", "-O", "-"}, golden: true,
			stderr: "fetched 42 bytes in 2.00s (168 bit/s) from 10.0.2.10:80, status 200 OK\n"},
		{name: "fetch_404", args: []string{"fetch", "demo/h1", "http://h2/missing"}, golden: true, code: 1,
			stderr: "error: GET http://h2/missing: 404 Not Found\n"},
		{name: "fetch_404_include", args: []string{"fetch", "demo/h1", "http://h2/missing", "-i"}, golden: true, code: 1,
			stderr: "error: GET http://h2/missing: 404 Not Found\n"},
		{name: "fetch_broken", args: []string{"fetch", "demo/h1", "http://h2/broken"}, golden: true, code: 1,
			stderr: "error: reading the body: unexpected EOF\n"},
		{name: "fetch_unreachable", args: []string{"fetch", "demo/h1", "http://nowhere/"}, code: 1,
			stderr: "error: GET http://nowhere/: dial tcp nowhere:80: \"nowhere\" is neither an IP address nor a host of lab demo\n"},
		{name: "fetch_bad_url", args: []string{"fetch", "demo/h1", "https://h2/"}, code: 1,
			stderr: "error: url: \"https://h2/\" is not an http:// URL\n"},
		{name: "fetch_bad_timeout", args: []string{"fetch", "demo/h1", "http://h2/", "--timeout", "0s"}, code: 1,
			stderr: "error: --timeout must be positive, not 0s\n", calls: []string{}},
		{name: "fetch_one_arg", args: []string{"fetch", "demo/h1"}, code: 1,
			stderr: "error: labctl fetch needs HOST URL (got 1 argument)\n"},
		{name: "complete_fetch_host", args: []string{"__complete", "fetch", "h"}, golden: true, stderr: compNoFile},
		{name: "complete_fetch_url", args: []string{"__complete", "fetch", "demo/h1", ""}, golden: true,
			stderr: "Completion ended with directive: ShellCompDirectiveNoSpace, ShellCompDirectiveNoFileComp\n"},
		{name: "complete_fetch_url_host", args: []string{"__complete", "fetch", "demo/h1", "http://r"}, golden: true,
			stderr: "Completion ended with directive: ShellCompDirectiveNoSpace, ShellCompDirectiveNoFileComp\n"},
		{name: "complete_fetch_url_path", args: []string{"__complete", "fetch", "demo/h1", "http://r1/"}, golden: true, stderr: compNoFile},
	})
}

// TestFetchToFile checks -O FILE: the body in the file, the summary on
// stderr, nothing on stdout; a failed transfer leaves no file; a 404 keeps
// its body.
func TestFetchToFile(t *testing.T) {
	addr := newFakeServer().start(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, url  string
		include    bool
		code       int
		stderr     string
		file       string // golden name of the file's content; "" when no file must be left
		oldContent bool   // the file exists before
	}{
		{name: "fetch_file", url: "http://10.0.2.10/", file: "fetch",
			stderr: "fetched 42 bytes in 2.00s (168 bit/s) from 10.0.2.10:80, status 200 OK\n"},
		{name: "fetch_file_include", url: "http://h2/", include: true, file: "fetch_include",
			stderr: "fetched 42 bytes in 2.00s (168 bit/s) from 10.0.2.10:80, status 200 OK\n"},
		{name: "fetch_file_404", url: "http://h2/missing", code: 1, file: "fetch_404",
			stderr: "fetched 19 bytes in 2.00s (75.9 bit/s) from 10.0.2.10:80, status 404 Not Found\n" +
				"error: GET http://h2/missing: 404 Not Found\n"},
		{name: "fetch_file_broken", url: "http://h2/broken", code: 1, oldContent: true,
			stderr: "error: reading the body: unexpected EOF\n"},
		{name: "fetch_file_unreachable", url: "http://nowhere/", code: 1,
			stderr: "error: GET http://nowhere/: dial tcp nowhere:80: \"nowhere\" is neither an IP address nor a host of lab demo\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".out")
			if tc.oldContent {
				if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"fetch", "demo/h1", tc.url, "-O", path}
			if tc.include {
				args = append(args, "-i")
			}
			got := runCLI(t.Context(), addr, "", args)
			if got.code != tc.code || got.stderr != tc.stderr || got.stdout != "" {
				t.Errorf("code %d, stdout %q, stderr:\n got %q\nwant %q", got.code, got.stdout, got.stderr, tc.stderr)
			}
			b, err := os.ReadFile(path)
			switch {
			case tc.file == "" && !os.IsNotExist(err):
				t.Errorf("%s is left behind (%v): %q", path, err, b)
			case tc.file != "" && err != nil:
				t.Error(err)
			case tc.file != "":
				checkGolden(t, tc.file, string(b))
			}
		})
	}
}

func TestBench(t *testing.T) {
	runCases(t, []cliCase{
		{name: "bench", args: []string{"bench", "demo/h1", "h2"}, golden: true,
			calls: []string{"Bench labs/demo/hosts/h1 h2 bytes=0 duration=0s ipv6=false"}},
		{name: "bench_json", args: []string{"bench", "demo/h1", "h2", "-o", "json", "--time", "10s"}, golden: true,
			calls: []string{"Bench labs/demo/hosts/h1 h2 bytes=0 duration=10s ipv6=false"}},
		{name: "bench_yaml", args: []string{"bench", "demo/h1", "h2", "-o", "yaml"}, golden: true},
		{name: "bench_bytes", args: []string{"bench", "demo/h1", "10.0.2.10", "--bytes", "100MiB"}, golden: true,
			calls: []string{"Bench labs/demo/hosts/h1 10.0.2.10 bytes=104857600 duration=0s ipv6=false"}},
		{name: "bench_bytes_decimal", args: []string{"bench", "demo/h1", "10.0.2.10", "--bytes", "10M", "-o", "json"}, golden: true,
			calls: []string{"Bench labs/demo/hosts/h1 10.0.2.10 bytes=10000000 duration=0s ipv6=false"}},
		{name: "bench_slow_ipv6", args: []string{"bench", "demo/h1", "fd00:0:0:2::10", "-6", "--time", "2s"}, golden: true,
			calls: []string{"Bench labs/demo/hosts/h1 fd00:0:0:2::10 bytes=0 duration=2s ipv6=true"}},
		{name: "bench_broken", args: []string{"bench", "demo/h1", "broken"}, golden: true, code: 1,
			stderr: "error: after 120000000 bytes: connection reset by peer\n"},
		{name: "bench_no_result", args: []string{"bench", "demo/h1", "silent"}, golden: true, code: 1,
			stderr: "error: labd ended the bench without a result\n"},
		{name: "bench_refused", args: []string{"bench", "demo/h1", "10.0.9.9"}, code: 1,
			stderr: "error: connect to 10.0.9.9 port 9 (discard): connection refused\n"},
		{name: "bench_bytes_and_time", args: []string{"bench", "demo/h1", "h2", "--bytes", "1G", "--time", "5s"}, code: 1,
			stderr: "error: --bytes and --time cannot be used together\n", calls: []string{}},
		{name: "bench_bad_bytes", args: []string{"bench", "demo/h1", "h2", "--bytes", "10mb"}, code: 1,
			stderr: "error: --bytes: \"10mb\" is not a byte count such as 10M, 1G or 100MiB\n", calls: []string{}},
		{name: "bench_zero_bytes", args: []string{"bench", "demo/h1", "h2", "--bytes", "0"}, code: 1,
			stderr: "error: --bytes must be more than 0\n", calls: []string{}},
		{name: "bench_negative_time", args: []string{"bench", "demo/h1", "h2", "--time", "-1s"}, code: 1,
			stderr: "error: --time must be positive, not -1s\n", calls: []string{}},
		{name: "bench_both_families", args: []string{"bench", "demo/h1", "h2", "-4", "-6"}, code: 1,
			stderr: "error: -4 and -6 cannot be used together\n", calls: []string{}},
		{name: "complete_bench_dest", args: []string{"__complete", "bench", "demo/h1", ""}, golden: true, stderr: compNoFile},
	})
}
