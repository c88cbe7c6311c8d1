// Package node is labd, the labnet daemon: it holds the desired state, runs
// the virtual hosts placed on this machine and serves the gRPC API.
package node

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/control"
	"github.com/labnet-dev/labnet/node/identity"
)

// Version is labd's version.
const Version = "0.1.0-dev"

// Config is labd's configuration.
type Config struct {
	Name      string // node name; the machine's host name by default
	DataDir   string // where the replica lives
	API       string // gRPC listen address
	Gossip    string // memberlist address (UDP+TCP)
	Overlay   string // GENEVE address (UDP)
	Join      []string
	Advertise string // address peers should use for this node, when not the bound one
	LogLevel  slog.Level
	Insecure  bool   // allow non-loopback gossip/overlay without a cluster key
	Key       []byte // cluster key: encrypts gossip and seals the overlay
	// SharedKeyOnly seals the overlay with the cluster key only, never
	// per pair of nodes: the sealing before node identities, kept to
	// measure what per-node sealing costs. Loopback only.
	SharedKeyOnly bool
	// FailoverAfter is how long a node may be gone before its hosts are
	// placed again elsewhere; 0 turns failover off.
	FailoverAfter time.Duration
	// Failback brings a host that failed over back to its home node once
	// that node has been alive again for FailoverAfter.
	Failback bool
	// ForgetAfter is how long a dead or left node stays listed.
	ForgetAfter time.Duration
	// Metrics is where Prometheus metrics are served; empty: off.
	Metrics string
	// Tun is the TUN gateway (gateway.go); none when Tun.Device is empty.
	Tun TunConfig
	// Control makes this node a control node: it keeps the desired state
	// in the raft log (node/control). Members follow the control nodes.
	Control bool
	// Raft is the control node's raft address (TCP); unused by members.
	Raft string
	// Bootstrap names the control node that forms a new control plane
	// when there is none yet (no raft state): a StatefulSet's first pod,
	// whose --join names every pod, itself included. Empty: a control
	// node without --join.
	Bootstrap string
	// TLS is --tls: nil for the default, TLS only when --api is not
	// loopback (on loopback a plaintext API is served beside TLS); true
	// forces TLS only; false is refused on a non-loopback --api.
	TLS *bool
	// TLSSANs are extra DNS names and IPs the API's certificate names
	// (--tls-san), besides the advertised API address.
	TLSSANs []string
	// CACert and CAKey are files holding the cluster CA (a Kubernetes
	// Secret): a node given them signs its own certificate and enrols
	// others, as the bootstrapping node does with the CA it creates.
	CACert, CAKey string
	// Enroll is a node enrolment token (labd --enroll, from `labctl node
	// invite`): a node without a usable certificate enrols with it.
	Enroll string
	// AdminToken is the bootstrap admin's token (--admin-token-file),
	// used instead of one labd makes and writes to DATA/admin.token.
	AdminToken string
}

// tlsOnly reports whether the API serves TLS alone: --tls, or an API
// that is not on loopback. Otherwise plaintext gRPC is accepted beside
// TLS, for the single-machine default.
func (c *Config) tlsOnly() bool {
	if c.TLS != nil {
		return *c.TLS
	}
	return !isLoopback(c.API)
}

// bootstraps reports whether this node forms a new control plane when it
// has no raft state yet.
func (c *Config) bootstraps() bool {
	if c.Bootstrap != "" {
		return c.Bootstrap == c.Name
	}
	return len(c.Join) == 0
}

// Defaults, as DESIGN.md's table gives them.
const (
	DefaultAPI     = "127.0.0.1:7700"
	DefaultGossip  = "127.0.0.1:7946"
	DefaultOverlay = "127.0.0.1:6081"
	DefaultRaft    = "127.0.0.1:7701"
	// defaultRaftPort is --raft's port when it follows --api's IP.
	defaultRaftPort = "7701"
)

// DefaultDataDir is $XDG_STATE_HOME/labd, else ~/.local/state/labd.
func DefaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "labd")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "labd")
	}
	return filepath.Join(os.TempDir(), "labd")
}

