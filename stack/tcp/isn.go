package tcp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"
)

// isnGenerator picks initial sequence numbers as RFC 6528 §3 does:
// ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M
// is a 4-microsecond timer and F a keyed hash (SHA-256 here), so that ISNs
// of one connection-id move forward with time while an off-path attacker
// cannot guess them.
type isnGenerator struct {
	secret [32]byte
	epoch  time.Time
}

func newISNGenerator(now time.Time) *isnGenerator {
	g := &isnGenerator{epoch: now}
	rand.Read(g.secret[:])
	return g
}

func (g *isnGenerator) isn(now time.Time, local, remote netip.AddrPort) seq {
	h := sha256.New()
	h.Write(g.secret[:])
	la, ra := local.Addr().As16(), remote.Addr().As16()
	h.Write(la[:])
	h.Write(ra[:])
	var ports [4]byte
	binary.BigEndian.PutUint16(ports[:], local.Port())
	binary.BigEndian.PutUint16(ports[2:], remote.Port())
	h.Write(ports[:])
	f := binary.BigEndian.Uint32(h.Sum(nil))
	m := uint32(now.Sub(g.epoch) / (4 * time.Microsecond))
	return seq(m + f)
}
