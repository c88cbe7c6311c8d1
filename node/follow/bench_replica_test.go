package follow

import (
	"path/filepath"
	"testing"
)

// newMemReplica is an in-memory replica: the stream and the follower alone.
func newMemReplica(testing.TB) benchReplica { return newMemStore(0) }

// newDiskReplica is node/store in a temporary directory: each change is
// persisted (fsync) before it counts as arrived, as on a member.
func newDiskReplica(t testing.TB) benchReplica {
	return openStore(t, filepath.Join(t.TempDir(), "replica.db"), 0)
}