// ParseFlags reads labd's flags from args, each falling back to the
// environment variable LABD_<FLAG> (dashes become underscores). It returns
// flag.ErrHelp for -h.
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	host, _ := os.Hostname()
	if host == "" {
		host = "labd"
	}
	fs := flag.NewFlagSet("labd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      Config
		join     string
		logLevel string
	)
	fs.StringVar(&cfg.Name, "name", host, "node name, unique in the cluster")
	fs.StringVar(&cfg.DataDir, "data", DefaultDataDir(getenv), "data directory (the persisted lab)")
	fs.StringVar(&cfg.API, "api", DefaultAPI, "gRPC API listen address")
	fs.StringVar(&cfg.Gossip, "gossip", DefaultGossip, "gossip (memberlist) address, UDP and TCP")
	fs.StringVar(&cfg.Overlay, "overlay", DefaultOverlay, "overlay (GENEVE) address, UDP")
	fs.StringVar(&join, "join", "", "comma-separated gossip addresses (host:port) of nodes to join")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address (host) other nodes should use to reach this one; the bound address by default")
	var key, keyFile string
	fs.StringVar(&key, "cluster-key", "", "cluster key: encrypts gossip and seals overlay packets (every node needs the same)")
	fs.StringVar(&keyFile, "cluster-key-file", "", "file holding the cluster key")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&cfg.FailoverAfter, "failover-after", time.Minute, "place the hosts of a node gone this long on live nodes (0: never)")
	fs.BoolVar(&cfg.Failback, "failback", true, "move a host that failed over back to its home node once that node has been alive for --failover-after (false: it stays)")
	fs.DurationVar(&cfg.ForgetAfter, "forget-after", 24*time.Hour, "stop listing a node dead or left this long")
	fs.StringVar(&cfg.Metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (off when empty)")
	var control optionalBool
	fs.Var(&control, "control", "control node: keeps the lab's state in the raft log (default: true without --join, false with it)")
	fs.StringVar(&cfg.Bootstrap, "bootstrap", "", "the control node that forms a new control plane when none exists (default: a control node without --join)")
	fs.StringVar(&cfg.Raft, "raft", "", "raft address of a control node, TCP (default: --api's IP, port "+defaultRaftPort+"; port 0 when --api's port is 0)")
	parseTun := tunFlags(fs, &cfg.Tun)
	var tlsFlag optionalBool
	fs.Var(&tlsFlag, "tls", "serve the API over TLS only (default: true unless --api is loopback, where plaintext is accepted beside TLS)")
	var sans, adminTokenFile string
	fs.StringVar(&sans, "tls-san", "", "comma-separated extra DNS names and IPs for the API's certificate (a load balancer's, a Service's)")
	fs.StringVar(&cfg.CACert, "ca-cert", "", "file holding the cluster CA's certificate (PEM; with --ca-key): this node signs certificates with it")
	fs.StringVar(&cfg.Enroll, "enroll", "", "node enrolment token (lne1:..., printed by `labctl node invite`): enrol with it when this node has no certificate")
	var enrollFile string
	fs.StringVar(&enrollFile, "enroll-file", "", "file holding the node enrolment token (instead of --enroll; labctl node invite --token-file writes one)")
	fs.StringVar(&cfg.CAKey, "ca-key", "", "file holding the cluster CA's private key (PEM; with --ca-cert)")
	fs.StringVar(&adminTokenFile, "admin-token-file", "", "file holding the first admin's token (lnt_...), used instead of one written to DATA/admin.token")
	fs.BoolVar(&cfg.SharedKeyOnly, "overlay-shared-key-only", false, "seal overlay packets with the cluster key only, not per pair of nodes (loopback only: for measuring what per-node sealing costs)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow gossip and overlay on non-loopback addresses without a way to get the gossip keys (plaintext gossip unless the control plane has gossip keys)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: labd [flags]\n\nRuns a labnet node. With no flags: a single-node lab on loopback, API on %s.\nEvery flag can also be set as LABD_<FLAG> in the environment (LABD_LOG_LEVEL=debug).\n\nFlags:\n", DefaultAPI)
		fs.PrintDefaults()
	}
	// The environment sets defaults; flags on the command line override.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "LABD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %v", key, v, err)
			}
			f.DefValue = v
		}
	})
	if envErr != nil {
		return Config{}, envErr
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if err := parseTun(); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (labd takes only flags)", fs.Arg(0))
	}
	switch {
	case key != "" && keyFile != "":
		return Config{}, errors.New("--cluster-key and --cluster-key-file: give one of them")
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return Config{}, fmt.Errorf("--cluster-key-file: %w", err)
		}
		cfg.Key = []byte(strings.TrimSpace(string(b)))
		if len(cfg.Key) == 0 {
			return Config{}, fmt.Errorf("--cluster-key-file: %s is empty", keyFile)
		}
	case key != "":
		cfg.Key = []byte(key)
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return Config{}, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", logLevel)
	}
	cfg.Join = splitList(join)
	if tlsFlag.set {
		cfg.TLS = &tlsFlag.v
	}
	cfg.TLSSANs = splitList(sans)
	if enrollFile != "" {
		if cfg.Enroll != "" {
			return Config{}, errors.New("--enroll and --enroll-file: give one of them")
		}
		b, err := os.ReadFile(enrollFile)
		if err != nil {
			return Config{}, fmt.Errorf("--enroll-file: %w", err)
		}
		if cfg.Enroll = strings.TrimSpace(string(b)); cfg.Enroll == "" {
			return Config{}, fmt.Errorf("--enroll-file: %s is empty", enrollFile)
		}
	}
	if adminTokenFile != "" {
		b, err := os.ReadFile(adminTokenFile)
		if err != nil {
			return Config{}, fmt.Errorf("--admin-token-file: %w", err)
		}
		cfg.AdminToken = strings.TrimSpace(string(b))
	}
	cfg.Control = len(cfg.Join) == 0 // the teacher, or a single machine
	if control.set {
		cfg.Control = control.v
	}
	if cfg.Raft == "" {
		cfg.Raft = raftBeside(cfg.API)
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, "/ \t\n") {
		return fmt.Errorf("--name: %q is not a node name", c.Name)
	}
	if c.DataDir == "" {
		return errors.New("--data: required")
	}
	if err := c.Tun.Validate(); err != nil {
		return err
	}
	for _, a := range []struct{ flag, addr string }{{"api", c.API}, {"gossip", c.Gossip}, {"overlay", c.Overlay}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("--%s: %q is not host:port", a.flag, a.addr)
		}
	}
	if c.TLS != nil && !*c.TLS && !isLoopback(c.API) {
		return fmt.Errorf("--tls=false: --api %s is not a loopback address: refusing to serve the API without TLS on a real network (drop --tls=false, or bind --api to 127.0.0.1)", c.API)
	}
	unauthenticated := []struct{ flag, addr string }{{"gossip", c.Gossip}, {"overlay", c.Overlay}}
	if c.Control {
		if _, _, err := net.SplitHostPort(c.Raft); err != nil {
			return fmt.Errorf("--raft: %q is not host:port", c.Raft)
		}
		// Raft runs over mutual TLS between control certificates
		// (node/control/tls.go): no key needed off loopback.
	}
	for _, a := range unauthenticated {
		if c.Insecure || len(c.Key) > 0 || isLoopback(a.addr) {
			continue
		}
		// Gossip is encrypted with keys from the control plane and the
		// overlay sealed per pair of node certificates (gossipkeys.go):
		// a node needs a way to get them.
		if why := c.noGossipKey(); why != "" {
			return fmt.Errorf("--%s: %s is not a loopback address and %s: start it with --enroll TOKEN (from `labctl node invite`), or --cluster-key (or --insecure for plaintext)", a.flag, a.addr, why)
		}
	}
	if c.SharedKeyOnly && (len(c.Key) == 0 || !isLoopback(c.Overlay)) {
		return fmt.Errorf("--overlay-shared-key-only: needs --cluster-key and a loopback --overlay (it turns off per-node sealing, which a real network needs)")
	}
	for _, san := range c.TLSSANs {
		if !validSAN(san) {
			return fmt.Errorf("--tls-san: %q is not a DNS name or an IP address", san)
		}
	}
	if (c.CACert == "") != (c.CAKey == "") {
		return errors.New("--ca-cert and --ca-key: give both, or neither")
	}
	if c.Enroll != "" {
		if _, err := auth.ParseEnrollToken(c.Enroll); err != nil {
			return fmt.Errorf("--enroll: %w", err)
		}
	}
	if c.AdminToken != "" {
		if _, _, err := identity.ParseToken(c.AdminToken); err != nil {
			return fmt.Errorf("--admin-token-file: %w", err)
		}
	}
	if _, err := netip.ParseAddr(c.Advertise); c.Advertise != "" && err != nil {
		return fmt.Errorf("--advertise: %q is not an IP address", c.Advertise)
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("--join: %q is not host:port", j)
		}
	}
	return nil
}

