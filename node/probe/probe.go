// Package probe runs the network tools of a virtual host as plain Go APIs:
// ping, traceroute (ICMP, like traceroute -I), an HTTP fetch and a TCP bulk
// bench, and reports what a host looks like from inside (interfaces,
// routes, counters, sockets). It knows neither protobuf nor gRPC: node/api
// translates its events to lab.v1 messages, and tests call it directly.
//
// Each tool returns an iterator of events (iter.Seq2[Event, error]): the
// first event says what the tool is about to do, the last error (if any)
// ends the iteration. Breaking out of the loop stops the tool and releases
// what it opened. A tool whose ctx ends stops without an error: cancelling
// is how an endless ping ends.
package probe

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/tcp"
	"github.com/labnet-dev/labnet/stack/udp"
)

// Host is the virtual host a tool runs from. It is opaque: whoever holds
// one (node/api) can hand it to the tools but cannot reach the stack.
type Host struct {
	stack *stack.Stack
	tcp   *tcp.Protocol
	udp   *udp.Protocol
}

// NewHost is the host of a stack and its TCP and UDP.
func NewHost(st *stack.Stack, t *tcp.Protocol, u *udp.Protocol) Host {
	return Host{stack: st, tcp: t, udp: u}
}

// An OptionError is an option out of range: the tool sent nothing.
type OptionError struct {
	Option string // as lab.v1 spells the field: "count", "max_hops"
	Reason string
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Reason }

func badOption(option, format string, args ...any) error {
	return &OptionError{Option: option, Reason: fmt.Sprintf(format, args...)}
}

// What kept a tool from starting or finishing; errors.Is tells them apart.
var (
	// ErrNoRoute: the host has no route, hence no source address, to the
	// destination.
	ErrNoRoute = errors.New("no route")
	// ErrNoSocket: the host cannot open the socket the tool needs.
	ErrNoSocket = errors.New("no socket")
	// ErrConnect: the TCP connection could not be made.
	ErrConnect = errors.New("cannot connect")
	// ErrTransfer: the connection failed while the tool used it.
	ErrTransfer = errors.New("transfer failed")
	// ErrNoInterface: the host has no running interface of that name.
	ErrNoInterface = errors.New("no such interface")
)

// failure is an error of kind (one of the sentinels above) whose message is
// err's.
type failure struct{ kind, err error }

func (f *failure) Error() string   { return f.err.Error() }
func (f *failure) Unwrap() []error { return []error{f.kind, f.err} }

func fail(kind error, format string, args ...any) error {
	return &failure{kind: kind, err: fmt.Errorf(format, args...)}
}

// source is the address h sends from to dst.
func (h Host) source(dst netip.Addr) (netip.Addr, error) {
	src, err := h.stack.SourceAddr(dst)
	if err != nil {
		return netip.Addr{}, fail(ErrNoRoute, "connect: %w", err)
	}
	return src, nil
}

// openEcho opens an echo endpoint of dst's family.
func (h Host) openEcho(dst netip.Addr) (*stack.EchoEndpoint, error) {
	ep, err := h.stack.OpenEcho(dst.Is6())
	if err != nil {
		return nil, fail(ErrNoSocket, "%w", err)
	}
	return ep, nil
}
