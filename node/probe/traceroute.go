package probe

import (
	"context"
	"errors"
	"iter"
	"net/netip"
	"time"

	"github.com/labnet-dev/labnet/stack"
)

// TraceOptions configure Traceroute; zero values take traceroute(8)'s
// defaults.
type TraceOptions struct {
	Destination netip.Addr
	MaxHops     int           // 30, at most 255
	Probes      int           // per hop: 3, at most 10
	Timeout     time.Duration // wait for a hop's answers: 1s
}

// A TraceEvent is a TraceStart or a TraceHop.
type TraceEvent interface{ traceEvent() }

// TraceStart comes first.
type TraceStart struct {
	Source, Destination netip.Addr
	MaxHops             int
}

// TraceHop is what the probes sent with one TTL found.
type TraceHop struct {
	TTL     int
	Probes  []TraceProbe
	Reached bool // an answer came from the destination
}

// TraceProbe is one probe's answer.
type TraceProbe struct {
	// Answered says an answer came, from From after RTT. A probe the host
	// could not send is not answered, but has From (the host itself) and
	// an annotation, as Linux reports a failed neighbour lookup.
	Answered bool
	From     netip.Addr
	RTT      time.Duration
	// Annotation is traceroute(8)'s mark for an unreachable: "!H", "!N",
	// "!F-1280" ...; "" otherwise.
	Annotation string
}

func (TraceStart) traceEvent() {}
func (TraceHop) traceEvent()   {}

func (o *TraceOptions) check() error {
	if o.MaxHops == 0 {
		o.MaxHops = 30
	}
	if o.Probes == 0 {
		o.Probes = 3
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	switch {
	case !o.Destination.IsValid():
		return badOption("destination", "missing")
	case o.MaxHops < 0:
		return badOption("max_hops", "must not be negative")
	case o.MaxHops > 255:
		return badOption("max_hops", "%d is above 255", o.MaxHops)
	case o.Probes < 0:
		return badOption("probes", "must not be negative")
	case o.Probes > 10:
		return badOption("probes", "%d is above 10", o.Probes)
	case o.Timeout < 0:
		return badOption("timeout", "must be positive")
	}
	return nil
}

// Traceroute sends echo requests with TTL 1, 2, ... (traceroute -I): each
// hop's probes go out together and the hop ends when all are answered or
// the timeout passes. It stops at the destination, at a hop whose every
// answer says unreachable, after MaxHops, or when ctx ends.
func Traceroute(ctx context.Context, h Host, opts TraceOptions) iter.Seq2[TraceEvent, error] {
	return func(yield func(TraceEvent, error) bool) {
		if err := traceroute(ctx, h, opts, func(ev TraceEvent) bool { return yield(ev, nil) }); err != nil {
			yield(nil, err)
		}
	}
}

func traceroute(ctx context.Context, h Host, o TraceOptions, yield func(TraceEvent) bool) error {
	if err := o.check(); err != nil {
		return err
	}
	dst := o.Destination
	src, err := h.source(dst)
	if err != nil {
		return err
	}
	ep, err := h.openEcho(dst)
	if err != nil {
		return err
	}
	defer ep.Close()
	if !yield(TraceStart{Source: src, Destination: dst, MaxHops: o.MaxHops}) {
		return nil
	}
	payload := make([]byte, 32)
	seq := uint16(0)
	for ttl := 1; ttl <= o.MaxHops; ttl++ {
		hop := TraceHop{TTL: ttl, Probes: make([]TraceProbe, o.Probes)}
		first := seq + 1
		sentAt := make([]time.Time, o.Probes)
		done, unreachable := 0, 0 // probes answered or failed; of those, unreachables
		for i := range hop.Probes {
			seq++
			sentAt[i] = h.stack.Now()
			if _, err := ep.Send(dst, seq, uint8(ttl), payload); err != nil {
				p := &hop.Probes[i]
				p.From, p.Annotation = src, "!H"
				if errors.Is(err, stack.ErrMessageTooLong) {
					p.Annotation = "!F"
				}
				done++
				unreachable++
			}
		}
		deadline := time.NewTimer(o.Timeout)
	wait:
		for done < o.Probes {
			select {
			case <-ctx.Done():
				deadline.Stop()
				return nil
			case <-deadline.C:
				break wait
			case ev, ok := <-ep.Events():
				if !ok {
					deadline.Stop()
					return nil
				}
				i := int(ev.Seq - first)
				if i < 0 || i >= o.Probes || hop.Probes[i].From.IsValid() {
					continue // an answer to an earlier hop's probe
				}
				p := &hop.Probes[i]
				p.Answered, p.From, p.RTT, p.Annotation = true, ev.From, ev.At.Sub(sentAt[i]), annotation(ev)
				done++
				if ev.From == dst {
					hop.Reached = true
				}
				if p.Annotation != "" {
					unreachable++
				}
			}
		}
		deadline.Stop()
		if !yield(hop) {
			return nil
		}
		if hop.Reached || (unreachable > 0 && unreachable == done) {
			return nil
		}
	}
	return nil
}
