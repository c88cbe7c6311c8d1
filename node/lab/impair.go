package lab

import (
	"math"
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

// ValidateImpairment checks an interface's impairments, reporting each bad
// field under path f (as "topology.hosts[1].interfaces[0].impair").
func ValidateImpairment(f string, im *labv1.Impairment, v *Violations) {
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
			v.Add(Field(f, p.name), "%g is out of range 0-100 (a percentage)", p.value)
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
			v.Add(Field(f, d.name), "not a valid duration: %v", err)
		} else if x := d.value.AsDuration(); x < 0 || x > maxImpairDelay {
			v.Add(Field(f, d.name), "%v is out of range 0s-%v", x, maxImpairDelay)
		}
	}
	if im.RateBps != 0 && im.RateBps < minImpairRate {
		v.Add(Field(f, "rate_bps"), "%d bit/s is below the minimum of %d (8kbit); 0 is unlimited", im.RateBps, minImpairRate)
	}
}

// CanonImpairment is the stored form of an impairment: zero durations
// unset, and nil when it impairs nothing, so that "no impairments" has one
// form. It changes im.
func CanonImpairment(im *labv1.Impairment) *labv1.Impairment {
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
