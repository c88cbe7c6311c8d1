package node

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestDaemonClose: Close releases what New took (the data directory's lock
// and the bound addresses), whether or not the daemon ran, and may be
// called again.
func TestDaemonClose(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := Config{Control: true, Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	api := d.api.lis.Addr().String()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	// The API address is free again, and so is the data directory.
	l, err := net.Listen("tcp", api)
	if err != nil {
		t.Fatalf("API address still bound after Close: %v", err)
	}
	l.Close()
	d, err = New(cfg, log)
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatalf("Run, cancelled: %v", err)
	}
	if err := d.Run(ctx); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run: %v, want an error", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close after Run: %v", err)
	}
}

// TestNewCleansUp: when New fails part way (here: the overlay address is
// taken), what it had opened is closed, so the data directory can be
// opened again at once.
func TestNewCleansUp(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg := Config{Control: true, Name: "c2", DataDir: dir, API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: taken.LocalAddr().String()}
	if _, err := New(cfg, log); err == nil || !strings.Contains(err.Error(), "--overlay") {
		t.Fatalf("New with a taken overlay address: %v, want an --overlay error", err)
	}
	cfg.Overlay = "127.0.0.1:0"
	d, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New after a failed New: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
