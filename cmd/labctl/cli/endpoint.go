package cli

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables for the credential and labd's data directory.
const (
	EnvToken     = "LABCTL_TOKEN"
	envLabdData  = "LABD_DATA"
	envStateHome = "XDG_STATE_HOME"
)

// Files labd writes in its data directory that labctl on the same machine
// reads (docs/security.md): the local admin credential and the cluster CA.
const (
	adminTokenFile = "admin.token"
	caCertFile     = "ca.crt"
)

// endpoint is where labctl connects and with what credential.
type endpoint struct {
	server string
	token  string
	// ca is the cluster CA the server's certificate must chain to; nil:
	// none known (plaintext, loopback only).
	ca *x509.Certificate
	// from says where the credential comes from, for messages: a context
	// or labd's data directory.
	from string
}

// endpoint resolves the server, token and CA of this run, once. Flags win
// over the environment, the environment over the context (--context, else
// the current one). With no context and no token, a loopback server's
// labd data directory is read for its local admin credential, so the
// single-machine quickstart needs no login.
func (a *app) endpoint() (endpoint, error) {
	cfg, err := a.config()
	if err != nil {
		return endpoint{}, err
	}
	cx, err := a.context(cfg)
	if err != nil {
		return endpoint{}, err
	}
	ep := endpoint{server: firstSet(a.server, a.getenv(EnvServer)), token: firstSet(a.token, a.getenv(EnvToken))}
	if cx != nil {
		ep.server = firstSet(ep.server, cx.Server)
		ep.token = firstSet(ep.token, cx.Token)
		ep.from = "context " + cx.Name
		if cx.CA != "" {
			if ep.ca, err = parseCA([]byte(cx.CA)); err != nil {
				return endpoint{}, fmt.Errorf("context %s: ca: %w", cx.Name, err)
			}
		}
	}
	ep.server = firstSet(ep.server, DefaultServer)
	if cx == nil && ep.token == "" && isLoopback(ep.server) {
		if err := a.localCredential(&ep); err != nil {
			return endpoint{}, err
		}
	}
	return ep, nil
}

// context is the context --context names, else the current one; nil when
// there is none.
func (a *app) context(cfg *Config) (*ConfigContext, error) {
	name := a.contextName
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil, nil
	}
	cx := cfg.Context(name)
	if cx == nil {
		return nil, fmt.Errorf("no context %q in %s (labctl config get-contexts lists them)", name, configPath(a.getenv))
	}
	return cx, nil
}

// labdDataDir is $LABD_DATA, else labd's default: $XDG_STATE_HOME/labd,
// else ~/.local/state/labd; "" when none of them is set.
func labdDataDir(getenv func(string) string) string {
	switch {
	case getenv(envLabdData) != "":
		return getenv(envLabdData)
	case getenv(envStateHome) != "":
		return filepath.Join(getenv(envStateHome), "labd")
	case getenv(envHome) != "":
		return filepath.Join(getenv(envHome), ".local", "state", "labd")
	}
	return ""
}

// localCredential fills ep from labd's data directory on this machine: the
// admin token labd wrote when it created the control plane, and its CA.
// Missing files are no error: a labd elsewhere, or one started with
// --admin-token-file, answers Unauthenticated saying how to log in.
func (a *app) localCredential(ep *endpoint) error {
	dir := labdDataDir(a.getenv)
	if dir == "" {
		return nil
	}
	tok, err := os.ReadFile(filepath.Join(dir, adminTokenFile))
	switch {
	case err == nil:
		ep.token = strings.TrimSpace(string(tok))
		ep.from = "labd's local admin credential in " + dir
	case errors.Is(err, fs.ErrNotExist):
	default:
		// Another user's labd: say why no token is sent, and go on.
		fmt.Fprintf(a.stderr, "warning: %v\n", err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, caCertFile))
	switch {
	case err == nil:
		if ep.ca, err = parseCA(ca); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, caCertFile), err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return err
	}
	return nil
}

// parseCA reads one PEM certificate.
func parseCA(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// pemOf is cert as PEM.
func pemOf(cert *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
}

// isLoopback reports whether server ("host:port", or "unix:PATH") is on
// this machine: a loopback IP, "localhost" or a Unix socket. Names are not
// resolved: a name that resolves to loopback still needs TLS.
func isLoopback(server string) bool {
	if strings.HasPrefix(server, "unix:") || strings.HasPrefix(server, "unix-abstract:") {
		return true
	}
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// hostOf is the host of "host:port", for TLS verification.
func hostOf(server string) string {
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		return server
	}
	return host
}

func firstSet(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
