package auth

import "github.com/labnet-dev/labnet/node/refusal"

// NodeRefusals counts refused requests by node and reason, and says when
// to log one (everything refused is counted, and logged rate-limited).
// The zero value is ready to use.
type NodeRefusals = refusal.Counter
