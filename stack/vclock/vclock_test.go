package vclock

import (
	"testing"
	"time"
)

func TestTimersFireInOrder(t *testing.T) {
	c := New()
	var got []string
	var at []time.Duration
	rec := func(s string) func() {
		return func() { got = append(got, s); at = append(at, c.Now().Sub(Epoch)) }
	}
	c.AfterFunc(3*time.Second, rec("c"))
	a := c.AfterFunc(time.Second, rec("a"))
	c.AfterFunc(2*time.Second, rec("b"))
	stopped := c.AfterFunc(2*time.Second, rec("never"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once")
	}
	c.Advance(1500 * time.Millisecond)
	if len(got) != 1 || got[0] != "a" || at[0] != time.Second {
		t.Fatalf("after 1.5s: %v at %v", got, at)
	}
	if a.Reset(time.Second) {
		t.Error("Reset of a fired timer reports pending")
	}
	// A timer scheduled from inside a callback fires in the same Advance
	// when due.
	c.AfterFunc(500*time.Millisecond, func() { c.AfterFunc(100*time.Millisecond, rec("nested")) })
	c.Advance(10 * time.Second)
	want := []string{"a", "b", "nested", "a", "c"} // b 2.0s, nested 2.1s, a 2.5s, c 3s
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if c.Now().Sub(Epoch) != 11500*time.Millisecond {
		t.Errorf("now = %v", c.Now().Sub(Epoch))
	}
	if c.Pending() != 0 {
		t.Errorf("%d timers pending", c.Pending())
	}
}
