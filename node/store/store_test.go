package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is the injected Options.Now: it moves only when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// t0 is a wall time with whole milliseconds, so stamps round-trip through
// Stamp.Wall exactly.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stampAt is the stamp time the clock produces for wall time w with logical
// counter 0.
func stampAt(w time.Time) uint64 { return uint64(w.UnixMilli()) << 16 }

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "state.db") }

// openStore opens path and closes the store when the test ends.
func openStore(t testing.TB, path, origin string, clock *fakeClock) *Store {
	t.Helper()
	s, err := Open(path, Options{Origin: origin, Now: clock.Now})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen closes s and opens its file again with the same origin.
func reopen(t testing.TB, s *Store, path string, clock *fakeClock) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, path, s.origin, clock)
}

func mustUpdate(t testing.TB, s *Store, fn func(tx *Tx) error) []string {
	t.Helper()
	changed, err := s.Update(fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return changed
}

// put commits key/value pairs (alternating) in one Update.
func put(t testing.TB, s *Store, kv ...string) []string {
	t.Helper()
	return mustUpdate(t, s, func(tx *Tx) error {
		for i := 0; i < len(kv); i += 2 {
			tx.Put(kv[i], []byte(kv[i+1]))
		}
		return nil
	})
}

func del(t testing.TB, s *Store, keys ...string) []string {
	t.Helper()
	return mustUpdate(t, s, func(tx *Tx) error {
		for _, k := range keys {
			tx.Delete(k)
		}
		return nil
	})
}

func mustMerge(t testing.TB, s *Store, in ...Record) []string {
	t.Helper()
	changed, err := s.Merge(in)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	return changed
}

// values maps the live records of List to their values as strings.
func values(recs []Record) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		m[r.Key] = string(r.Value)
	}
	return m
}

func keysOf(recs []Record) []string {
	var ks []string
	for _, r := range recs {
		ks = append(ks, r.Key)
	}
	return ks
}

func TestOpenEmptyOrigin(t *testing.T) {
	if _, err := Open(dbPath(t), Options{}); err == nil {
		t.Fatal("Open with empty origin: got nil error")
	}
}

