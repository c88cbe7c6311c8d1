package probe

import (
	"context"
	"iter"
	"net/netip"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// PingOptions configure Ping; zero values take ping(8)'s defaults.
type PingOptions struct {
	Destination netip.Addr
	Count       int           // echo requests to send; 0 sends until ctx ends
	Interval    time.Duration // between requests: 1s, at least 10ms
	Timeout     time.Duration // wait for each answer: 1s
	Size        int           // payload bytes: 56, at most 65000
	TTL         int           // TTL / hop limit: 64, at most 255
}

// A PingEvent is one of PingStart, PingReply, PingError, PingTimeout.
type PingEvent interface{ pingEvent() }

// PingStart comes first: the addresses and sizes of the requests.
type PingStart struct {
	Source, Destination netip.Addr
	Size                int // payload bytes
	PacketSize          int // IP packet bytes
}

// PingReply is an echo reply.
type PingReply struct {
	Seq   uint16
	From  netip.Addr
	TTL   uint8 // of the reply as received
	Bytes int   // of the ICMP message
	RTT   time.Duration
}

// PingError is an ICMP error about a request, or a local one (From
// invalid) when the host could not send it.
type PingError struct {
	Seq                uint16
	From               netip.Addr
	Message            string // worded as iputils ping does
	ICMPType, ICMPCode uint8
}

// PingTimeout is a request that had no answer within the timeout.
type PingTimeout struct{ Seq uint16 }

func (PingStart) pingEvent()   {}
func (PingReply) pingEvent()   {}
func (PingError) pingEvent()   {}
func (PingTimeout) pingEvent() {}

func (o *PingOptions) check() error {
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Size == 0 {
		o.Size = 56
	}
	if o.TTL == 0 {
		o.TTL = 64
	}
	switch {
	case !o.Destination.IsValid():
		return badOption("destination", "missing")
	case o.Count < 0:
		return badOption("count", "must not be negative")
	case o.Interval < 10*time.Millisecond:
		return badOption("interval", "%v is below the minimum of 10ms", o.Interval)
	case o.Timeout < 0:
		return badOption("timeout", "must be positive")
	case o.TTL < 0:
		return badOption("ttl", "must not be negative")
	case o.TTL > 255:
		return badOption("ttl", "%d is above 255", o.TTL)
	case o.Size < 0:
		return badOption("size", "must not be negative")
	case o.Size > 65000:
		return badOption("size", "%d is above 65000", o.Size)
	}
	return nil
}

// Ping sends echo requests like ping(8): one every interval, each waited
// for until the timeout. It ends after count requests are answered or timed
// out, or when ctx ends.
func Ping(ctx context.Context, h Host, opts PingOptions) iter.Seq2[PingEvent, error] {
	return func(yield func(PingEvent, error) bool) {
		if err := ping(ctx, h, opts, func(ev PingEvent) bool { return yield(ev, nil) }); err != nil {
			yield(nil, err)
		}
	}
}

// pending is an echo request waiting for its answer.
type pending struct{ sent, deadline time.Time }

// ping runs Ping, giving events to yield until it returns false.
func ping(ctx context.Context, h Host, o PingOptions, yield func(PingEvent) bool) error {
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
	header := wire.IPv4MinHeaderLen
	if dst.Is6() {
		header = wire.IPv6HeaderLen
	}
	if !yield(PingStart{Source: src, Destination: dst, Size: o.Size, PacketSize: o.Size + wire.ICMPHeaderLen + header}) {
		return nil
	}
	payload := make([]byte, o.Size)
	for i := range payload {
		payload[i] = byte(i)
	}
	waiting := map[uint16]pending{}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	check := time.NewTicker(10 * time.Millisecond)
	defer check.Stop()
	sent := 0
	// send sends the next request; false when the caller stopped.
	send := func() bool {
		sent++
		seq := uint16(sent)
		at := h.stack.Now() // the clock answers are stamped with
		if _, err := ep.Send(dst, seq, uint8(o.TTL), payload); err != nil {
			return yield(PingError{Seq: seq, Message: localError(err)})
		}
		now := time.Now()
		waiting[seq] = pending{sent: at, deadline: now.Add(o.Timeout)}
		return true
	}
	if !send() {
		return nil
	}
	for {
		if o.Count > 0 && sent >= o.Count && len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if (o.Count == 0 || sent < o.Count) && !send() {
				return nil
			}
		case <-check.C:
			now := time.Now()
			for seq, p := range waiting {
				if now.After(p.deadline) {
					delete(waiting, seq)
					if !yield(PingTimeout{Seq: seq}) {
						return nil
					}
				}
			}
		case ev, ok := <-ep.Events():
			if !ok {
				return nil
			}
			p, ok := waiting[ev.Seq]
			if !ok {
				continue // a duplicate, or too late
			}
			delete(waiting, ev.Seq)
			var out PingEvent = PingReply{Seq: ev.Seq, From: ev.From, TTL: ev.TTL, Bytes: ev.Len, RTT: ev.At.Sub(p.sent)}
			if !ev.Reply {
				out = PingError{Seq: ev.Seq, From: ev.From, Message: words(ev).message, ICMPType: ev.Type, ICMPCode: ev.Code}
			}
			if !yield(out) {
				return nil
			}
		}
	}
}
