package follow

import (
	"testing"
	"time"
)

// TestFence: the fence closes once the control plane has been silent for
// three quarters of the failover time, and opens only when it is heard
// again and the replica has caught up with the revision it announced.
func TestFence(t *testing.T) {
	var age time.Duration
	var rev, leaderRev uint64
	changed := make(chan struct{}, 1)
	fe := newFence(func() (time.Duration, uint64, uint64) { return age, rev, leaderRev }, 4*time.Second, changed, nil)
	step := func(what string, wantChanged, wantFenced bool) {
		t.Helper()
		if got := fe.check(); got != wantChanged {
			t.Errorf("%s: changed = %v, want %v", what, got, wantChanged)
		}
		if fe.Fenced() != wantFenced {
			t.Errorf("%s: Fenced = %v, want %v", what, fe.Fenced(), wantFenced)
		}
		select {
		case <-changed:
			if !wantChanged {
				t.Errorf("%s: signalled without a change", what)
			}
		default:
			if wantChanged {
				t.Errorf("%s: a change not signalled", what)
			}
		}
	}
	rev, leaderRev = 10, 10
	age = time.Second
	step("heard a second ago", false, false)
	rev, leaderRev = 10, 12 // a heartbeat ahead of its changes: not a reason to fence
	step("replica behind, heard", false, false)
	age = 3 * time.Second
	step("silent for 3/4 of the failover time", true, true)
	age = 10 * time.Second
	step("silent longer", false, true)
	age, leaderRev = 0, 20 // heard again; the replica is at 10
	step("heard, not caught up", false, true)
	rev = 20
	step("caught up", true, false)
}