func TestCloseIdempotentAndWritesFailAfter(t *testing.T) {
	s := openStore(t, dbPath(t), "n1", newFakeClock())
	put(t, s, "a", "1")
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := s.Update(func(tx *Tx) error { tx.Put("b", nil); return nil }); err == nil {
		t.Error("Update after Close: got nil error")
	}
	if _, err := s.Merge([]Record{{Key: "b", Value: []byte("x"), Stamp: Stamp{Time: 1, Origin: "n2"}}}); err == nil {
		t.Error("Merge after Close: got nil error")
	}
	if _, err := s.CollectTombstones(t0, 0); err == nil {
		t.Error("CollectTombstones after Close: got nil error")
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	clock := newFakeClock()
	path := dbPath(t)
	s := openStore(t, path, "n1", clock)
	put(t, s, "labs/a", "1", "labs/b", "2", "labs/gone", "x")
	del(t, s, "labs/gone")
	before, rev := s.All(), s.Revision()

	errBoom := errors.New("boom")
	clock.Add(time.Second)
	changed, err := s.Update(func(tx *Tx) error {
		tx.Put("labs/a", []byte("changed"))
		tx.Put("labs/c", []byte("new"))
		tx.Put("labs/gone", []byte("resurrected"))
		tx.Delete("labs/b")
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update error = %v, want %v", err, errBoom)
	}
	if changed != nil {
		t.Errorf("Update changed = %q, want nil", changed)
	}
	if got := s.Revision(); got != rev {
		t.Errorf("Revision = %d, want %d (unchanged)", got, rev)
	}
	if diff := cmp.Diff(before, s.All()); diff != "" {
		t.Errorf("All() after failed Update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"labs/a": "1", "labs/b": "2"}, values(s.List("labs/"))); diff != "" {
		t.Errorf("List after failed Update (-want +got):\n%s", diff)
	}
	for _, k := range []string{"labs/c", "labs/gone"} {
		if r, ok := s.Get(k); ok {
			t.Errorf("Get(%q) = %+v, want absent", k, r)
		}
	}

	s = reopen(t, s, path, clock)
	if diff := cmp.Diff(before, s.All()); diff != "" {
		t.Errorf("All() after reopen (-want +got):\n%s", diff)
	}
}

func TestUpdatePutsAndDeletesTogether(t *testing.T) {
	clock := newFakeClock()
	path := dbPath(t)
	s := openStore(t, path, "n1", clock)
	put(t, s, "hosts/h1", "a", "hosts/h2", "b", "hosts/h3", "c")
	rev := s.Revision()

	changed := mustUpdate(t, s, func(tx *Tx) error {
		tx.Put("hosts/h1", []byte("A"))
		tx.Delete("hosts/h2")
		tx.Put("hosts/h4", []byte("d"))
		tx.Delete("hosts/h3")
		tx.Put("hosts/h3", []byte("C")) // last write in the tx wins
		return nil
	})
	if diff := cmp.Diff([]string{"hosts/h1", "hosts/h2", "hosts/h4", "hosts/h3"}, changed); diff != "" {
		t.Errorf("changed keys (-want +got):\n%s", diff)
	}
	if got, want := s.Revision(), rev+1; got != want {
		t.Errorf("Revision = %d, want %d (one per Update)", got, want)
	}
	want := map[string]string{"hosts/h1": "A", "hosts/h3": "C", "hosts/h4": "d"}
	if diff := cmp.Diff(want, values(s.List("hosts/"))); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if _, ok := s.Get("hosts/h2"); ok {
		t.Error("Get(hosts/h2) found a deleted key")
	}

	// All writes of one Update share the origin and get distinct stamps.
	seen := map[uint64]string{}
	for _, r := range s.All() {
		if r.Stamp.Origin != "n1" {
			t.Errorf("%s: origin %q, want n1", r.Key, r.Stamp.Origin)
		}
		if k, dup := seen[r.Stamp.Time]; dup {
			t.Errorf("%s and %s share stamp time %d", k, r.Key, r.Stamp.Time)
		}
		seen[r.Stamp.Time] = r.Key
	}

	s = reopen(t, s, path, clock)
	if diff := cmp.Diff(want, values(s.List("hosts/"))); diff != "" {
		t.Errorf("List after reopen (-want +got):\n%s", diff)
	}
}

func TestTxSeesOwnWrites(t *testing.T) {
	s := openStore(t, dbPath(t), "n1", newFakeClock())
	put(t, s, "a/1", "one", "a/2", "two", "a/3", "three", "b/1", "other")

	mustUpdate(t, s, func(tx *Tx) error {
		tx.Put("a/2", []byte("TWO"))
		tx.Delete("a/3")
		tx.Put("a/0", []byte("zero"))
		tx.Put("a/4", nil)
		tx.Put("b/2", []byte("other2"))

		checks := []struct {
			key    string
			want   string
			wantOK bool
		}{
			{"a/0", "zero", true},
			{"a/1", "one", true},
			{"a/2", "TWO", true},
			{"a/3", "", false},
			{"a/4", "", true},
			{"a/5", "", false},
		}
		for _, c := range checks {
			v, ok := tx.Get(c.key)
			if ok != c.wantOK || string(v) != c.want {
				t.Errorf("tx.Get(%q) = %q, %v; want %q, %v", c.key, v, ok, c.want, c.wantOK)
			}
		}
		got := tx.List("a/")
		want := map[string]string{"a/0": "zero", "a/1": "one", "a/2": "TWO", "a/4": ""}
		if diff := cmp.Diff(want, values(got)); diff != "" {
			t.Errorf("tx.List(a/) (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"a/0", "a/1", "a/2", "a/4"}, keysOf(got)); diff != "" {
			t.Errorf("tx.List(a/) order (-want +got):\n%s", diff)
		}

		// The store outside the transaction does not see it yet.
		if r, ok := s.Get("a/0"); ok {
			t.Errorf("store Get(a/0) during Update = %+v, want absent", r)
		}
		if r, _ := s.Get("a/2"); string(r.Value) != "two" {
			t.Errorf("store Get(a/2) during Update = %q, want two", r.Value)
		}
		return nil
	})
}

func TestUpdateNoChange(t *testing.T) {
	s := openStore(t, dbPath(t), "n1", newFakeClock())
	put(t, s, "k1", "v1", "k2", "")
	del(t, s, "dead")      // never existed
	put(t, s, "tomb", "x") //
	del(t, s, "tomb")      // now a tombstone
	before, rev := s.All(), s.Revision()

	tests := []struct {
		name string
		fn   func(tx *Tx) error
	}{
		{"same values", func(tx *Tx) error {
			tx.Put("k1", []byte("v1"))
			tx.Put("k2", nil) // stored as empty
			return nil
		}},
		{"delete missing key", func(tx *Tx) error { tx.Delete("missing"); return nil }},
		{"delete tombstone again", func(tx *Tx) error { tx.Delete("tomb"); return nil }},
		{"put then restore", func(tx *Tx) error {
			tx.Put("k1", []byte("other"))
			tx.Put("k1", []byte("v1"))
			return nil
		}},
		{"put missing then delete", func(tx *Tx) error {
			tx.Put("fresh", []byte("x"))
			tx.Delete("fresh")
			return nil
		}},
		{"no writes", func(tx *Tx) error { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed := mustUpdate(t, s, tc.fn)
			if len(changed) != 0 {
				t.Errorf("changed = %q, want none", changed)
			}
			if got := s.Revision(); got != rev {
				t.Errorf("Revision = %d, want %d", got, rev)
			}
			if diff := cmp.Diff(before, s.All()); diff != "" {
				t.Errorf("All() (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := s.Get("dead"); ok {
		t.Error("deleting a missing key created a live record")
	}
	for _, r := range s.All() {
		if r.Key == "dead" {
			t.Errorf("deleting a missing key left a tombstone: %+v", r)
		}
	}
}

func TestReopenKeepsRecordsAndTombstones(t *testing.T) {
	clock := newFakeClock()
	path := dbPath(t)
	s := openStore(t, path, "n1", clock)
	put(t, s, "labs/demo", "lab", "labs/demo/hosts/h1", "host1", "labs/demo/hosts/h2", "host2", "empty", "")
	clock.Add(time.Minute)
	del(t, s, "labs/demo/hosts/h2")
	mustMerge(t, s,
		Record{Key: "labs/remote", Value: []byte("from n2"), Stamp: Stamp{Time: stampAt(t0.Add(time.Hour)) + 7, Origin: "n2"}},
		Record{Key: "labs/remote-gone", Deleted: true, Stamp: Stamp{Time: stampAt(t0) + 3, Origin: "n3"}},
	)
	before := s.All()
	if len(before) != 6 {
		t.Fatalf("All() has %d records before reopen, want 6: %+v", len(before), before)
	}

	s = reopen(t, s, path, clock)
	if diff := cmp.Diff(before, s.All()); diff != "" {
		t.Errorf("All() after reopen (-want +got):\n%s", diff)
	}
	if r, ok := s.Get("empty"); !ok || r.Value == nil || len(r.Value) != 0 {
		t.Errorf("Get(empty) = %+v, %v; want a live record with a non-nil empty value", r, ok)
	}
	for _, k := range []string{"labs/demo/hosts/h2", "labs/remote-gone"} {
		if _, ok := s.Get(k); ok {
			t.Errorf("Get(%q) after reopen found a deleted key", k)
		}
	}
}

// helperEnv names the file TestHelperProcess writes to; it is set only in the
// child started by TestKillNineKeepsAcknowledged.
const helperEnv = "LABNET_STORE_HELPER_DB"

// crashKey and crashValue are what the helper process writes in Update i.
func crashKey(i int) string   { return fmt.Sprintf("crash/%07d", i) }
func crashValue(i int) string { return "value " + strconv.Itoa(i) }

// crashDeletes reports which key (if any) Update i deletes: every tenth
// Update also deletes the key written five Updates earlier, so the run leaves
// tombstones too.
func crashDeletes(i int) (int, bool) { return i - 5, i%10 == 9 }

// TestHelperProcess is not a test: it is the child of
// TestKillNineKeepsAcknowledged. It commits Updates until killed and
// acknowledges each one on stdout once Update has returned.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestKillNineKeepsAcknowledged")
	}
	s, err := Open(path, Options{Origin: "child"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	const n = 1_000_000 // far more than the parent waits for
	for i := range n {
		_, err := s.Update(func(tx *Tx) error {
			tx.Put(crashKey(i), []byte(crashValue(i)))
			if j, ok := crashDeletes(i); ok {
				tx.Delete(crashKey(j))
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// os.Stdout is unbuffered: once Write returns, the line is in the
		// pipe and survives the process.
		fmt.Fprintf(os.Stdout, "committed %d\n", i)
	}
	s.Close()
	os.Exit(0)
}

func TestKillNineKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	t.Parallel()
	path := dbPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	const killAfter = 200 // acknowledged lines before the kill
	last := -1
	parse := func(line string) {
		t.Helper()
		s, ok := strings.CutPrefix(line, "committed ")
		if !ok {
			t.Errorf("unexpected output from child: %q", line)
			return
		}
		i, err := strconv.Atoi(s)
		if err != nil || i != last+1 {
			t.Errorf("child said %q after committed %d", line, last)
			return
		}
		last = i
	}
	sc := bufio.NewScanner(stdout)
	for last+1 < killAfter && sc.Scan() {
		parse(sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	// Lines the child wrote before it died are acknowledged too.
	for sc.Scan() {
		parse(sc.Text())
	}
	werr := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL; stderr:\n%s", werr, stderr.String())
	}
	if last < killAfter-1 {
		t.Fatalf("child acknowledged only %d Updates before the kill; stderr:\n%s", last+1, stderr.String())
	}
	t.Logf("child acknowledged %d Updates before SIGKILL", last+1)

	s := openStore(t, path, "parent", newFakeClock())
	byKey := map[string]Record{}
	for _, r := range s.All() {
		byKey[r.Key] = r
	}
	for i := 0; i <= last; i++ {
		k := crashKey(i)
		r, ok := byKey[k]
		if !ok {
			t.Errorf("%s: acknowledged but missing after kill -9", k)
			continue
		}
		switch deleter := i + 5; {
		case i%10 == 4 && deleter <= last:
			if !r.Deleted {
				t.Errorf("%s: deleted by acknowledged Update %d but live: %+v", k, deleter, r)
			}
		case i%10 == 4 && r.Deleted:
			// Deleted by an Update that was not acknowledged, which
			// may or may not have committed.
		default:
			if r.Deleted || string(r.Value) != crashValue(i) {
				t.Errorf("%s = %+v, want live %q", k, r, crashValue(i))
			}
		}
	}
	// At most one Update (committed, killed before printing) is unacknowledged.
	for k := range byKey {
		var i int
		if _, err := fmt.Sscanf(k, "crash/%d", &i); err != nil || i > last+1 {
			t.Errorf("unexpected record %q after kill (last acknowledged %d)", k, last)
		}
	}
	// The reopened store is writable.
	put(t, s, "after", "crash")
}

func TestOpenLockedFile(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	path := dbPath(t)
	first := openStore(t, path, "n1", clock)
	put(t, first, "k", "v")

	start := time.Now()
	second, err := Open(path, Options{Origin: "n2", Now: clock.Now})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !strings.Contains(err.Error(), "locked") {
		t.Errorf("second Open error = %q, want it to mention \"locked\"", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("second Open took %v to fail, want a few seconds", elapsed)
	}

	// The holder is unaffected, and once it closes the file opens.
	put(t, first, "k2", "v2")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, path, "n2", clock)
	if diff := cmp.Diff(map[string]string{"k": "v", "k2": "v2"}, values(s.List(""))); diff != "" {
		t.Errorf("List after the holder closed (-want +got):\n%s", diff)
	}
}

func TestHLCNext(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		walls []time.Duration // successive Now readings, relative to t0
	}{
		{"forward", []time.Duration{0, ms, 2 * ms, time.Second}},
		{"standing still", []time.Duration{0, 0, 0, 0, 0}},
		{"backwards", []time.Duration{time.Hour, time.Minute, 0, -time.Hour}},
		{"backwards then past", []time.Duration{time.Second, 0, 0, 2 * time.Second, 2 * time.Second}},
		{"sub-millisecond steps", []time.Duration{0, time.Microsecond, 999 * time.Microsecond, ms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			c := hlc{now: clock.Now}
			var prev uint64
			for i, d := range tc.walls {
				clock.Set(t0.Add(d))
				got := c.next()
				if i > 0 && got <= prev {
					t.Errorf("next() #%d at %v = %d, not after %d", i, d, got, prev)
				}
				// The physical part never lags the wall clock.
				if wall := stampAt(clock.Now()); got < wall {
					t.Errorf("next() #%d = %d behind wall %d", i, got, wall)
				}
				prev = got
			}
		})
	}
}

func TestHLCFollowsWallClock(t *testing.T) {
	clock := newFakeClock()
	c := hlc{now: clock.Now}
	c.next()
	c.next() // logical counter 1 at t0
	clock.Add(5 * time.Second)
	if got, want := c.next(), stampAt(t0.Add(5*time.Second)); got != want {
		t.Errorf("next() after the wall moved on = %d, want %d (logical counter reset)", got, want)
	}
	if got := (Stamp{Time: c.last}).Wall(); !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("Wall() = %v, want %v", got, t0.Add(5*time.Second))
	}
}

func TestHLCObserve(t *testing.T) {
	clock := newFakeClock()
	c := hlc{now: clock.Now}
	far := stampAt(t0.Add(time.Hour)) + 42
	c.observe(far)
	c.observe(far - 100) // older observations do not move it back
	if got := c.next(); got <= far {
		t.Errorf("next() after observe(%d) = %d, want greater", far, got)
	}
}

func TestUpdateStampsIncrease(t *testing.T) {
	clock := newFakeClock()
	s := openStore(t, dbPath(t), "n1", clock)
	steps := []time.Duration{0, 0, -time.Hour, time.Millisecond, -time.Minute, 0, 2 * time.Hour}
	var prev Stamp
	for i, d := range steps {
		clock.Add(d)
		key := fmt.Sprintf("k%d", i)
		put(t, s, key, "v")
		r, _ := s.Get(key)
		if i > 0 && !r.Stamp.After(prev) {
			t.Errorf("Update %d (clock %+v) stamped %+v, not after %+v", i, d, r.Stamp, prev)
		}
		prev = r.Stamp
	}
}

func TestStampsAfterReopen(t *testing.T) {
	clock := newFakeClock()
	path := dbPath(t)
	s := openStore(t, path, "n1", clock)
	for range 5 {
		put(t, s, "k", fmt.Sprint(clock.Now().UnixNano()))
		clock.Add(time.Hour)
	}
	mustMerge(t, s, Record{Key: "peer", Value: []byte("x"), Stamp: Stamp{Time: stampAt(t0.Add(48*time.Hour)) + 9, Origin: "n0"}})
	del(t, s, "peer") // a tombstone stamped after the far-future merge
	var maxLoaded uint64
	for _, r := range s.All() {
		maxLoaded = max(maxLoaded, r.Stamp.Time)
	}

	// The node restarts with its wall clock far behind everything on disk.
	clock.Set(t0.Add(-24 * time.Hour))
	s = reopen(t, s, path, clock)
	for i := range 3 {
		key := fmt.Sprintf("new%d", i)
		put(t, s, key, "v")
		r, _ := s.Get(key)
		if r.Stamp.Time <= maxLoaded {
			t.Errorf("%s stamped %d after reopen, not after loaded %d", key, r.Stamp.Time, maxLoaded)
		}
		maxLoaded = r.Stamp.Time
	}
}

func TestStampAfter(t *testing.T) {
	tests := []struct {
		a, b Stamp
		want bool
	}{
		{Stamp{2, "a"}, Stamp{1, "z"}, true}, // time dominates origin
		{Stamp{1, "z"}, Stamp{2, "a"}, false},
		{Stamp{5, "n2"}, Stamp{5, "n1"}, true}, // tie broken by origin
		{Stamp{5, "n1"}, Stamp{5, "n2"}, false},
		{Stamp{5, "n1"}, Stamp{5, "n1"}, false}, // equal: neither wins
		{Stamp{5, "n1"}, Stamp{5, ""}, true},
		{Stamp{0, ""}, Stamp{0, ""}, false},
	}
	for _, tc := range tests {
		if got := tc.a.After(tc.b); got != tc.want {
			t.Errorf("%+v.After(%+v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMerge(t *testing.T) {
	base := stampAt(t0)
	local := Record{Key: "k", Value: []byte("local"), Stamp: Stamp{Time: base, Origin: "n2"}}
	rec := func(v string, time uint64, origin string) Record {
		return Record{Key: "k", Value: []byte(v), Stamp: Stamp{Time: time, Origin: origin}}
	}
	tomb := func(time uint64, origin string) Record {
		return Record{Key: "k", Deleted: true, Stamp: Stamp{Time: time, Origin: origin}}
	}
	tests := []struct {
		name        string
		in          []Record
		wantChanged []string
		want        Record // what All() holds for "k" afterwards
	}{
		{"newer time wins", []Record{rec("new", base+1, "n1")}, []string{"k"}, rec("new", base+1, "n1")},
		{"older time ignored", []Record{rec("old", base-1, "n9")}, nil, local},
		{"tie: larger origin wins", []Record{rec("n3", base, "n3")}, []string{"k"}, rec("n3", base, "n3")},
		{"tie: smaller origin ignored", []Record{rec("n1", base, "n1")}, nil, local},
		{"same stamp ignored", []Record{rec("other", base, "n2")}, nil, local},
		{"newer tombstone deletes", []Record{tomb(base+1, "n1")}, []string{"k"}, tomb(base+1, "n1")},
		{"older tombstone ignored", []Record{tomb(base-1, "n3")}, nil, local},
		{"newest of a batch wins", []Record{rec("a", base+3, "n1"), rec("b", base+1, "n1"), rec("c", base+2, "n1")}, []string{"k"}, rec("a", base+3, "n1")},
		{"newest of a batch wins, ascending", []Record{rec("a", base+1, "n1"), rec("b", base+2, "n1")}, []string{"k"}, rec("b", base+2, "n1")},
		{"batch of stale records", []Record{rec("a", base-2, "n1"), tomb(base-1, "n1")}, nil, local},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			path := dbPath(t)
			s := openStore(t, path, "n0", clock)
			mustMerge(t, s, local)
			rev := s.Revision()

			changed := mustMerge(t, s, tc.in...)
			if diff := cmp.Diff(tc.wantChanged, changed); diff != "" {
				t.Errorf("changed keys (-want +got):\n%s", diff)
			}
			wantRev := rev
			if len(tc.wantChanged) > 0 {
				wantRev++
			}
			if got := s.Revision(); got != wantRev {
				t.Errorf("Revision = %d, want %d", got, wantRev)
			}
			check := func(s *Store) {
				t.Helper()
				if diff := cmp.Diff([]Record{tc.want}, s.All()); diff != "" {
					t.Errorf("All() (-want +got):\n%s", diff)
				}
				r, ok := s.Get("k")
				if ok == tc.want.Deleted {
					t.Errorf("Get(k) ok = %v, want %v", ok, !tc.want.Deleted)
				}
				if ok && !bytes.Equal(r.Value, tc.want.Value) {
					t.Errorf("Get(k) = %q, want %q", r.Value, tc.want.Value)
				}
			}
			check(s)
			check(reopen(t, s, path, clock))
		})
	}
}

func TestMergeNewKeysAndTombstones(t *testing.T) {
	clock := newFakeClock()
	s := openStore(t, dbPath(t), "n0", clock)
	base := stampAt(t0)
	changed := mustMerge(t, s,
		Record{Key: "a", Value: []byte("A"), Stamp: Stamp{base, "n1"}},
		Record{Key: "gone", Deleted: true, Stamp: Stamp{base + 10, "n1"}},
	)
	if diff := cmp.Diff([]string{"a", "gone"}, changed); diff != "" {
		t.Errorf("changed keys (-want +got):\n%s", diff)
	}
	if _, ok := s.Get("gone"); ok {
		t.Error("a merged tombstone for an unknown key is live")
	}
	// The tombstone keeps an older write that arrives late from resurrecting
	// the key.
	if changed := mustMerge(t, s, Record{Key: "gone", Value: []byte("late"), Stamp: Stamp{base + 5, "n2"}}); changed != nil {
		t.Errorf("late older write changed %q", changed)
	}
	if _, ok := s.Get("gone"); ok {
		t.Error("an older write resurrected a tombstoned key")
	}
	// A local delete of a merged key is a tombstone stamped after it.
	del(t, s, "a")
	var ra Record
	for _, r := range s.All() {
		if r.Key == "a" {
			ra = r
		}
	}
	if !ra.Deleted || !ra.Stamp.After(Stamp{base, "n1"}) || ra.Stamp.Origin != "n0" {
		t.Errorf("local delete of a merged key = %+v", ra)
	}
	if changed := mustMerge(t, s); changed != nil {
		t.Errorf("empty Merge changed %q", changed)
	}
}

func TestMergeObservesClock(t *testing.T) {
	clock := newFakeClock()
	s := openStore(t, dbPath(t), "n1", clock)
	// A peer whose clock is an hour ahead, and one with a huge logical counter.
	for _, remote := range []Stamp{
		{Time: stampAt(t0.Add(time.Hour)) + 3, Origin: "n2"},
		{Time: stampAt(t0.Add(2*time.Hour)) + 0xfff0, Origin: "n3"},
	} {
		mustMerge(t, s, Record{Key: "remote", Value: []byte(remote.Origin), Stamp: remote})
		put(t, s, "local", remote.Origin)
		r, _ := s.Get("local")
		if !r.Stamp.After(remote) || r.Stamp.Time <= remote.Time {
			t.Errorf("local write after merging %+v stamped %+v, want greater", remote, r.Stamp)
		}
		// And so a local overwrite of the merged key wins everywhere.
		put(t, s, "remote", "overwritten by n1")
		r, _ = s.Get("remote")
		if !r.Stamp.After(remote) {
			t.Errorf("overwrite of merged key stamped %+v, not after %+v", r.Stamp, remote)
		}
	}
}

// Two replicas that exchange All() converge, whatever order they wrote in.
func TestMergeConverges(t *testing.T) {
	clock1, clock2 := newFakeClock(), newFakeClock()
	clock2.Add(time.Minute)
	s1 := openStore(t, dbPath(t), "n1", clock1)
	s2 := openStore(t, dbPath(t), "n2", clock2)
	put(t, s1, "a", "1", "b", "1", "c", "1")
	put(t, s2, "a", "2", "d", "2")
	del(t, s2, "a")
	clock1.Add(time.Hour)
	put(t, s1, "c", "1 again")
	del(t, s1, "b")

	mustMerge(t, s1, s2.All()...)
	mustMerge(t, s2, s1.All()...)
	if diff := cmp.Diff(s1.All(), s2.All()); diff != "" {
		t.Errorf("replicas differ after exchange (-s1 +s2):\n%s", diff)
	}
	want := map[string]string{"c": "1 again", "d": "2"}
	if diff := cmp.Diff(want, values(s1.List(""))); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	// A second exchange changes nothing.
	if changed := mustMerge(t, s1, s2.All()...); changed != nil {
		t.Errorf("second exchange changed %q", changed)
	}
}

// signalled reports whether ch holds a signal, without waiting: Update and
// Merge signal before they return.
func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSubscribe(t *testing.T) {
	s := openStore(t, dbPath(t), "n1", newFakeClock())
	ch, cancel := s.Subscribe()
	ch2, cancel2 := s.Subscribe()
	defer cancel2()

	if signalled(ch) {
		t.Fatal("signal before any change")
	}
	put(t, s, "a", "1")
	if !signalled(ch) || !signalled(ch2) {
		t.Error("no signal to every subscriber after Update")
	}

	// Nobody reads: Updates must not block, and their signals coalesce.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			if _, err := s.Update(func(tx *Tx) error { tx.Put("a", []byte(strconv.Itoa(i))); return nil }); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Update blocked on a subscriber that does not read")
	}
	if !signalled(ch) {
		t.Error("no signal after 100 Updates")
	}
	if signalled(ch) {
		t.Error("100 Updates left more than one signal; want them coalesced")
	}
	signalled(ch2)

	put(t, s, "a", "99") // no change
	del(t, s, "missing")
	if signalled(ch) {
		t.Error("signal after an Update that changed nothing")
	}

	mustMerge(t, s, Record{Key: "m", Value: []byte("x"), Stamp: Stamp{Time: stampAt(t0.Add(time.Hour)), Origin: "n2"}})
	if !signalled(ch) {
		t.Error("no signal after Merge")
	}
	mustMerge(t, s, Record{Key: "m", Value: []byte("older"), Stamp: Stamp{Time: 1, Origin: "n2"}})
	if signalled(ch) {
		t.Error("signal after a Merge that changed nothing")
	}

	cancel()
	cancel() // idempotent
	put(t, s, "a", "after cancel")
	mustMerge(t, s, Record{Key: "m", Value: []byte("y"), Stamp: Stamp{Time: stampAt(t0.Add(2 * time.Hour)), Origin: "n2"}})
	if signalled(ch) {
		t.Error("signal after cancel")
	}
	if !signalled(ch2) {
		t.Error("cancelling one subscription stopped another")
	}
}

func TestCollectTombstones(t *testing.T) {
	clock := newFakeClock()
	path := dbPath(t)
	s := openStore(t, path, "n1", clock)
	const horizon = time.Hour

	put(t, s, "old", "x", "edge", "x", "young", "x", "live-old", "x")
	del(t, s, "old") // at t0
	clock.Add(time.Minute)
	del(t, s, "edge") // at t0+1m
	clock.Add(2 * time.Hour)
	del(t, s, "young") // at t0+2h1m
	mustMerge(t, s, Record{Key: "remote-old", Deleted: true, Stamp: Stamp{Time: stampAt(t0) + 5, Origin: "n2"}})

	now := t0.Add(time.Minute + horizon) // "edge" is exactly horizon old
	n, err := s.CollectTombstones(now, horizon)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("CollectTombstones removed %d, want 2 (old, remote-old)", n)
	}
	want := []string{"edge", "live-old", "young"}
	if diff := cmp.Diff(want, keysOf(s.All())); diff != "" {
		t.Errorf("All() keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"live-old": "x"}, values(s.List(""))); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	after := s.All()

	if n, err := s.CollectTombstones(now, horizon); err != nil || n != 0 {
		t.Errorf("second CollectTombstones = %d, %v; want 0, nil", n, err)
	}

	s = reopen(t, s, path, clock)
	if diff := cmp.Diff(after, s.All()); diff != "" {
		t.Errorf("All() after reopen (-want +got):\n%s", diff)
	}

	// Later everything but the live record goes.
	if n, err := s.CollectTombstones(clock.Now().Add(2*horizon), horizon); err != nil || n != 2 {
		t.Errorf("late CollectTombstones = %d, %v; want 2, nil", n, err)
	}
	s = reopen(t, s, path, clock)
	if diff := cmp.Diff([]string{"live-old"}, keysOf(s.All())); diff != "" {
		t.Errorf("All() keys after late collect and reopen (-want +got):\n%s", diff)
	}
}

func BenchmarkUpdate1000(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{Origin: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n, size = 1000, 200
	keys := make([]string, n)
	// Two value sets, alternated so that every Update changes every key
	// (equal values would be skipped). The store keeps the slices; they are
	// never modified.
	var vals [2][][]byte
	for i := range keys {
		keys[i] = fmt.Sprintf("labs/bench/hosts/h%04d", i)
		for j := range vals {
			vals[j] = append(vals[j], bytes.Repeat([]byte{byte('a' + j)}, size))
		}
	}
	b.SetBytes(n * size)
	b.ReportAllocs()
	iter := 0
	for b.Loop() {
		v := vals[iter%2]
		iter++
		changed, err := s.Update(func(tx *Tx) error {
			for i, k := range keys {
				tx.Put(k, v[i])
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if len(changed) != n {
			b.Fatalf("Update changed %d keys, want %d", len(changed), n)
		}
	}
}
