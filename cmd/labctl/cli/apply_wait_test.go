package cli

import (
	"path/filepath"
	"testing"
	"time"
)

// fastPoll makes apply --wait ask again at once (the deadline follows the
// test's stepped clock).
func fastPoll(a *app) { a.waitPoll = time.Millisecond }

func TestApplyWait(t *testing.T) {
	demo := filepath.Join("testdata", "topology", "demo.yaml")
	for _, tc := range []struct {
		name        string
		args        []string
		startsAfter map[string]int
		code        int
		stderr      string
	}{
		// h1 (configured) runs; h3 (created) is on an unreachable node for
		// two polls, then runs.
		{name: "runs", args: []string{"--wait"}, startsAfter: map[string]int{"labs/demo/hosts/h3": 2},
			stderr: "waiting: 1/2 hosts running\nwaiting: 2/2 hosts running\n"},
		// h3 never appears: the 5s timeout (the clock steps 2s a look)
		// names it and why.
		{name: "timeout", args: []string{"--wait", "--wait-timeout", "5s"}, code: 1,
			stderr: "waiting: 1/2 hosts running\nerror: 1 of 2 hosts not running after 5s: h3 (host \"labs/demo/hosts/h3\" not found)\n"},
		{name: "timeout unreachable", args: []string{"--wait", "--wait-timeout", "5s"}, startsAfter: map[string]int{"labs/demo/hosts/h3": 100}, code: 1,
			stderr: "waiting: 1/2 hosts running\nerror: 1 of 2 hosts not running after 5s: h3 (node n2 cannot be reached from here: connection refused)\n"},
		// A dry run applies nothing, so there is nothing to wait for.
		{name: "dry run", args: []string{"--wait", "--dry-run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer()
			f.startsAfter = tc.startsAfter
			addr := f.start(t)
			got := runCLI(t.Context(), addr, "", append([]string{"apply", "-f", demo}, tc.args...), fastPoll)
			if got.code != tc.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", got.code, tc.code, got.stderr)
			}
			if got.stderr != tc.stderr {
				t.Errorf("stderr:\n got %q\nwant %q", got.stderr, tc.stderr)
			}
			golden := "apply"
			if tc.name == "dry run" {
				golden = "apply_wait_dry_run"
			}
			checkGolden(t, golden, got.stdout)
		})
	}
}
