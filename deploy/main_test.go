package deploy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

// binDir holds labd and labctl built from the parent module.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "labnet-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binary returns the path of labd or labctl, built once from the parent
// module (the code the image is built from).
func binary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/labd", "./cmd/labctl")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/labd ./cmd/labctl: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// labdDefaultPorts reads the default API, gossip and overlay ports from
// labd -h, so that the deployment files follow labd's defaults.
func labdDefaultPorts(t *testing.T) (api, gossip, overlay string) {
	t.Helper()
	cmd := exec.Command(binary(t, "labd"), "-h")
	cmd.Env = []string{} // no LABD_* from the test's environment
	out, _ := cmd.CombinedOutput()
	port := func(flag string) string {
		m := regexp.MustCompile(`(?m)^\s+-` + flag + ` string\n.*\(default "([^"]+)"\)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("labd -h shows no default for -%s:\n%s", flag, out)
		}
		_, p, err := net.SplitHostPort(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return port("api"), port("gossip"), port("overlay")
}
