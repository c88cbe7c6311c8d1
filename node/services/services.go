// Package services runs the classic small services of a virtual host: echo
// (RFC 862), discard (RFC 863), chargen (RFC 864), daytime (RFC 867) and a
// small HTTP server that tells a visitor where it landed.
//
// The services see the host only through Net, which hands out standard
// net.Listener and net.PacketConn sockets: on a virtual host they come from
// the host's userspace stack, in tests from the kernel's loopback.
package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Net is what a host offers the services.
type Net interface {
	// ListenTCP listens on port on every address of the host.
	ListenTCP(port uint16) (net.Listener, error)
	// ListenUDP listens on port on every address of the host.
	ListenUDP(port uint16) (net.PacketConn, error)
}

// HostInfo describes the host for the http page.
type HostInfo struct {
	Name string // the host's short name, "h1"
	Lab  string // its lab, "demo"
	Node string // the labd node that runs it
	// Interfaces in the order the page lists them.
	Interfaces []InterfaceInfo
}

// InterfaceInfo describes one interface of the host.
type InterfaceInfo struct {
	Name      string // "eth0"
	Network   string // the network's short id, "lan1"
	Addresses []netip.Prefix
}

// ErrUnknownService is wrapped by the error for a name Known does not list.
var ErrUnknownService = errors.New("unknown service")

// The well-known ports (RFC 862, 863, 867, 864; RFC 9110 §4.2.1 for http).
const (
	portEcho    = 7
	portDiscard = 9
	portDaytime = 13
	portChargen = 19
	portHTTP    = 80
)

// A service is one entry of the catalog: start listens on its sockets and
// starts their goroutines in s.
type service struct {
	name  string
	start func(s *Set, n Net) error
}

// catalog lists the services, sorted by name.
var catalog = []service{
	{"chargen", (*Set).startChargen},
	{"daytime", (*Set).startDaytime},
	{"discard", (*Set).startDiscard},
	{"echo", (*Set).startEcho},
	{"http", (*Set).startHTTP},
}

// Known returns the names of the services, sorted.
func Known() []string {
	names := make([]string, len(catalog))
	for i, sv := range catalog {
		names[i] = sv.name
	}
	return names
}

// Validate reports whether name is a known service; the error wraps
// ErrUnknownService and lists the known ones.
func Validate(name string) error {
	_, err := lookup(name)
	return err
}

func lookup(name string) (service, error) {
	i := slices.IndexFunc(catalog, func(sv service) bool { return sv.name == name })
	if i < 0 {
		return service{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownService, name, strings.Join(Known(), ", "))
	}
	return catalog[i], nil
}

// An Option changes how Start runs the services.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock makes daytime tell the time now returns (time.Now by default);
// pass the host's clock, or a fixed one in tests.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Start starts the named services on n, each on its well-known port: echo
// (TCP and UDP 7), discard (9), daytime (13), chargen (19) and http (TCP 80).
// A name given twice starts once. An unknown name fails before anything
// starts; a failure to listen stops what was started and returns the error.
//
// The services run until Close, or until ctx is done, which stops them as
// Close does (call Close anyway, to wait for them). log receives one debug
// record per connection or datagram; nil discards.
func Start(ctx context.Context, n Net, host HostInfo, names []string, log *slog.Logger, opts ...Option) (*Set, error) {
	var want []service
	for _, name := range names {
		sv, err := lookup(name)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(want, func(w service) bool { return w.name == name }) {
			want = append(want, sv)
		}
	}
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("start services: %w", err)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := newSet(ctx, log, host, o)
	for _, sv := range want {
		if err := sv.start(s, n); err != nil {
			s.Close()
			if errors.Is(err, errStopped) {
				err = fmt.Errorf("start services: %w", context.Cause(ctx))
			}
			return nil, err
		}
	}
	return s, nil
}
