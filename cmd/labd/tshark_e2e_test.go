package main_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOverlayCapture captures the overlay between two labd processes on
// loopback while TCP crosses it, and checks that tshark decodes it, out of
// the box, as GENEVE -> IP -> TCP with nothing malformed. It needs tshark
// and root (to capture), and skips without them.
func TestOverlayCapture(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (Debian: apt-get install tshark)")
	}
	dir := t.TempDir()
	// The overlay's default port, 6081, is GENEVE to Wireshark; distinct
	// loopback addresses let two nodes share it.
	seed := "127.0.0.7:" + freePort(t, "127.0.0.7")
	a := startLabdArgs(t, filepath.Join(dir, "a"), "--name", "a", "--api", "127.0.0.7:0", "--overlay", "127.0.0.7:6081", "--gossip", seed)
	startLabdArgs(t, filepath.Join(dir, "b"), "--name", "b", "--api", "127.0.0.8:0", "--overlay", "127.0.0.8:6081",
		"--gossip", "127.0.0.8:"+freePort(t, "127.0.0.8"), "--join", seed)
	lab := filepath.Join(dir, "lab.yaml")
	writeFile(t, lab, "name: cap\nnetworks:\n  - name: lan\n    ipv4: 10.7.0.0/24\nhosts:\n"+
		"  - name: s\n    node: a\n    services: [discard]\n    interfaces: [lan]\n"+
		"  - name: c\n    node: b\n    interfaces: [lan]\n")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(a.ok("get", "nodes"), "\nb ") {
		if time.Now().After(deadline) {
			t.Fatal("b never joined")
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.ok("apply", "-f", lab)
	a.waitPing("cap/c", "s")

	file := filepath.Join(dir, "overlay.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	capture := exec.CommandContext(ctx, tshark, "-i", "lo", "-n", "-q", "-f", "udp port 6081 and host 127.0.0.7", "-a", "duration:5", "-w", file)
	stderr, _ := capture.StderrPipe()
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 2)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Capturing on") {
				time.AfterFunc(time.Second, func() { ready <- true })
			}
		}
		ready <- false
	}()
	if !<-ready {
		capture.Wait()
		t.Skip("tshark cannot capture on lo (root needed)")
	}
	a.ok("bench", "cap/c", "s", "--bytes", "300k")
	capture.Wait()

	out, err := exec.CommandContext(ctx, tshark, "-r", file, "-n", "-T", "fields", "-E", "separator=|",
		"-e", "geneve.vni", "-e", "ip.proto", "-e", "tcp.srcport", "-e", "_ws.malformed").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	tcp := 0
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, line := range lines {
		f := strings.Split(line, "|")
		if f[0] == "" {
			t.Errorf("not decoded as GENEVE: %q", line)
		}
		if f[3] != "" {
			t.Errorf("malformed: %q", line)
		}
		if f[2] != "" {
			tcp++
		}
	}
	if tcp == 0 {
		t.Fatalf("no TCP inside GENEVE among %d packets", len(lines))
	}
	t.Logf("%d overlay packets, %d carrying TCP", len(lines), tcp)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
