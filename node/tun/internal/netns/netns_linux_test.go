//go:build linux

package netns

import (
	"errors"
	"os"
	"testing"
)

// TestDoBadPath needs no privileges: the namespace cannot be opened, so f
// never runs.
func TestDoBadPath(t *testing.T) {
	called := false
	err := Do("/nonexistent/netns", func() error { called = true; return nil })
	if !errors.Is(err, os.ErrNotExist) || called {
		t.Fatalf("Do(bad path) = %v, f called %v; want ErrNotExist, not called", err, called)
	}
}

// TestDoOwnNamespace enters the namespace the process is already in and
// hands back f's error.
func TestDoOwnNamespace(t *testing.T) {
	want := errors.New("from f")
	err := Do("/proc/self/ns/net", func() error { return want })
	if os.Geteuid() != 0 {
		if err == nil {
			t.Fatal("setns without root succeeded")
		}
		t.Skipf("setns needs CAP_SYS_ADMIN: %v", err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Do = %v, want f's error", err)
	}
}
