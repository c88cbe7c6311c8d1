package refusal

import (
	"fmt"
	"testing"
	"time"
)

// TestCounter: refusals count by node and reason; each pair is logged at
// most once per Every, the next log saying how many came since; past
// MaxKeys pairs, made-up names count under "other" and the pairs known
// keep counting apart.
func TestCounter(t *testing.T) {
	c := Counter{Every: time.Minute}
	t0 := time.Unix(1000, 0)
	if log, since := c.AddAt("bob", "bad_signature", t0); !log || since != 1 {
		t.Errorf("first refusal: log %v since %d; want true 1", log, since)
	}
	for i := range 3 {
		if log, _ := c.AddAt("bob", "bad_signature", t0.Add(time.Duration(i+1)*time.Second)); log {
			t.Errorf("refusal %d within a minute logged", i+2)
		}
	}
	if log, since := c.AddAt("bob", "bad_signature", t0.Add(time.Minute)); !log || since != 4 {
		t.Errorf("a minute later: log %v since %d; want true 4", log, since)
	}
	if log, _ := c.AddAt("bob", "removed", t0); !log {
		t.Error("another reason for the same node was not logged")
	}
	for i := range MaxKeys {
		c.Add(fmt.Sprintf("made-up-%d", i), "unknown_node")
	}
	c.Add("bob", "bad_signature")
	if got := c.Count("bob", "bad_signature"); got != 6 {
		t.Errorf("bob's bad_signature: %d, want 6", got)
	}
	if got := c.Count("other", "unknown_node"); got != 2 {
		t.Errorf("other: %d, want 2 (the names past %d pairs)", got, MaxKeys)
	}
	pairs := 0
	c.All(func(string, string, uint64) bool { pairs++; return true })
	if pairs != MaxKeys+1 {
		t.Errorf("%d pairs, want %d", pairs, MaxKeys+1)
	}
	var zero Counter
	if !zero.Add("x", "y") || zero.Add("x", "y") {
		t.Error("the zero Counter: want the first logged and the second, at once, not")
	}
}
