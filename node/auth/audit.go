package auth

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The audit: every write (create, update, delete, transfer, exec,
// capture, and the AuthService's changes) and every refused call is
// logged at INFO with its principal, method, resources and outcome;
// reads that succeed are not (they would drown the rest). Every call is
// counted by method and outcome (Calls, for labnet_api_calls_total).

// record logs and counts a call that ended with err.
func (i *Interceptor) record(ctx context.Context, method string, p *Principal, cs []perm, err error) {
	o := outcomeOf(err)
	i.count(method, o)
	if o == outcomeOK || o == outcomeError {
		if !writes(method, cs) {
			return
		}
	}
	attrs := []slog.Attr{
		slog.String("principal", p.String()),
		slog.String("method", method),
	}
	if len(cs) > 0 {
		attrs = append(attrs, slog.String("verb", string(cs[0].Verb)), slog.String("resource", resources(cs)))
	}
	attrs = append(attrs, slog.String("outcome", o.String()))
	msg := "api call"
	if o == outcomeDenied || o == outcomeUnauthenticated {
		msg = "api call denied"
		if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
			attrs = append(attrs, slog.String("peer", pr.Addr.String()))
		}
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
	}
	i.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}

// writes reports whether a call changes something or acts in a lab.
func writes(method string, cs []perm) bool {
	if method == authSvc+"Login" {
		return true // uses up the invite, makes a session token
	}
	for _, c := range cs {
		if c.Verb != Get && c.Verb != List && c.Verb != Watch {
			return true
		}
	}
	return false
}

// resources joins the checks' resources for a log line.
func resources(cs []perm) string {
	if len(cs) == 1 {
		return cs[0].Resource
	}
	names := make([]string, len(cs))
	for k, c := range cs {
		names[k] = c.Resource
	}
	return strings.Join(names, ",")
}

// callCounts are one method's calls by outcome.
type callCounts [numOutcomes]atomic.Uint64

func (i *Interceptor) count(method string, o outcome) {
	c, ok := i.calls.Load(method)
	if !ok {
		c, _ = i.calls.LoadOrStore(method, new(callCounts))
	}
	c.(*callCounts)[o].Add(1)
}

// CallCount is how many calls of a method ended with an outcome: "ok",
// "denied", "unauthenticated" or "error". node/metrics' APICall has the
// same fields, so the daemon converts one to the other.
type CallCount struct {
	Method  string
	Outcome string
	Count   uint64
}

// Calls yields the calls counted so far: every outcome, zeros included,
// of every method called at least once.
func (i *Interceptor) Calls(yield func(CallCount) bool) {
	i.calls.Range(func(k, v any) bool {
		c := v.(*callCounts)
		for o := range numOutcomes {
			if !yield(CallCount{Method: k.(string), Outcome: o.String(), Count: c[o].Load()}) {
				return false
			}
		}
		return true
	})
}
