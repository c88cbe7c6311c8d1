package follow

import "testing"

// newBenchReplica is an in-memory replica (no disk).
func newBenchReplica(testing.TB) benchReplica { return newMemStore(0) }
