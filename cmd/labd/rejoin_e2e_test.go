package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTeacherRestartRejoined: the teacher's labd (the node every student
// joined), stopped with Ctrl-C or killed and started again with the same
// command, is rejoined by every student within seconds, and sees them all.
// The times are logged (labd's own timers: memberlist's LAN defaults).
func TestTeacherRestartRejoined(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three labd processes")
	}
	dir := t.TempDir()
	seed := "127.0.0.7:" + freePort(t, "127.0.0.7")
	teacherArgs := []string{"--name", "teacher", "--api", "127.0.0.7:0", "--overlay", "127.0.0.7:0", "--gossip", seed}
	teacher := startLabdArgs(t, filepath.Join(dir, "teacher"), teacherArgs...)
	var students []*labd
	for _, s := range []struct{ name, ip string }{{"alice", "127.0.0.8"}, {"bob", "127.0.0.9"}} {
		students = append(students, startLabdArgs(t, filepath.Join(dir, s.name), "--name", s.name, "--api", s.ip+":0",
			"--overlay", s.ip+":0", "--gossip", s.ip+":"+freePort(t, s.ip), "--join", seed))
	}
	allAlive := func(d *labd) bool {
		out, _, code := d.labctl("get", "nodes")
		return code == 0 && strings.Count(out, " alive ") == 3
	}
	waitAll := func(what string, timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for _, d := range append([]*labd{teacher}, students...) {
			for !allAlive(d) {
				if time.Since(start) > timeout {
					out, _, _ := d.labctl("get", "nodes")
					t.Fatalf("%s: not after %v:\n%s\nteacher's log:\n%s", what, timeout, out, teacher.log)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		return time.Since(start)
	}
	waitAll("the class", 20*time.Second)

	for _, tc := range []struct {
		name  string
		sig   os.Signal
		pause time.Duration // before the restart
	}{
		{"ctrl-c", os.Interrupt, 0},
		{"kill-9, restarted 10 s later", syscall.SIGKILL, 10 * time.Second},
	} {
		teacher.stop(tc.sig)
		time.Sleep(tc.pause)
		teacher = startLabdArgs(t, filepath.Join(dir, "teacher"), teacherArgs...)
		took := waitAll("rejoined after "+tc.name, 30*time.Second)
		t.Logf("teacher %s: every node sees all three alive %v after the teacher's \"labd ready\"", tc.name, took)
	}
}
