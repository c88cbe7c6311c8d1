package stack_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are what the stack must never import, even in its tests
// (DESIGN.md: "stack/ imports nothing from node/, grpc or memberlist"), so it
// stays a library that any program, and the interop module, can embed.
var forbiddenDeps = []string{
	"github.com/labnet-dev/labnet/node",
	"google.golang.org/grpc",
	"github.com/hashicorp/memberlist",
}

// TestDeps lists every package stack/... and its tests depend on, as
// Tailscale's deps_test.go does, and fails on a forbidden one.
func TestDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatalf("not in a module (go env GOMOD = %q)", gomod)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-test", "./stack/...")
	cmd.Dir = filepath.Dir(gomod)
	out, err = cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps -test ./stack/...: %v\n%s", err, msg)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) == 0 {
		t.Fatal("go list printed no packages")
	}
	if !slices.Contains(pkgs, "github.com/labnet-dev/labnet/stack") {
		t.Errorf("go list did not list the stack itself; output:\n%s", out)
	}
	for _, p := range forbidden(pkgs) {
		t.Errorf("stack depends on %s", p)
	}
}

// forbidden returns the packages of pkgs that are, or are under, one of
// forbiddenDeps.
func forbidden(pkgs []string) []string {
	var bad []string
	for _, p := range pkgs {
		for _, f := range forbiddenDeps {
			if p == f || strings.HasPrefix(p, f+"/") {
				bad = append(bad, p)
			}
		}
	}
	return bad
}

// TestDepsMatcher checks the matcher itself, so that TestDeps cannot pass by
// matching nothing.
func TestDepsMatcher(t *testing.T) {
	pkgs := []string{
		"fmt",
		"github.com/labnet-dev/labnet/stack",
		"github.com/labnet-dev/labnet/stack/wire",
		"github.com/labnet-dev/labnet/node",
		"github.com/labnet-dev/labnet/node/fabric",
		"github.com/labnet-dev/labnet/nodeish", // a sibling, not under node/
		"google.golang.org/grpc",
		"google.golang.org/grpc/status",
		"google.golang.org/grpcx",
		"github.com/hashicorp/memberlist",
		"github.com/hashicorp/go-msgpack/v2/codec",
	}
	want := []string{
		"github.com/labnet-dev/labnet/node",
		"github.com/labnet-dev/labnet/node/fabric",
		"google.golang.org/grpc",
		"google.golang.org/grpc/status",
		"github.com/hashicorp/memberlist",
	}
	if got := forbidden(pkgs); !slices.Equal(got, want) {
		t.Errorf("forbidden = %q, want %q", got, want)
	}
}
