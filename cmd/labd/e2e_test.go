package main_test

// End-to-end tests: real labd processes on loopback driven by the real
// labctl binary, as a newcomer would run them.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "labnet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, cmd := range []string{"labd", "labctl"} {
		b := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/labnet-dev/labnet/cmd/"+cmd)
		b.Stderr = os.Stderr
		if err := b.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", cmd, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// examples is the repository's examples/ directory.
func examples(t testing.TB, name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", name)
}

// labd is one running labd process.
type labd struct {
	args []string // to start it again
	wrap []string // a command labd and labctl run under (ip netns exec NS), if any
	t    testing.TB
	data string
	// admin is the data directory of the node that formed the cluster's
	// control plane: its admin.token and ca.crt are labctl's credential.
	admin string
	api   string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	done  chan error
}

var readyRE = regexp.MustCompile(`labd ready.*api=(\S+)`)

// startLabd starts labd on data with the API on an ephemeral loopback port
// (or api, when given) and waits until it is ready.
func startLabd(t testing.TB, data, api string) *labd {
	t.Helper()
	if api == "" {
		api = "127.0.0.1:0"
	}
	return startLabdArgs(t, data, "--name", "e2e", "--api", api, "--gossip", "127.0.0.1:0", "--overlay", "127.0.0.1:0")
}

// startLabdArgs starts labd on data with the given flags.
func startLabdArgs(t testing.TB, data string, args ...string) *labd {
	t.Helper()
	return startLabdUnder(t, nil, data, args...)
}

