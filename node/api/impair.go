package api

import (
	"context"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Limits of an interface's impairments.
const (
	maxImpairDelay = 60 * time.Second
	// minImpairRate is 1 kB/s: below it a 1500-byte packet takes 1.5 s to
	// send, and the queue of 1000 packets holds 25 minutes.
	minImpairRate = 8000
)

// validateImpair checks an interface's impairments, reporting each bad field
// under path f (as "topology.hosts[1].interfaces[0].impair").
func validateImpair(f string, im *labv1.Impairment, v *violations) {
	if im == nil {
		return
	}
	for _, p := range []struct {
		name  string
		value float64
	}{
		{"loss_percent", im.LossPercent},
		{"duplicate_percent", im.DuplicatePercent},
		{"reorder_percent", im.ReorderPercent},
		{"corrupt_percent", im.CorruptPercent},
	} {
		if math.IsNaN(p.value) || p.value < 0 || p.value > 100 {
			v.add(join(f, p.name), "%g is out of range 0-100 (a percentage)", p.value)
		}
	}
	for _, d := range []struct {
		name  string
		value *durationpb.Duration
	}{
		{"delay", im.Delay},
		{"jitter", im.Jitter},
	} {
		if d.value == nil {
			continue
		}
		if err := d.value.CheckValid(); err != nil {
			v.add(join(f, d.name), "not a valid duration: %v", err)
		} else if x := d.value.AsDuration(); x < 0 || x > maxImpairDelay {
			v.add(join(f, d.name), "%v is out of range 0s-%v", x, maxImpairDelay)
		}
	}
	if im.RateBps != 0 && im.RateBps < minImpairRate {
		v.add(join(f, "rate_bps"), "%d bit/s is below the minimum of %d (8kbit); 0 is unlimited", im.RateBps, minImpairRate)
	}
}

// canonImpair is the stored form of an impairment: zero durations unset, and
// nil when it impairs nothing, so that "no impairments" has one form.
func canonImpair(im *labv1.Impairment) *labv1.Impairment {
	if im == nil {
		return nil
	}
	zero := func(d *durationpb.Duration) bool { return d.GetSeconds() == 0 && d.GetNanos() == 0 }
	if zero(im.Delay) {
		im.Delay = nil
	}
	if zero(im.Jitter) {
		im.Jitter = nil
	}
	if proto.Size(im) == 0 {
		return nil
	}
	return im
}

// SetImpairment replaces the impairments of one interface of a host: the
// host's spec is written like any other, and the runtime applies the change
// to the running interface without restarting the host.
func (s *Server) SetImpairment(ctx context.Context, req *labv1.SetImpairmentRequest) (*labv1.SetImpairmentResponse, error) {
	lab, id, ok := parseChild(req.Host, "hosts")
	if !ok {
		return nil, invalid("host", "%q is not a host name (labs/{lab}/hosts/{host})", req.Host)
	}
	if req.Interface == "" {
		return nil, invalid("interface", "required: an interface name such as eth0")
	}
	var v violations
	validateImpair("impair", req.Impair, &v)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.change(lab, func(old, next *labState) (map[string]string, []string, error) {
		h := next.hosts[id]
		if h == nil {
			return nil, nil, notFound("host %q not found in lab %q", id, lab)
		}
		var names []string
		for _, ifc := range h.Interfaces {
			if ifc.Name == req.Interface {
				ifc.Impair = canonImpair(proto.CloneOf(req.Impair))
				return nil, nil, nil
			}
			names = append(names, ifc.Name)
		}
		has := "it has no interfaces"
		if len(names) > 0 {
			has = "it has " + strings.Join(names, ", ")
		}
		return nil, nil, notFound("interface %q not found on host %s (%s)", req.Interface, id, has)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.SetImpairmentResponse{Host: st.hosts[id]}, nil
}
