package topology

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"gopkg.in/yaml.v3"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// fileImpair is an interface's impair: mapping, in human units. Its value
// types parse and write those units; their errors are the messages the
// shape check reports.
type fileImpair struct {
	Loss      percent  `yaml:"loss,omitempty"`
	Delay     duration `yaml:"delay,omitempty"`
	Jitter    duration `yaml:"jitter,omitempty"`
	Duplicate percent  `yaml:"duplicate,omitempty"`
	Reorder   percent  `yaml:"reorder,omitempty"`
	Corrupt   percent  `yaml:"corrupt,omitempty"`
	Rate      bitrate  `yaml:"rate,omitempty"`
}

func (im fileImpair) toProto() *labv1.Impairment {
	if im == (fileImpair{}) {
		return nil
	}
	p := &labv1.Impairment{
		LossPercent:      float64(im.Loss),
		DuplicatePercent: float64(im.Duplicate),
		ReorderPercent:   float64(im.Reorder),
		CorruptPercent:   float64(im.Corrupt),
		RateBps:          uint64(im.Rate),
	}
	if im.Delay != 0 {
		p.Delay = durationpb.New(time.Duration(im.Delay))
	}
	if im.Jitter != 0 {
		p.Jitter = durationpb.New(time.Duration(im.Jitter))
	}
	return p
}

func impairFromProto(p *labv1.Impairment) fileImpair {
	return fileImpair{
		Loss:      percent(p.GetLossPercent()),
		Delay:     durationOf(p.GetDelay()),
		Jitter:    durationOf(p.GetJitter()),
		Duplicate: percent(p.GetDuplicatePercent()),
		Reorder:   percent(p.GetReorderPercent()),
		Corrupt:   percent(p.GetCorruptPercent()),
		Rate:      bitrate(p.GetRateBps()),
	}
}

// durationOf is d as a duration; an invalid one becomes -1, which Marshal
// refuses to write.
func durationOf(d *durationpb.Duration) duration {
	if d == nil {
		return 0
	}
	if d.CheckValid() != nil {
		return -1
	}
	return duration(d.AsDuration())
}

// scalar decodes a scalar node as a string, or explains what is wanted.
func scalar(n *yaml.Node, want string) (string, error) {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return "", errors.New("must be " + want)
	}
	return strings.TrimSpace(s), nil
}

// percent is a percentage, written "10%" or "0.5%".
type percent float64

const percentWant = "a percentage such as 10%"

// ParsePercent parses a percentage as topology files and labctl write it:
// "10%", "0.5%", from 0% to 100%.
func ParsePercent(s string) (float64, error) {
	p, err := parsePercent(strings.TrimSpace(s))
	return float64(p), err
}

// FormatPercent writes a percentage as ParsePercent reads it: "10%".
func FormatPercent(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) + "%" }

func parsePercent(s string) (percent, error) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, fmt.Errorf("%q is not %s (the %% sign is required)", s, percentWant)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not %s", s, percentWant)
	}
	if v < 0 || v > 100 {
		return 0, fmt.Errorf("%q is out of range 0%%-100%%", s)
	}
	return percent(v + 0), nil // +0: no negative zero
}

func (p *percent) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, percentWant)
	if err != nil {
		return err
	}
	*p, err = parsePercent(s)
	return err
}

func (p percent) MarshalYAML() (any, error) {
	s := FormatPercent(float64(p))
	if _, err := parsePercent(s); err != nil {
		return nil, err
	}
	return s, nil
}

// duration is a non-negative time.Duration, written as Go writes them:
// "20ms", "1.5s", "1m30s".
type duration time.Duration

const durationWant = "a duration such as 20ms"

// ParseDuration parses a non-negative duration as time.ParseDuration does:
// "20ms", "1.5s".
func ParseDuration(s string) (time.Duration, error) {
	d, err := parseDuration(strings.TrimSpace(s))
	return time.Duration(d), err
}

func parseDuration(s string) (duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("%q is not %s (a unit is required: ns, us, ms, s, m, h)", s, durationWant)
		}
		return 0, fmt.Errorf("%q is not %s", s, durationWant)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return duration(d), nil
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, durationWant)
	if err != nil {
		return err
	}
	*d, err = parseDuration(s)
	return err
}

func (d duration) MarshalYAML() (any, error) {
	if d < 0 {
		return nil, fmt.Errorf("duration %v is negative", time.Duration(d))
	}
	return time.Duration(d).String(), nil
}

// bitrate is a rate in bits per second, written with a unit: "10mbit",
// "1.5gbit", "64kbit", "9600bit", or a bare number of bits per second.
type bitrate uint64

const bitrateWant = "a rate such as 10mbit"

// rateUnits are the units of a bitrate, in bits per second. "bps" is bits
// per second, as networks usually mean it (tc reads it as bytes).
var rateUnits = map[string]int64{
	"": 1, "bit": 1, "bps": 1,
	"kbit": 1e3, "kbps": 1e3,
	"mbit": 1e6, "mbps": 1e6,
	"gbit": 1e9, "gbps": 1e9,
	"tbit": 1e12, "tbps": 1e12,
}

var rateSyntax = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$`)

// ParseRate parses a rate in bits per second: "10mbit", "1.5gbit",
// "64kbit", "9600bit" or "9600" (see rateUnits).
func ParseRate(s string) (uint64, error) {
	r, err := parseBitrate(strings.TrimSpace(s))
	return uint64(r), err
}

// FormatRate writes a rate in bits per second as ParseRate reads it, in the
// largest unit that keeps it whole: "10mbit", "1500kbit", "9600bit".
func FormatRate(bps uint64) string {
	for _, u := range []struct {
		name string
		mult uint64
	}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bps != 0 && bps%u.mult == 0 {
			return strconv.FormatUint(bps/u.mult, 10) + u.name
		}
	}
	return strconv.FormatUint(bps, 10) + "bit"
}

func parseBitrate(s string) (bitrate, error) {
	m := rateSyntax.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not %s (units: bit, kbit, mbit, gbit, tbit)", s, bitrateWant)
	}
	mult, ok := rateUnits[m[2]]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (units: bit, kbit, mbit, gbit, tbit)", s, m[2])
	}
	r, _ := new(big.Rat).SetString(m[1])
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of bits per second", s)
	}
	if !r.Num().IsUint64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return bitrate(r.Num().Uint64()), nil
}

func (r *bitrate) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, bitrateWant)
	if err != nil {
		return err
	}
	*r, err = parseBitrate(s)
	return err
}

// MarshalYAML writes the rate in the largest unit that keeps it whole.
func (r bitrate) MarshalYAML() (any, error) { return FormatRate(uint64(r)), nil }
