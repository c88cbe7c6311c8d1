package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/identity"
)

// testEnrollToken is a well-formed enrolment token (labctl node invite's).
var testEnrollToken = func() string {
	key, _, _ := identity.NewToken()
	return auth.EnrollToken{API: "127.0.0.1:7700", CAHash: "sha256:" + strings.Repeat("ab", 32), Key: key}.String()
}()

// writeTemp writes content to a new file called name and returns its path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