// command is bin (from binDir) with args, run under wrap.
func command(ctx context.Context, wrap []string, bin string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), wrap...), filepath.Join(binDir, bin)), args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// startLabdUnder is startLabdArgs with labd, and the labctl commands of
// the labd returned, run under wrap.
func startLabdUnder(t testing.TB, wrap []string, data string, args ...string) *labd {
	t.Helper()
	cmd := command(context.Background(), wrap, "labd", append([]string{"--data", data}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &labd{args: args, wrap: wrap, t: t, data: data, admin: adminData(t, data, args), cmd: cmd, log: &bytes.Buffer{}, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.log.WriteString(line + "\n")
			if m := readyRE.FindStringSubmatch(line); m != nil {
				ready <- m[1]
			}
		}
		d.done <- cmd.Wait()
	}()
	select {
	case d.api = <-ready:
	case err := <-d.done:
		t.Fatalf("labd exited before ready: %v\n%s", err, d.log)
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("labd not ready after 20s\n%s", d.log)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop sends sig and waits for labd to exit, returning its exit error.
func (d *labd) stop(sig os.Signal) error {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		return err
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		d.t.Fatalf("labd did not exit after %v\n%s", sig, d.log)
		return nil
	}
}

// labctl runs labctl against d and returns stdout, stderr and the exit code.
func (d *labd) labctl(args ...string) (string, string, int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := d.labctlCommand(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("labctl %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// labctlCommand is labctl against d with the cluster's admin credential.
func (d *labd) labctlCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := command(ctx, d.wrap, "labctl", append([]string{"--server", d.api}, args...)...)
	cmd.Env = append(os.Environ(), d.labctlEnv()...)
	return cmd
}

// ok runs labctl and fails the test unless it exits 0.
func (d *labd) ok(args ...string) string {
	d.t.Helper()
	out, errs, code := d.labctl(args...)
	if code != 0 {
		d.t.Fatalf("labctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// waitPing pings until a reply comes back: hosts start asynchronously
// after apply.
func (d *labd) waitPing(host, dest string) {
	d.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, code := d.labctl("ping", host, dest, "-c", "1", "-W", "0.5")
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("ping %s %s: no reply within 15s", host, dest)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestQuickstart(t *testing.T) {
	d := startLabd(t, t.TempDir(), "")
	out := d.ok("apply", "-f", examples(t, "two-lans.yaml"))
	for _, want := range []string{"lab/demo created", "network/lan1 created", "network/lan2 created", "host/r1 created", "host/h1 created", "host/h2 created"} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply: missing %q in:\n%s", want, out)
		}
	}
	out = d.ok("apply", "-f", examples(t, "two-lans.yaml"))
	if strings.Contains(out, "created") || strings.Contains(out, "configured") || !strings.Contains(out, "host/h1 unchanged") {
		t.Errorf("second apply should change nothing:\n%s", out)
	}
	out = d.ok("get", "hosts")
	for _, want := range []string{"r1", "h1", "h2", "10.0.1.10/24", "10.0.2.10/24", "router"} {
		if !strings.Contains(out, want) {
			t.Errorf("get hosts: missing %q in:\n%s", want, out)
		}
	}
	d.waitPing("h1", "10.0.2.10")

	t.Run("ping v4 by name", func(t *testing.T) {
		out := d.ok("ping", "h1", "h2", "-c", "3", "-i", "0.2")
		for _, want := range []string{"PING h2 (10.0.2.10)", "from 10.0.2.10: icmp_seq=1 ttl=63 time=", "3 packets transmitted, 3 received, 0% packet loss", "rtt min/avg/max/mdev = "} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
	})
	t.Run("ping v6", func(t *testing.T) {
		out := d.ok("ping", "h1", "fd00:0:0:2::10", "-c", "2", "-i", "0.2")
		if !strings.Contains(out, "from fd00:0:0:2::10: icmp_seq=1 ttl=63") || !strings.Contains(out, "2 received, 0% packet loss") {
			t.Errorf("ping6:\n%s", out)
		}
	})
	t.Run("traceroute v4", func(t *testing.T) {
		out := d.ok("traceroute", "h1", "10.0.2.10")
		hops := hopAddrs(out)
		if strings.Join(hops, " ") != "10.0.1.1 10.0.2.10" {
			t.Errorf("hops = %v, want [10.0.1.1 10.0.2.10]:\n%s", hops, out)
		}
	})
	t.Run("traceroute v6", func(t *testing.T) {
		out := d.ok("traceroute", "h1", "fd00:0:0:2::10")
		hops := hopAddrs(out)
		if strings.Join(hops, " ") != "fd00:0:0:1::1 fd00:0:0:2::10" {
			t.Errorf("hops = %v:\n%s", hops, out)
		}
	})
	t.Run("ping nobody", func(t *testing.T) {
		out, _, code := d.labctl("ping", "h1", "10.0.2.99", "-c", "2", "-i", "0.2", "-W", "0.5")
		if code != 1 || !strings.Contains(out, "From 10.0.1.1 icmp_seq=1 Destination Host Unreachable") || !strings.Contains(out, "0 received") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("ttl exceeded", func(t *testing.T) {
		out, _, code := d.labctl("ping", "h1", "10.0.2.10", "-c", "1", "-t", "1")
		if code != 1 || !strings.Contains(out, "From 10.0.1.1 icmp_seq=1 Time to live exceeded") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("describe", func(t *testing.T) {
		out := d.ok("describe", "host", "r1")
		for _, want := range []string{"eth0", "eth1", "10.0.1.1/24", "10.0.2.1/24", "fd00:0:0:1::1/64", "connected"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
	})
}

// hopAddrs returns the first address on each hop line of traceroute output.
func hopAddrs(out string) []string {
	var hops []string
	re := regexp.MustCompile(`^\s*\d+\s+(\S+)`)
	for _, line := range strings.Split(out, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			hops = append(hops, m[1])
		}
	}
	return hops
}

func TestChainTraceroute(t *testing.T) {
	d := startLabd(t, t.TempDir(), "")
	d.ok("apply", "-f", examples(t, "chain.yaml"))
	out := d.ok("get", "hosts", "--lab", "chain", "-o", "json")
	if !strings.Contains(out, `"items"`) {
		t.Fatalf("get -o json: %s", out)
	}
	d.waitPing("chain/a", "b")
	for _, v6 := range []bool{false, true} {
		args := []string{"traceroute", "chain/a", "b"}
		if v6 {
			args = append(args, "-6")
		}
		out := d.ok(args...)
		hops := hopAddrs(out)
		if len(hops) != 4 {
			t.Fatalf("v6=%v: %d hops, want r1 r2 r3 b:\n%s", v6, len(hops), out)
		}
		for i, h := range hops {
			wantV6 := strings.Contains(h, ":")
			if wantV6 != v6 {
				t.Errorf("hop %d %s: wrong family", i+1, h)
			}
		}
		out = d.ok(append([]string{"ping", "chain/a", "b", "-c", "2", "-i", "0.2"}, args[3:]...)...)
		// The reply crosses r3, r2 and r1: 64 - 3.
		if !strings.Contains(out, "ttl=61") || !strings.Contains(out, "2 received") {
			t.Errorf("ping across three routers:\n%s", out)
		}
	}
}

func TestBadInputLeavesLabUnchanged(t *testing.T) {
	d := startLabd(t, t.TempDir(), "")
	d.ok("apply", "-f", examples(t, "two-lans.yaml"))
	before := d.ok("get", "hosts", "-o", "yaml") + d.ok("get", "networks", "-o", "yaml") + d.ok("get", "labs", "-o", "yaml")
	good, err := os.ReadFile(examples(t, "two-lans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		old, new string // replace in the example file
		want     string // in the one-line error
	}{
		{"invalid cidr", "ipv4: 10.0.2.0/24", "ipv4: 10.0.2.0/33", "networks[1].ipv4"},
		{"address outside its network", "ipv4: 10.0.2.10/24", "ipv4: 10.0.9.10/24", "interfaces[0].ipv4"},
		{"duplicate address", "ipv4: 10.0.2.10/24", "ipv4: 10.0.2.1/24", "already used by r1"},
		{"duplicate name", "name: h2", "name: h1", "appears twice"},
		{"unknown network", "network: lan2\n", "network: lan9\n", "unknown network"},
		{"route via unattached", "via: 10.0.1.1", "via: 10.0.7.1", "routes[0].via"},
		{"malformed yaml", "hosts:", "hosts: [", "yaml"},
		{"unknown field", "forwarding: true", "forwardin: true", "forwardin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(tc.old)) {
				t.Fatalf("example lacks %q", tc.old)
			}
			bad := bytes.Replace(good, []byte(tc.old), []byte(tc.new), 1)
			// The new host h3 proves that nothing of a failed apply lands.
			bad = append(bad, []byte("  - name: h3\n    interfaces: [lan1]\n")...)
			f := filepath.Join(t.TempDir(), "bad.yaml")
			os.WriteFile(f, bad, 0o644)
			out, errs, code := d.labctl("apply", "-f", f)
			if code == 0 {
				t.Fatalf("apply succeeded:\n%s", out)
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n"); n != 0 || !strings.Contains(errs, tc.want) {
				t.Errorf("stderr should be one line naming %q, got:\n%s", tc.want, errs)
			}
			after := d.ok("get", "hosts", "-o", "yaml") + d.ok("get", "networks", "-o", "yaml") + d.ok("get", "labs", "-o", "yaml")
			if after != before {
				t.Errorf("lab changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func TestRestartKeepsLab(t *testing.T) {
	data := t.TempDir()
	d := startLabd(t, data, "")
	d.ok("apply", "-f", examples(t, "two-lans.yaml"))
	d.ok("apply", "-f", examples(t, "chain.yaml"))
	want := d.ok("get", "hosts", "-o", "json") + d.ok("get", "networks", "-o", "json")

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		err := d.stop(sig)
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("labd after SIGTERM: %v (want exit 0)\n%s", err, d.log)
		}
		if sig == syscall.SIGTERM && !strings.Contains(d.log.String(), "labd stopped") {
			t.Errorf("no clean shutdown in log:\n%s", d.log)
		}
		d = startLabd(t, data, "")
		got := d.ok("get", "hosts", "-o", "json") + d.ok("get", "networks", "-o", "json")
		if got != want {
			t.Fatalf("after %v the lab differs:\nwant:\n%s\ngot:\n%s", sig, want, got)
		}
		d.waitPing("demo/h1", "h2")
	}
}