// raftBeside is --raft's default: --api's IP with port 7701, so that
// control nodes on 127.0.0.2 and 127.0.0.3 do not collide; port 0 (any)
// when --api's port is 0, as tests start many labds on one IP.
func raftBeside(api string) string {
	host, port, err := net.SplitHostPort(api)
	if err != nil {
		return DefaultRaft // Validate reports --api
	}
	if port != "0" {
		port = defaultRaftPort
	}
	return net.JoinHostPort(host, port)
}

// optionalBool is a bool flag that knows whether it was given (on the
// command line or in the environment), for defaults that depend on other
// flags.
type optionalBool struct{ v, set bool }

func (b *optionalBool) String() string {
	if b == nil {
		return "false"
	}
	return strconv.FormatBool(b.v)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.v, b.set = v, true
	return nil
}

func (b *optionalBool) IsBoolFlag() bool { return true }

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// validSAN reports whether s may be named in a certificate: an IP
// address, or a DNS name (RFC 1035 section 2.3.1's letters, digits and
// hyphens, with a leading wildcard label allowed as RFC 6125 section
// 6.4.3 describes).
func validSAN(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if len(s) > 253 {
		return false
	}
	for i, label := range strings.Split(s, ".") {
		if i == 0 && label == "*" {
			continue
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// isLoopback reports whether a host:port address is on loopback.
var isLoopback = control.IsLoopback
