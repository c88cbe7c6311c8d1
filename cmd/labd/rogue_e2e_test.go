package main_test

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/overlay"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Issue 14's rogue member: a real class (a control node "teacher" and two
// students' members "alice-laptop" and "bob-laptop", each enrolled with an
// invite, processes on 127.0.0.61-63, gossip and overlay sealed) and a
// rogue built from labnet's own packages holding everything alice's laptop
// legitimately has: her node's key and certificate, the CA's certificate,
// the gossip keys, and alice's user token. Everything the rogue tries is
// refused and counted, no honest node's state changes, and the honest
// members keep pinging each other throughout.

// rogueNode is a labd of the rogue test with its metrics endpoint.
type rogueNode struct {
	*authNode
	ip      string
	gossip  string
	metrics string
}

// metric sums the samples of the Prometheus counter name on n whose
// labels include every pair of labels ("reason", "replay", ...).
func (n *rogueNode) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.metrics + "/metrics")
	if err != nil {
		t.Fatalf("%s's metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, labels[i]+`="`+labels[i+1]+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", n.name, line, err)
		}
		sum += v
	}
	return sum
}

// metricLines are n's nonzero samples whose names contain any of parts.
func (n *rogueNode) metricLines(t *testing.T, parts ...string) string {
	t.Helper()
	resp, err := http.Get("http://" + n.metrics + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasSuffix(line, " 0") {
			continue
		}
		for _, p := range parts {
			if strings.Contains(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// waitCount waits until n's counter has grown past before.
func (n *rogueNode) waitCount(t *testing.T, what string, before float64, name string, labels ...string) {
	t.Helper()
	waitFor(t, 15*time.Second, n.name+" counts "+what, func() (bool, string) {
		v := n.metric(t, name, labels...)
		return v > before, fmt.Sprintf("%s%v = %v; %s's drops:\n%s", name, labels, v, n.name, n.metricLines(t, "drops_total", "refused_total", "refusals_total"))
	})
}

// startRogueClass starts the teacher and the two invited members.
func startRogueClass(t *testing.T) (nodes map[string]*rogueNode, admin, dir string) {
	t.Helper()
	dir = t.TempDir()
	key := filepath.Join(dir, "teacher.key")
	if err := os.WriteFile(key, []byte("the teacher's own passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes = map[string]*rogueNode{}
	start := func(name, ip string, extra ...string) *rogueNode {
		n := &rogueNode{ip: ip, gossip: ip + ":" + freePort(t, ip), metrics: ip + ":" + freePort(t, ip)}
		args := append([]string{"--name", name, "--tls", "--api", ip + ":0", "--overlay", ip + ":0",
			"--gossip", n.gossip, "--metrics", n.metrics}, extra...)
		n.authNode = &authNode{name: name, d: startLabdArgs(t, filepath.Join(dir, name), args...)}
		nodes[name] = n
		return n
	}
	teacher := start("teacher", "127.0.0.61", "--cluster-key-file", key)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s's log (the end):\n%s", n.name, lastLines(n.d.log.String(), 60))
			}
		}
	})
	teacher.ca = teacher.d.clientTLS().RootCAs
	tok, err := os.ReadFile(filepath.Join(dir, "teacher", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin = strings.TrimSpace(string(tok))
	nc := labv1.NewNodeServiceClient(teacher.conn(t, admin))
	for i, name := range []string{"alice-laptop", "bob-laptop"} {
		owner, _, _ := strings.Cut(name, "-")
		ac := labv1.NewAuthServiceClient(teacher.conn(t, admin))
		if _, err := ac.CreateUser(context.Background(), &labv1.CreateUserRequest{UserId: owner, User: &labv1.User{Role: labv1.Role_ROLE_STUDENT}}); err != nil {
			t.Fatalf("user %s: %v", owner, err)
		}
		inv, err := nc.CreateNodeInvite(context.Background(), &labv1.CreateNodeInviteRequest{NodeId: name, Owner: owner})
		if err != nil {
			t.Fatalf("invite %s: %v", name, err)
		}
		extra := []string{"--enroll", inv.Token, "--join", teacher.gossip}
		if membersNeedClusterKey {
			extra = append(extra, "--cluster-key-file", key)
		}
		n := start(name, fmt.Sprintf("127.0.0.%d", 62+i), extra...)
		n.ca = teacher.ca
	}
	for _, n := range nodes {
		nc := labv1.NewNodeServiceClient(n.conn(t, admin))
		waitFor(t, 30*time.Second, n.name+" sees three nodes alive", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			resp, err := nc.ListNodes(ctx, &labv1.ListNodesRequest{})
			if err != nil {
				return false, err.Error()
			}
			alive := 0
			for _, m := range resp.Nodes {
				if m.State == labv1.NodeState_NODE_STATE_ALIVE {
					alive++
				}
			}
			return alive == 3, fmt.Sprint(resp.Nodes)
		})
	}
	return nodes, admin, dir
}

// membersNeedClusterKey: members are started with the teacher's cluster
// key too (gossip keys not yet handed out at enrolment).
const membersNeedClusterKey = false

// honestState is what a node's API says of the nodes and of the class
// lab's hosts: names, kinds, owners, addresses and placement.
func honestState(t *testing.T, n *rogueNode, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := n.conn(t, admin)
	nodes, err := labv1.NewNodeServiceClient(c).ListNodes(ctx, &labv1.ListNodesRequest{})
	if err != nil {
		t.Fatalf("%s: list nodes: %v", n.name, err)
	}
	var out []string
	for _, m := range nodes.Nodes {
		out = append(out, fmt.Sprintf("node %s %s kind=%s owner=%s gossip=%s overlay=%s api=%s removed=%v", m.Name, m.State, m.Kind, m.Owner, m.GossipAddress, m.OverlayAddress, m.ApiAddress, m.Removed))
	}
	hosts, err := labv1.NewLabServiceClient(c).ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/class"})
	if err != nil {
		t.Fatalf("%s: list hosts: %v", n.name, err)
	}
	for _, h := range hosts.Hosts {
		var ifs []string
		for _, i := range h.Interfaces {
			ifs = append(ifs, i.Network+"="+i.Ipv4)
		}
		out = append(out, fmt.Sprintf("host %s on %s owner %s %v", h.Name, h.Node, h.Owner, ifs))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// overlayOf is node name's overlay address as n's API lists it.
func overlayOf(t *testing.T, n *rogueNode, admin, name string) netip.AddrPort {
	t.Helper()
	resp, err := labv1.NewNodeServiceClient(n.conn(t, admin)).GetNode(context.Background(), &labv1.GetNodeRequest{Name: "nodes/" + name})
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	a, err := netip.ParseAddrPort(resp.Node.OverlayAddress)
	if err != nil {
		t.Fatalf("node %s's overlay address %q: %v", name, resp.Node.OverlayAddress, err)
	}
	return a
}

// captureOverlay reads, with a packet socket on lo (root only), the UDP
// payloads sent from src's address to dst while during runs, as a rogue
// on the classroom network sees them.
func captureOverlay(t *testing.T, src netip.Addr, dst netip.AddrPort, during func()) [][]byte {
	t.Helper()
	// ETH_P_IP in network byte order, as packet(7) wants it.
	proto := int(binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, syscall.ETH_P_IP)))
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, proto)
	if err != nil {
		t.Fatalf("a packet socket: %v", err)
	}
	defer syscall.Close(fd)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: lo.Index}); err != nil {
		t.Fatal(err)
	}
	tv := syscall.NsecToTimeval(int64(200 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); during() }()
	var got [][]byte
	buf := make([]byte, 65536)
	s4, d4 := src.As4(), dst.Addr().As4()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil || n < 28 || buf[0]>>4 != 4 || buf[9] != syscall.IPPROTO_UDP {
			continue
		}
		ihl := int(buf[0]&0xf) * 4
		if n < ihl+8 || [4]byte(buf[12:16]) != s4 || [4]byte(buf[16:20]) != d4 || binary.BigEndian.Uint16(buf[ihl+2:]) != dst.Port() {
			continue
		}
		got = append(got, slices.Clone(buf[ihl+8:n]))
	}
	return got
}

// spoofer sends UDP datagrams with any source address and port, through a
// raw socket (raw(7), IP_HDRINCL), as root on a laptop can.
type spoofer struct {
	t  *testing.T
	fd int
}

func newSpoofer(t *testing.T) *spoofer {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		t.Fatalf("a raw socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return &spoofer{t: t, fd: fd}
}

// send sends payload from src to dst. The kernel fills in the IPv4
// header's checksum and id; the UDP checksum is left zero (RFC 768: none
// computed).
func (s *spoofer) send(src, dst netip.AddrPort, payload []byte) {
	s.t.Helper()
	p := make([]byte, 28, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(28+len(payload)))
	p[8], p[9] = 64, syscall.IPPROTO_UDP
	sa, da := src.Addr().As4(), dst.Addr().As4()
	copy(p[12:], sa[:])
	copy(p[16:], da[:])
	binary.BigEndian.PutUint16(p[20:], src.Port())
	binary.BigEndian.PutUint16(p[22:], dst.Port())
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	p = append(p, payload...)
	if err := syscall.Sendto(s.fd, p, 0, &syscall.SockaddrInet4{Addr: da}); err != nil {
		s.t.Fatalf("spoofed send %s -> %s: %v", src, dst, err)
	}
}

// rogueGossip runs a memberlist node under name with alice's key as its
// signer, joining join, until the test ends.
func rogueGossip(t *testing.T, name, join string, keys [][]byte, signer crypto.Signer) {
	t.Helper()
	c, err := cluster.New(cluster.Config{
		Name: name, BindAddr: "127.0.0.64:0", Join: []string{join}, Local: true, Keys: keys,
		Logger: slog.New(slog.DiscardHandler), Signer: func() crypto.Signer { return signer },
		Meta: cluster.NodeMeta{Role: cluster.RoleControl, Leader: true, LeaderTerm: 1 << 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	c.Start(context.Background())
}

// forwardAs is ctx naming user as the user a node forwards the call for.
func forwardAs(user string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), auth.ForwardedUserKey, user)
}

func TestRogueMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three labd processes")
	}
	if os.Geteuid() != 0 {
		t.Skip("the rogue spoofs source addresses and captures with raw sockets, as root on a student's laptop can: run as root")
	}
	nodes, admin, dir := startRogueClass(t)
	teacher, alice, bob := nodes["teacher"], nodes["alice-laptop"], nodes["bob-laptop"]
	ctx := context.Background()
	ac := labv1.NewAuthServiceClient(teacher.conn(t, admin))
	aliceTok, _ := token(t, ac, "alice", labv1.Role_ROLE_UNSPECIFIED, 0)

	// The class: a1 (alice's) and b1 (bob's) share "shared"; "bobnet"
	// joins b1 and t1 (on the teacher's node): alice's node runs no
	// interface on it.
	class := &labv1.Topology{Lab: "class", Shared: true,
		Networks: []*labv1.Network{{Name: "shared", Ipv4: "10.61.1.0/24"}, {Name: "bobnet", Ipv4: "10.61.2.0/24"}},
		Hosts: []*labv1.Host{
			{Name: "a1", Node: "alice-laptop", Owner: "alice", Interfaces: []*labv1.Interface{{Network: "shared", Ipv4: "10.61.1.10/24"}}},
			{Name: "b1", Node: "bob-laptop", Owner: "bob", Interfaces: []*labv1.Interface{{Network: "shared", Ipv4: "10.61.1.20/24"}, {Network: "bobnet", Ipv4: "10.61.2.20/24"}}},
			{Name: "t1", Node: "teacher", Interfaces: []*labv1.Interface{{Network: "bobnet", Ipv4: "10.61.2.1/24"}}},
		}}
	if _, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).Apply(ctx, &labv1.ApplyRequest{Topology: class}); err != nil {
		t.Fatalf("apply the class: %v", err)
	}
	// The honest members keep pinging each other: b1 and a1 across
	// alice's and bob's laptops, t1 and b1 across the teacher's and bob's.
	pings := func(when string, pairs ...[3]string) {
		t.Helper()
		for _, p := range pairs {
			c := nodes[p[0]].conn(t, admin)
			waitFor(t, 30*time.Second, when+": "+p[1]+" pings "+p[2], func() (bool, string) {
				err := pingOnce(c, "labs/class/hosts/"+p[1], p[2])
				return err == nil, fmt.Sprint(err)
			})
		}
	}
	pings("before the rogue", [3]string{"bob-laptop", "b1", "10.61.1.10"}, [3]string{"alice-laptop", "a1", "10.61.1.20"})
	// From here the honest nodes are the teacher's and bob's: alice's
	// own traffic is the rogue's to break (it holds her pair keys, so
	// its packets move her replay window at bob past her labd's; it
	// could as well stop her labd).
	honest := func(when string) {
		t.Helper()
		pings(when, [3]string{"bob-laptop", "b1", "10.61.2.1"}, [3]string{"teacher", "t1", "10.61.2.20"})
	}
	honest("before the rogue")
	before := map[string]string{}
	for name, n := range nodes {
		before[name] = honestState(t, n, admin)
	}
	unchanged := func(when string, names ...string) {
		t.Helper()
		for _, name := range names {
			if got := honestState(t, nodes[name], admin); got != before[name] {
				t.Errorf("%s: %s's state changed:\n%s\nwas:\n%s", when, name, got, before[name])
			}
		}
	}

	// What alice's laptop holds.
	aliceData := filepath.Join(dir, "alice-laptop")
	aliceKey, _, err := auth.LoadNodeCert(aliceData)
	if err != nil {
		t.Fatal(err)
	}
	aliceECDSA, ok := aliceKey.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("alice's node key is a %T", aliceKey)
	}
	_, bobCert, err := auth.LoadNodeCert(filepath.Join(dir, "bob-laptop"))
	if err != nil {
		t.Fatal(err)
	}
	gossipKeys := readGossipKeys(t, aliceData)

	// 1. The overlay. The rogue seals with alice's own pair key for bob.
	bobOverlay := overlayOf(t, teacher, admin, "bob-laptop")
	teacherOverlay := overlayOf(t, teacher, admin, "teacher")
	net2, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).GetNetwork(ctx, &labv1.GetNetworkRequest{Name: "labs/class/networks/bobnet"})
	if err != nil {
		t.Fatal(err)
	}
	net1, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).GetNetwork(ctx, &labv1.GetNetworkRequest{Name: "labs/class/networks/shared"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := overlay.NewPeer(overlay.Local{Name: "alice-laptop", Key: aliceECDSA}, "bob-laptop", bobCert.PublicKey.(*ecdsa.PublicKey), 1)
	if err != nil {
		t.Fatal(err)
	}
	aliceOverlay := overlayOf(t, teacher, admin, "alice-laptop")
	spoof := newSpoofer(t)
	// send sends from alice's overlay address (the port her labd holds:
	// the rogue spoofs it).
	send := func(d []byte) { t.Helper(); spoof.send(aliceOverlay, bobOverlay, d) }
	datagram := func(vni uint32, src, dst string) []byte {
		t.Helper()
		inner := ipv4UDP(src, dst, []byte("from the rogue"))
		g, err := overlay.AppendHeader(nil, vni, netip.MustParseAddr(dst), inner)
		if err != nil {
			t.Fatal(err)
		}
		return pair.Seal(nil, append(g, inner...))
	}
	const drops = "labnet_overlay_node_drops_total"
	// From an address that is no node's.
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.64")})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	was := bob.metric(t, "labnet_overlay_drops_total", "reason", "unknown_sender")
	if _, err := sock.WriteToUDPAddrPort(datagram(net1.Network.Vni, "10.61.1.10", "10.61.1.20"), bobOverlay); err != nil {
		t.Fatal(err)
	}
	bob.waitCount(t, "a packet from no node's address", was, "labnet_overlay_drops_total", "reason", "unknown_sender")
	// Into bob's network, with alice's own keys.
	was = bob.metric(t, drops, "node", "alice-laptop", "reason", "not_on_network")
	send(datagram(net2.Network.Vni, "10.61.2.66", "10.61.2.20"))
	bob.waitCount(t, "alice's packet into bobnet", was, drops, "node", "alice-laptop", "reason", "not_on_network")
	// Into the shared network with b1's address as the source.
	was = bob.metric(t, drops, "node", "alice-laptop", "reason", "spoofed_source")
	send(datagram(net1.Network.Vni, "10.61.1.20", "10.61.1.20"))
	bob.waitCount(t, "a spoofed source", was, drops, "node", "alice-laptop", "reason", "spoofed_source")
	// As the teacher: alice's seal under the teacher's sender id.
	forged := datagram(net2.Network.Vni, "10.61.2.1", "10.61.2.20")
	binary.BigEndian.PutUint32(forged, overlay.NodeID("teacher"))
	binary.BigEndian.PutUint64(forged[4:], uint64(time.Now().Add(time.Hour).UnixNano()))
	was = bob.metric(t, drops, "node", "teacher", "reason", "bad_tag")
	spoof.send(teacherOverlay, bobOverlay, forged)
	bob.waitCount(t, "a packet claiming the teacher's id", was, drops, "node", "teacher", "reason", "bad_tag")
	// Captured: the teacher's datagrams to bob while t1 pings b1, each
	// sent again three times.
	captured := captureOverlay(t, teacherOverlay.Addr(), bobOverlay, func() {
		pings("captured", [3]string{"teacher", "t1", "10.61.2.20"})
	})
	if len(captured) == 0 {
		t.Fatal("captured none of the teacher's datagrams to bob")
	}
	replayed := bob.metric(t, drops, "node", "teacher", "reason", "replay") + bob.metric(t, drops, "node", "teacher", "reason", "too_old")
	for range 3 {
		for _, d := range captured {
			spoof.send(teacherOverlay, bobOverlay, d)
		}
	}
	waitFor(t, 15*time.Second, "bob counts every replay", func() (bool, string) {
		n := bob.metric(t, drops, "node", "teacher", "reason", "replay") + bob.metric(t, drops, "node", "teacher", "reason", "too_old")
		return n >= replayed+3*float64(len(captured)), fmt.Sprintf("%v of %d", n-replayed, 3*len(captured))
	})
	honest("after the overlay attacks")
	unchanged("after the overlay attacks", "teacher", "bob-laptop", "alice-laptop")

	// 2. Gossip under the teacher's and bob's names, signed with alice's
	// key.
	const gossipRefused = "labnet_gossip_refused_total"
	wasT := teacher.metric(t, gossipRefused, "node", "bob-laptop", "reason", "bad_signature")
	wasB := bob.metric(t, gossipRefused, "node", "teacher", "reason", "bad_signature")
	rogueGossip(t, "bob-laptop", teacher.gossip, gossipKeys, aliceKey)
	rogueGossip(t, "teacher", bob.gossip, gossipKeys, aliceKey)
	teacher.waitCount(t, "gossip as bob-laptop", wasT, gossipRefused, "node", "bob-laptop", "reason", "bad_signature")
	bob.waitCount(t, "gossip as the teacher", wasB, gossipRefused, "node", "teacher", "reason", "bad_signature")
	// Enrolling under their names: with alice's used invite, and without.
	enrol := labv1.NewControlServiceClient(teacher.conn(t, ""))
	for _, req := range []*labv1.EnrollRequest{
		{Node: "bob-laptop", Csr: csrFor(t, aliceKey, "bob-laptop")},
		{Node: "teacher", Control: true, Csr: csrFor(t, aliceKey, "teacher")},
	} {
		if _, err := enrol.Enroll(ctx, req); code(err) != codes.PermissionDenied {
			t.Errorf("enrol as %s: %v; want PermissionDenied", req.Node, err)
		}
	}
	honest("after the gossip attacks")
	unchanged("after the gossip attacks", "teacher", "bob-laptop", "alice-laptop")

	// 3. Bob's node's forwarding endpoint: as if the call came from a node
	// for the teacher (an admin), to delete bob's host.
	del := &labv1.DeleteHostRequest{Name: "labs/class/hosts/b1"}
	aliceNodeCert, err := tls.LoadX509KeyPair(filepath.Join(aliceData, "node.crt"), filepath.Join(aliceData, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	asAliceNode := func(n *rogueNode) *grpc.ClientConn {
		cfg := n.d.clientTLS()
		cfg.RootCAs = teacher.ca
		cfg.ServerName = n.ip
		cfg.Certificates = []tls.Certificate{aliceNodeCert}
		c, err := grpc.NewClient(n.d.api, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for _, tc := range []struct {
		what string
		conn *grpc.ClientConn
	}{
		{"with alice's user token", bob.conn(t, aliceTok)},
		{"with no certificate", bob.conn(t, "")},
		{"with alice's node certificate", asAliceNode(bob)},
	} {
		_, err := labv1.NewLabServiceClient(tc.conn).DeleteHost(forwardAs("admin"), del)
		if code(err) != codes.PermissionDenied {
			t.Errorf("bob's forwarding endpoint %s: %v; want PermissionDenied", tc.what, err)
		}
		_, err = labv1.NewLabServiceClient(tc.conn).DeleteHost(forwardAs("bob"), del)
		if code(err) != codes.PermissionDenied {
			t.Errorf("bob's forwarding endpoint for bob %s: %v; want PermissionDenied", tc.what, err)
		}
	}
	honest("after the forwarding attacks")
	unchanged("after the forwarding attacks", "teacher", "bob-laptop", "alice-laptop")

	// 4. The teacher removes alice's laptop.
	if _, err := labv1.NewNodeServiceClient(teacher.conn(t, admin)).RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: "nodes/alice-laptop"}); err != nil {
		t.Fatalf("remove alice-laptop: %v", err)
	}
	for _, n := range []*rogueNode{teacher, bob} {
		c := labv1.NewNodeServiceClient(n.conn(t, admin))
		waitFor(t, 30*time.Second, n.name+" sees alice-laptop removed", func() (bool, string) {
			r, err := c.GetNode(ctx, &labv1.GetNodeRequest{Name: "nodes/alice-laptop"})
			m := r.GetNode()
			return err == nil && m.Removed && m.State != labv1.NodeState_NODE_STATE_ALIVE, fmt.Sprint(m, err)
		})
	}
	// a1 fails over; the honest nodes keep pinging.
	waitFor(t, 60*time.Second, "a1 to fail over", func() (bool, string) {
		r, err := labv1.NewLabServiceClient(teacher.conn(t, admin)).GetHost(ctx, &labv1.GetHostRequest{Name: "labs/class/hosts/a1"})
		return err == nil && r.Host.Node != "alice-laptop", fmt.Sprint(r.GetHost().GetNode(), err)
	})
	pings("after the removal", [3]string{"bob-laptop", "b1", "10.61.1.10"})
	honest("after the removal")
	for name, n := range map[string]*rogueNode{"teacher": teacher, "bob-laptop": bob} {
		before[name] = honestState(t, n, admin)
	}

	// The removed laptop, restarted with its old files.
	if err := alice.d.stop(syscall.SIGKILL); err == nil {
		t.Log("alice's labd exited cleanly on SIGKILL")
	}
	const nodeRefusals = "labnet_node_refusals_total"
	wasT = teacher.metric(t, nodeRefusals, "node", "alice-laptop", "reason", "removed")
	again := startLabdArgs(t, aliceData, alice.d.args...)
	teacher.waitCount(t, "the removed laptop's calls", wasT, nodeRefusals, "node", "alice-laptop", "reason", "removed")
	time.Sleep(3 * time.Second) // long enough to join, if it could
	for _, n := range []*rogueNode{teacher, bob} {
		r, err := labv1.NewNodeServiceClient(n.conn(t, admin)).GetNode(ctx, &labv1.GetNodeRequest{Name: "nodes/alice-laptop"})
		m := r.GetNode()
		if err != nil || m.State == labv1.NodeState_NODE_STATE_ALIVE || !m.Removed {
			t.Errorf("%s: the restarted removed laptop: %v %v", n.name, m, err)
		}
	}
	again.stop(syscall.SIGKILL)

	// Gossip with the old keys: the teacher rotated the gossip keys on the
	// removal (a new primary, then the old keys dropped): once the honest
	// nodes hold none of alice's keys, her gossip does not even decrypt.
	waitFor(t, 90*time.Second, "the honest nodes to drop alice's gossip keys", func() (bool, string) {
		for _, n := range []*rogueNode{teacher, bob} {
			for _, k := range readGossipKeys(t, filepath.Join(dir, n.name)) {
				if slices.ContainsFunc(gossipKeys, func(old []byte) bool { return string(old) == string(k) }) {
					return false, n.name + " still holds one"
				}
			}
		}
		return true, ""
	})
	if n := teacher.metric(t, "labnet_gossip_key_rotations_total"); n < 1 {
		t.Errorf("teacher counted %v gossip key rotations, want one for the removal", n)
	}
	wasT = teacher.metric(t, gossipRefused, "node", "alice-laptop")
	rogueGossip(t, "alice-laptop", teacher.gossip, gossipKeys, aliceKey)
	rogueGossip(t, "bob-laptop", bob.gossip, gossipKeys, aliceKey)
	time.Sleep(3 * time.Second)
	if r, err := labv1.NewNodeServiceClient(teacher.conn(t, admin)).GetNode(ctx, &labv1.GetNodeRequest{Name: "nodes/alice-laptop"}); err != nil || r.Node.State == labv1.NodeState_NODE_STATE_ALIVE {
		m := r.GetNode()
		t.Errorf("teacher after the removed laptop's gossip: %v %v", m, err)
	}
	if n := teacher.metric(t, gossipRefused, "node", "alice-laptop") - wasT; n != 0 {
		t.Errorf("the teacher decrypted the removed laptop's gossip with dropped keys (%v refusals)", n)
	}
	if !strings.Contains(teacher.d.log.String(), "ecrypt") {
		t.Errorf("the teacher's log does not show gossip it could not decrypt")
	}
	was = bob.metric(t, "labnet_overlay_drops_total", "reason", "unknown_sender")
	send(datagram(net1.Network.Vni, "10.61.1.10", "10.61.1.20"))
	bob.waitCount(t, "the removed laptop's packet", was, "labnet_overlay_drops_total", "reason", "unknown_sender")
	pings("after the removed laptop's attempts", [3]string{"bob-laptop", "b1", "10.61.1.10"})
	honest("after the removed laptop's attempts")
	unchanged("after the removed laptop's attempts", "teacher", "bob-laptop")
}

// readGossipKeys are the gossip keys a node keeps in DATA/gossip.keys
// (JSON {"keys":[base64...]}, primary first).
func readGossipKeys(t *testing.T, data string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "gossip.keys"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Keys [][]byte }
	if err := json.Unmarshal(b, &f); err != nil || len(f.Keys) == 0 {
		t.Fatalf("%s/gossip.keys: %v %q", data, err, b)
	}
	return f.Keys
}

// csrFor is a certificate request for node with key.
func csrFor(t *testing.T, key crypto.Signer, node string) []byte {
	t.Helper()
	csr, err := auth.NewNodeCSR(key, node, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// ipv4UDP is an IPv4 UDP packet from src to dst (checksums left zero:
// the receiving stack is never reached).
func ipv4UDP(src, dst string, payload []byte) []byte {
	p := make([]byte, 28, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(28+len(payload)))
	p[8], p[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[20:], 40000)
	binary.BigEndian.PutUint16(p[22:], 9)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	return append(p, payload...)
}
