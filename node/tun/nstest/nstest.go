// Package nstest gives a test its own Linux network namespace, so that what
// the test does to the kernel's network (TUN devices, addresses, routes,
// kernel sockets) stays inside it and goes away with it.
//
// Tests that use it need root and iproute2's ip command; without them New
// skips the test with a message saying what is missing. Debian packages:
// iproute2 (ip), and iputils-ping for tests that run ping.
package nstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/labnet-dev/labnet/node/tun/internal/netns"
)

// NS is a network namespace created for one test and deleted when the test
// ends.
type NS struct {
	t    testing.TB
	name string
}

// New creates a uniquely named network namespace, labnet-test-<random>, with
// its loopback interface up, and registers its deletion with t.Cleanup. It
// skips the test when the namespace cannot be made: not Linux, not root, no
// ip command, or a kernel or container that refuses namespaces.
func New(t testing.TB) *NS {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("nstest: network namespaces are Linux-only (GOOS=%s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		t.Skip("nstest: creating a network namespace needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run the test as root, e.g. sudo -E go test")
	}
	RequireCommand(t, "ip", "iproute2")

	var b [4]byte
	rand.Read(b[:])
	ns := &NS{t: t, name: "labnet-test-" + hex.EncodeToString(b[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "Operation not permitted") || strings.Contains(msg, "Permission denied") {
			t.Skipf("nstest: this machine does not let root create network namespaces (an unprivileged container?): ip netns add %s: %v: %s", ns.name, err, msg)
		}
		t.Fatalf("nstest: ip netns add %s: %v: %s", ns.name, err, msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns.name).CombinedOutput(); err != nil {
			t.Errorf("nstest: ip netns delete %s: %v: %s", ns.name, err, bytes.TrimSpace(out))
		}
	})
	ns.Run("ip", "link", "set", "lo", "up")
	return ns
}

// RequireCommand skips the test when the command name is not on PATH,
// naming the Debian package that provides it.
func RequireCommand(t testing.TB, name, debianPackage string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("nstest: needs the %s command (Debian package %s: apt-get install %s)", name, debianPackage, debianPackage)
	}
}

// Name is the namespace's name, as `ip netns list` shows it.
func (ns *NS) Name() string { return ns.name }

// Path is the namespace's bind mount, /var/run/netns/NAME, for setns(2) and
// tun.OpenInNamespace.
func (ns *NS) Path() string { return "/var/run/netns/" + ns.name }

// Exec runs args inside the namespace (ip netns exec NAME args...) and
// returns its combined output. The command is killed when the test ends.
func (ns *NS) Exec(args ...string) ([]byte, error) {
	ns.t.Helper()
	cmd := exec.CommandContext(ns.t.Context(), "ip", append([]string{"netns", "exec", ns.name}, args...)...)
	return cmd.CombinedOutput()
}

// Run is Exec that fails the test, showing the output, when the command
// fails.
func (ns *NS) Run(args ...string) []byte {
	ns.t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		ns.t.Fatalf("nstest: in netns %s: %s: %v\n%s", ns.name, strings.Join(args, " "), err, out)
	}
	return out
}

// Do calls f on an OS thread inside the namespace and returns f's error.
// Sockets f opens (net.Listen, net.Dial, ...) belong to the namespace for
// their whole life, so a test can run kernel TCP endpoints from Go. Only f
// itself runs in the namespace, not goroutines it starts.
func (ns *NS) Do(f func() error) error {
	return netns.Do(ns.Path(), f)
}
