package metrics

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGossipRefused(t *testing.T) {
	reg := New(Sources{GossipRefused: func(yield func(GossipRefusal) bool) {
		for _, r := range []GossipRefusal{{"bob-laptop", "bad_signature", 4}, {"alice-laptop", "removed", 1}} {
			if !yield(r) {
				return
			}
		}
	}})
	got := only(scrape(t, serve(t, reg)), "labnet_")
	want := map[string]string{
		`labnet_gossip_refused_total{node="bob-laptop",reason="bad_signature"}`: "4",
		`labnet_gossip_refused_total{node="alice-laptop",reason="removed"}`:     "1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestGossipKeys(t *testing.T) {
	reg := New(Sources{GossipKeys: func() GossipKeys { return GossipKeys{Rotations: 2, Installs: 5, Fetches: 1} }})
	got := only(scrape(t, serve(t, reg)), "labnet_gossip_key")
	want := map[string]string{
		`labnet_gossip_key_rotations_total`: "2",
		`labnet_gossip_key_installs_total`:  "5",
		`labnet_gossip_key_fetches_total`:   "1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
