package probe

import (
	"context"
	"errors"
	"io"
	"iter"
	"net/netip"
	"os"
	"time"
)

// DiscardPort is the discard service's port (RFC 863), where Bench sends.
const DiscardPort = 9

// BenchOptions configure Bench: it sends Bytes, or for Duration; neither
// means for 10s.
type BenchOptions struct {
	Destination netip.Addr
	Port        uint16 // DiscardPort when 0
	Bytes       uint64 // at most 1 TiB
	Duration    time.Duration
	// Every is how often a BenchProgress comes: 1s when 0.
	Every time.Duration
}

// A BenchEvent is a BenchProgress or the BenchResult, which comes last.
type BenchEvent interface{ benchEvent() }

// BenchProgress is how far a run got: bytes the receiver acknowledged.
type BenchProgress struct {
	Bytes   uint64
	Elapsed time.Duration
}

// BenchResult is a finished run.
type BenchResult struct {
	Bytes       uint64 // the receiver has
	Elapsed     time.Duration
	Retransmits uint64
}

// Gbps is the run's throughput.
func (r BenchResult) Gbps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e9
}

func (BenchProgress) benchEvent() {}
func (BenchResult) benchEvent()   {}

func (o *BenchOptions) check() error {
	if o.Port == 0 {
		o.Port = DiscardPort
	}
	if o.Every <= 0 {
		o.Every = time.Second
	}
	switch {
	case !o.Destination.IsValid():
		return badOption("destination", "missing")
	case o.Bytes > 1<<40:
		return badOption("bytes", "%d is above 1 TiB", o.Bytes)
	case o.Duration < 0 || o.Duration > 10*time.Minute:
		return badOption("duration", "%v is outside 0-10m", o.Duration)
	case o.Bytes == 0 && o.Duration == 0:
		o.Duration = 10 * time.Second
	}
	return nil
}

// Bench sends TCP data from h to the destination's discard service and
// reports the throughput when the receiver has everything (Bytes), or what
// it acknowledged in the time (Duration).
func Bench(ctx context.Context, h Host, opts BenchOptions) iter.Seq2[BenchEvent, error] {
	return func(yield func(BenchEvent, error) bool) {
		if err := bench(ctx, h, opts, func(ev BenchEvent) bool { return yield(ev, nil) }); err != nil {
			yield(nil, err)
		}
	}
}

func bench(ctx context.Context, h Host, o BenchOptions, yield func(BenchEvent) bool) error {
	if err := o.check(); err != nil {
		return err
	}
	dst := netip.AddrPortFrom(o.Destination, o.Port)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := h.tcp.Dial(dctx, dst)
	cancel()
	if err != nil {
		return fail(ErrConnect, "connect to %s port %d (discard): %w", dst.Addr(), dst.Port(), err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	chunk := make([]byte, 256<<10)
	start := time.Now()
	lastReport := start
	var sent uint64
	for {
		if o.Bytes > 0 && sent >= o.Bytes || o.Bytes == 0 && time.Since(start) >= o.Duration {
			break
		}
		n := uint64(len(chunk))
		if o.Bytes > 0 {
			n = min(n, o.Bytes-sent)
		} else {
			c.SetWriteDeadline(start.Add(o.Duration))
		}
		w, err := c.Write(chunk[:n])
		sent += uint64(w)
		if o.Bytes == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return fail(ErrTransfer, "after %d bytes: %w", sent, err)
		}
		if time.Since(lastReport) >= o.Every {
			lastReport = time.Now()
			if !yield(BenchProgress{Bytes: c.Info().BytesAcked, Elapsed: time.Since(start)}) {
				return nil
			}
		}
	}
	if o.Bytes == 0 {
		// A timed run counts what the receiver acknowledged in the time,
		// and drops what is still queued rather than draining it.
		info := c.Info()
		c.SetLinger(0)
		yield(BenchResult{Bytes: info.BytesAcked, Elapsed: time.Since(start), Retransmits: info.Retransmits})
		return nil
	}
	// Done when the receiver has every byte: our FIN is acknowledged after
	// all the data, and discard closes its side in turn.
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, c); err != nil {
		return fail(ErrTransfer, "waiting for the receiver: %w", err)
	}
	yield(BenchResult{Bytes: sent, Elapsed: time.Since(start), Retransmits: c.Info().Retransmits})
	return nil
}
