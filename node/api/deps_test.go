package api_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDeps fences the API layer: it translates to the lab model and to
// node/probe, and reaches the stack only through them. It imports neither
// the stack nor its protocols, and depends on no part of the packet path
// (fabric, overlay) or of the daemon that implements its LiveHost.
func TestDeps(t *testing.T) {
	const mod = "github.com/labnet-dev/labnet/"
	imports := goList(t, "{{join .Imports \"\\n\"}}", "./node/api")
	for _, p := range []string{"stack", "stack/tcp", "stack/udp", "stack/wire", "node/fabric"} {
		if slices.Contains(imports, mod+p) {
			t.Errorf("node/api imports %s", p)
		}
	}
	deps := goList(t, "{{.ImportPath}}", "-deps", "./node/api")
	if !slices.Contains(deps, mod+"node/probe") {
		t.Fatalf("go list -deps ./node/api did not list node/probe: %q", deps)
	}
	for _, p := range []string{"node/fabric", "node/overlay", "node/runtime", "node/cluster"} {
		if slices.Contains(deps, mod+p) {
			t.Errorf("node/api depends on %s", p)
		}
	}
}

// goList runs go list -f format args in the module's root.
func goList(t *testing.T, format string, args ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == "/dev/null" {
		t.Fatalf("go env GOMOD = %q: %v", gomod, err)
	}
	cmd := exec.Command(goBin, append([]string{"list", "-f", format}, args...)...)
	cmd.Dir = filepath.Dir(gomod)
	out, err = cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %q: %v\n%s", args, err, msg)
	}
	return strings.Fields(string(out))
}
