package overlay

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkOverlayThroughput moves 1400-byte datagrams over loopback from one
// Conn to another and reports datagrams/s received, for one datagram per
// system call, sendmmsg/recvmmsg batches of 64, and GSO trains of 64 received
// with GRO (plain, sealed with the cluster key and sealed per pair of nodes). Every datagram is checked on arrival, as in
// TestConnTransfer. DESIGN.md's figures for our 2-core machine: ~260k/s,
// ~266k/s and ~3.3M/s.
func BenchmarkOverlayThroughput(b *testing.B) {
	for _, bc := range []struct {
		name        string
		opts        Options
		train, read int
	}{
		{"one-per-syscall", Options{NoGSO: true, NoGRO: true}, 1, 1},
		{"sendmmsg-recvmmsg", Options{NoGSO: true, NoGRO: true}, 64, 64},
		{"gso-gro", Options{}, 64, 64},
		{"gso-gro-sealed", Options{Key: mustKey(b, testSecret)}, 64, 64},
		{"gso-gro-sealed-per-node", Options{Peers: &peerSwitch{}}, 64, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rcvOpts := bc.opts
			rcvOpts.ReadBuffer = socketBuffer
			var sndPeers, rcvPeers peerSwitch
			if bc.opts.Peers != nil {
				bc.opts.Peers, rcvOpts.Peers = &sndPeers, &rcvPeers
			}
			snd, rcv := listen(b, bc.opts), listen(b, rcvOpts)
			if bc.opts.Peers != nil {
				// Sealed per pair of nodes (pairseal.go) both ways.
				nodes := newTestNodes(b, "snd", "rcv")
				addrs := map[string]netip.AddrPort{"snd": snd.LocalAddr(), "rcv": rcv.LocalAddr()}
				sndPeers.s, _ = NewPeerSet("snd", []*Peer{nodes.pair(b, "snd", "rcv", 1)}, addrs)
				rcvPeers.s, _ = NewPeerSet("rcv", []*Peer{nodes.pair(b, "rcv", "snd", 1)}, addrs)
			}
			b.SetBytes(datagramLen)
			b.ResetTimer()
			res := transfer(snd, rcv, transferConfig{
				n: b.N, size: datagramLen, train: fixed(bc.train),
				readBatch: bc.read, window: 2048, idle: 2 * time.Second,
			})
			b.StopTimer()
			if res.err != nil && res.lost == 0 {
				b.Fatal(res.err)
			}
			b.ReportMetric(float64(res.received)/res.elapsed.Seconds(), "datagrams/s")
			b.ReportMetric(float64(res.lost), "lost")
			sc, rc := snd.Counters(), rcv.Counters()
			b.ReportMetric(float64(sc.PacketsSent)/float64(max(sc.SendCalls, 1)), "datagrams/sendcall")
			b.ReportMetric(float64(rc.PacketsReceived)/float64(max(rc.ReceiveCalls, 1)), "datagrams/recvcall")
		})
	}
}
