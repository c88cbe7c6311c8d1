package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// bigLab is 10 networks 10.0.N.0/24 with 100 hosts each (addresses
// assigned) and one router r0 on all of them.
func bigLab() *labv1.Topology {
	t := &labv1.Topology{Lab: "big"}
	r := &labv1.Host{Name: "r0", Forwarding: true}
	for n := range 10 {
		net := fmt.Sprintf("net%d", n)
		t.Networks = append(t.Networks, &labv1.Network{Name: net, Ipv4: fmt.Sprintf("10.0.%d.0/24", n)})
		r.Interfaces = append(r.Interfaces, &labv1.Interface{Network: net, Ipv4: fmt.Sprintf("10.0.%d.1", n)})
		for h := range 100 {
			t.Hosts = append(t.Hosts, &labv1.Host{
				Name:       fmt.Sprintf("h%d-%d", n, h),
				Interfaces: []*labv1.Interface{{Network: net}},
				Routes:     []*labv1.Route{{To: "default", Via: fmt.Sprintf("10.0.%d.1", n)}},
			})
		}
	}
	t.Hosts = append(t.Hosts, r)
	return t
}

// BenchmarkApply1000Hosts applies bigLab in one Apply on a fresh store:
// "api" is the API and store path alone; "running" also waits until the
// runtime runs every host.
func BenchmarkApply1000Hosts(b *testing.B) {
	topo := bigLab()
	for _, run := range []bool{false, true} {
		name := "api"
		if run {
			name = "running"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				it := &iteration{B: b}
				e := newEnv(it, run)
				b.StartTimer()
				resp, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo})
				if err != nil {
					b.Fatalf("Apply: %v", err)
				}
				if len(resp.Changes) != 1+10+1001 {
					b.Fatalf("%d changes, want 1012", len(resp.Changes))
				}
				if run {
					deadline := time.Now().Add(time.Minute)
					for e.rt.Count() < 1001 {
						if time.Now().After(deadline) {
							b.Fatalf("%d hosts running after a minute, want 1001", e.rt.Count())
						}
						time.Sleep(100 * time.Microsecond)
					}
				}
				b.StopTimer()
				it.close()
				b.StartTimer()
			}
		})
	}
}

// iteration runs newEnv's cleanups at the end of one benchmark iteration
// rather than of the whole benchmark.
type iteration struct {
	*testing.B
	cleanups []func()
}

func (it *iteration) Cleanup(f func()) { it.cleanups = append(it.cleanups, f) }

func (it *iteration) close() {
	for i := len(it.cleanups) - 1; i >= 0; i-- {
		it.cleanups[i]()
	}
}
