package main_test

// The TUN gateway, in a network namespace the test creates: labd runs in
// it (ip netns exec) with a TUN device attached to router r1, and the
// namespace's kernel reaches the lab through it and back. Needs root
// (nstest skips otherwise), iproute2, ping and curl.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/tun/nstest"
)

func TestTunGateway(t *testing.T) {
	ns := nstest.New(t)
	nstest.RequireCommand(t, "ping", "iputils-ping")
	nstest.RequireCommand(t, "curl", "curl")
	d := startLabdUnder(t, []string{"ip", "netns", "exec", ns.Name()}, t.TempDir(),
		"--name", "e2e", "--api", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--overlay", "127.0.0.1:0",
		"--tun", "labtun0", "--tun-router", "demo/r1", "--tun-net", "10.254.0.0/30,fd00:fe::/64",
		"--tun-routes", "10.0.0.0/16,fd00::/16")
	d.ok("apply", "-f", examples(t, "two-lans.yaml"))
	d.waitPing("h1", "h2")

	// The kernel's routes to the lab, which labd installed in the
	// namespace.
	routes := string(ns.Run("ip", "route", "show", "dev", "labtun0"))
	if !strings.Contains(routes, "10.0.0.0/16") {
		t.Fatalf("kernel routes on labtun0:\n%s", routes)
	}

	// Kernel -> lab: ping h2 across r1 (h2's TTL 64, less r1's hop).
	waitKernelPing(t, ns, d, "10.0.2.10")
	for _, dst := range []string{"10.0.2.10", "fd00:0:0:2::10"} {
		out := string(ns.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", dst))
		if !strings.Contains(out, "3 received") || !strings.Contains(out, "ttl=63") {
			t.Errorf("kernel ping %s through the gateway:\n%s", dst, out)
		}
	}
	// Kernel -> lab: curl h2's web service; h2 sees the kernel's address.
	page := string(ns.Run("curl", "-sS", "--max-time", "30", "http://10.0.2.10/"))
	if !strings.Contains(page, "You are 10.254.0.1 ") {
		t.Errorf("curl http://10.0.2.10/ from the namespace:\n%s", page)
	}
	body := ns.Run("curl", "-sS", "--max-time", "60", "http://10.0.2.10/bytes/1000000")
	if len(body) != 1000000 {
		t.Errorf("curl /bytes/1000000 from the namespace: %d bytes", len(body))
	}

	// Lab -> kernel: a server in the namespace, on the kernel's address
	// of the link, answers h1, and sees h1's address.
	var l net.Listener
	if err := ns.Do(func() (err error) { l, err = net.Listen("tcp", "10.254.0.1:8000"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kernel server, you are %s\n", r.RemoteAddr)
	})}
	go srv.Serve(l)
	defer srv.Close()
	out := d.ok("fetch", "h1", "http://10.254.0.1:8000/")
	if !regexp.MustCompile(`kernel server, you are 10\.0\.1\.10:\d+`).MatchString(out) {
		t.Errorf("fetch from h1 to the namespace's server: %q", out)
	}
	if out := d.ok("ping", "h2", "10.254.0.1", "-c", "2", "-i", "0.2"); !strings.Contains(out, "2 received") {
		t.Errorf("ping from h2 to the kernel:\n%s", out)
	}

	// A change to r1 restarts it (a new stack): the gateway is attached to
	// the new r1, and the kernel reaches h2 again.
	topo, err := os.ReadFile(examples(t, "two-lans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(topo), "  - name: r1\n", "  - name: r1\n    routes: [{to: 192.0.2.0/24, via: 10.0.2.10}]\n", 1)
	f := filepath.Join(t.TempDir(), "r1-changed.yaml")
	os.WriteFile(f, []byte(changed), 0o644)
	d.ok("apply", "-f", f)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.ok("describe", "host", "r1"), "192.0.2.0/24") {
		if time.Now().After(deadline) {
			t.Fatalf("r1 did not restart with its new route:\n%s", d.ok("describe", "host", "r1"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := d.ok("describe", "host", "r1"); !strings.Contains(out, "labtun0") {
		t.Errorf("the restarted r1 has no labtun0 interface:\n%s", out)
	}
	waitKernelPing(t, ns, d, "10.0.2.10")
}

// waitKernelPing waits until the namespace's ping reaches dst: the router
// starts, and the gateway attaches, a moment after apply.
func waitKernelPing(t *testing.T, ns *nstest.NS, d *labd, dst string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := ns.Exec("ping", "-c", "1", "-W", "1", dst)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the namespace's ping does not reach %s through the gateway:\n%s\nlabd:\n%s", dst, out, d.log)
		}
	}
}

// TestTunNeedsCapNetAdmin: without CAP_NET_ADMIN, labd --tun exits 1 with
// one line that says so, and leaves no interface behind.
func TestTunNeedsCapNetAdmin(t *testing.T) {
	ns := nstest.New(t)
	nstest.RequireCommand(t, "setpriv", "util-linux")
	cmd := exec.Command("ip", "netns", "exec", ns.Name(), "setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin",
		filepath.Join(binDir, "labd"), "--data", t.TempDir(), "--api", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--overlay", "127.0.0.1:0",
		"--tun", "labtun0", "--tun-router", "demo/r1")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("labd without CAP_NET_ADMIN: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "labd: --tun labtun0: ") || !strings.Contains(last, "CAP_NET_ADMIN") {
		t.Errorf("labd's last line %q does not say it needs CAP_NET_ADMIN:\n%s", last, out)
	}
	if out, err := ns.Exec("ip", "link", "show", "labtun0"); err == nil {
		t.Errorf("labtun0 exists after labd failed:\n%s", out)
	}
}
