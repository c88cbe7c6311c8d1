package main_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestBuildsForMacOS: labd and labctl build for macOS, where many
// students' laptops are (a Linux-only constant once broke that unseen).
func TestBuildsForMacOS(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles labd and labctl")
	}
	cmd := exec.Command("go", "build", "-o", t.TempDir(), "github.com/labnet-dev/labnet/cmd/labd", "github.com/labnet-dev/labnet/cmd/labctl")
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=darwin go build: %v\n%s", err, out)
	}
}
