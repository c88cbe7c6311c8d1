package topology

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func TestImpairUnits(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		want         *labv1.Impairment
		written      string // as Marshal writes it back
	}{
		{"loss", "10%", &labv1.Impairment{LossPercent: 10}, "10%"},
		{"loss", "0.1%", &labv1.Impairment{LossPercent: 0.1}, "0.1%"},
		{"loss", "100%", &labv1.Impairment{LossPercent: 100}, "100%"},
		{"loss", "'12.5 %'", &labv1.Impairment{LossPercent: 12.5}, "12.5%"},
		{"duplicate", "0.00001%", &labv1.Impairment{DuplicatePercent: 0.00001}, "1e-05%"},
		{"reorder", "25%", &labv1.Impairment{ReorderPercent: 25}, "25%"},
		{"corrupt", "1%", &labv1.Impairment{CorruptPercent: 1}, "1%"},
		{"delay", "20ms", &labv1.Impairment{Delay: durationpb.New(20 * time.Millisecond)}, "20ms"},
		{"delay", "1.5s", &labv1.Impairment{Delay: durationpb.New(1500 * time.Millisecond)}, "1.5s"},
		{"delay", "250us", &labv1.Impairment{Delay: durationpb.New(250 * time.Microsecond)}, "250µs"},
		{"jitter", "1m", &labv1.Impairment{Jitter: durationpb.New(time.Minute)}, "1m0s"},
		{"rate", "10mbit", &labv1.Impairment{RateBps: 10_000_000}, "10mbit"},
		{"rate", "10Mbit", &labv1.Impairment{RateBps: 10_000_000}, "10mbit"},
		{"rate", "64kbit", &labv1.Impairment{RateBps: 64_000}, "64kbit"},
		{"rate", "1gbit", &labv1.Impairment{RateBps: 1_000_000_000}, "1gbit"},
		{"rate", "2.5gbit", &labv1.Impairment{RateBps: 2_500_000_000}, "2500mbit"},
		{"rate", "9600bit", &labv1.Impairment{RateBps: 9600}, "9600bit"},
		{"rate", "9600", &labv1.Impairment{RateBps: 9600}, "9600bit"},
		{"rate", "1500000", &labv1.Impairment{RateBps: 1_500_000}, "1500kbit"},
		{"rate", "100mbps", &labv1.Impairment{RateBps: 100_000_000}, "100mbit"},
		{"rate", "8000bps", &labv1.Impairment{RateBps: 8000}, "8kbit"},
		{"rate", "1 Gbps", &labv1.Impairment{RateBps: 1_000_000_000}, "1gbit"},
		{"rate", "18446744073709551615", &labv1.Impairment{RateBps: math.MaxUint64}, "18446744073709551615bit"},
	} {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			in := "name: default\nhosts:\n  - name: h\n    interfaces:\n      - network: lan1\n        impair:\n          " + tc.field + ": " + tc.value + "\n"
			topo, err := Parse([]byte(in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := topo.Hosts[0].Interfaces[0].Impair
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("impairment (-want +got):\n%s", diff)
			}
			out, err := Marshal(topo)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			want := "name: default\nhosts:\n  - name: h\n    interfaces:\n      - network: lan1\n        impair:\n          " + tc.field + ": " + tc.written + "\n"
			if diff := cmp.Diff(want, string(out)); diff != "" {
				t.Errorf("Marshal (-want +got):\n%s", diff)
			}
			roundTrip(t, topo)
		})
	}
}

func TestMarshalImpairment(t *testing.T) {
	in := &labv1.Topology{Lab: "demo", Hosts: []*labv1.Host{{
		Name: "h1",
		Interfaces: []*labv1.Interface{{Network: "lan1", Impair: &labv1.Impairment{
			LossPercent: 10, Delay: durationpb.New(20 * time.Millisecond), Jitter: durationpb.New(5 * time.Millisecond),
			DuplicatePercent: 2, ReorderPercent: 5, CorruptPercent: 1, RateBps: 10_000_000,
		}}},
	}}}
	want := `name: demo
hosts:
  - name: h1
    interfaces:
      - network: lan1
        impair:
          loss: 10%
          delay: 20ms
          jitter: 5ms
          duplicate: 2%
          reorder: 5%
          corrupt: 1%
          rate: 10mbit
`
	got, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Marshal (-want +got):\n%s", diff)
	}
	roundTrip(t, in)

	// Values no file can hold are refused rather than written so that they
	// would not read back.
	for _, bad := range []*labv1.Impairment{
		{LossPercent: math.NaN()},
		{CorruptPercent: 101},
		{ReorderPercent: -1},
		{Delay: durationpb.New(-time.Second)},
		{Jitter: &durationpb.Duration{Seconds: 1, Nanos: -1}},
	} {
		in.Hosts[0].Interfaces[0].Impair = bad
		if out, err := Marshal(in); err == nil {
			t.Errorf("Marshal(%v) succeeded:\n%s", bad, out)
		}
	}
}
