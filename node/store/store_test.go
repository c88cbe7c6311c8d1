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
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "state.db") }

// openStore opens path and closes the store when the test ends.
func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen closes s and opens its file again.
func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, s.path)
}

// mustUpdate runs Update and returns the revision it made.
func mustUpdate(t testing.TB, s *Store, fn func(tx *Tx) error) uint64 {
	t.Helper()
	rev, err := s.Update(fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

// put commits key/value pairs (alternating) in one Update.
func put(t testing.TB, s *Store, kv ...string) uint64 {
	t.Helper()
	return mustUpdate(t, s, func(tx *Tx) error {
		for i := 0; i < len(kv); i += 2 {
			tx.Put(kv[i], []byte(kv[i+1]))
		}
		return nil
	})
}

func del(t testing.TB, s *Store, keys ...string) uint64 {
	t.Helper()
	return mustUpdate(t, s, func(tx *Tx) error {
		for _, k := range keys {
			tx.Delete(k)
		}
		return nil
	})
}

// all is every record (Snapshot without the revision).
func all(s *Store) []Record {
	recs, _ := s.Snapshot()
	return recs
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

func TestCloseIdempotentAndWritesFailAfter(t *testing.T) {
	s := openStore(t, dbPath(t))
	put(t, s, "a", "1")
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := s.Update(func(tx *Tx) error { tx.Put("b", nil); return nil }); err == nil {
		t.Error("Update after Close: got nil error")
	}
	if _, err := s.Apply(Batch{Ops: []Op{{Key: "b", Value: []byte("x")}}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ApplyIndexed(1, Batch{Ops: []Op{{Key: "b", Value: []byte("x")}}}); !errors.Is(err, ErrClosed) {
		t.Errorf("ApplyIndexed after Close: %v, want ErrClosed", err)
	}
	if err := s.ApplyChange(Change{Rev: 2, Ops: []Op{{Key: "b", Value: []byte("x")}}}); !errors.Is(err, ErrClosed) {
		t.Errorf("ApplyChange after Close: %v, want ErrClosed", err)
	}
	if err := s.Restore(nil, 5, 5); !errors.Is(err, ErrClosed) {
		t.Errorf("Restore after Close: %v, want ErrClosed", err)
	}
	// Reads keep answering from memory.
	if r, ok := s.Get("a"); !ok || string(r.Value) != "1" {
		t.Errorf("Get(a) after Close = %+v, %v", r, ok)
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path)
	put(t, s, "labs/a", "1", "labs/b", "2", "labs/gone", "x")
	del(t, s, "labs/gone")
	before, rev := all(s), s.Revision()

	errBoom := errors.New("boom")
	got, err := s.Update(func(tx *Tx) error {
		tx.Put("labs/a", []byte("changed"))
		tx.Put("labs/c", []byte("new"))
		tx.Put("labs/gone", []byte("resurrected"))
		tx.Delete("labs/b")
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update error = %v, want %v", err, errBoom)
	}
	if got != 0 {
		t.Errorf("Update revision = %d, want 0", got)
	}
	if got := s.Revision(); got != rev {
		t.Errorf("Revision = %d, want %d (unchanged)", got, rev)
	}
	if diff := cmp.Diff(before, all(s)); diff != "" {
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

	s = reopen(t, s)
	if diff := cmp.Diff(before, all(s)); diff != "" {
		t.Errorf("All() after reopen (-want +got):\n%s", diff)
	}
}

func TestUpdatePutsAndDeletesTogether(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path)
	put(t, s, "hosts/h1", "a", "hosts/h2", "b", "hosts/h3", "c")
	rev := s.Revision()

	got := mustUpdate(t, s, func(tx *Tx) error {
		tx.Put("hosts/h1", []byte("A"))
		tx.Delete("hosts/h2")
		tx.Put("hosts/h4", []byte("d"))
		tx.Delete("hosts/h3")
		tx.Put("hosts/h3", []byte("C")) // last write in the tx wins
		return nil
	})
	if got != rev+1 {
		t.Errorf("Update = %d, want %d", got, rev+1)
	}
	changes, err := s.Since(rev)
	if err != nil {
		t.Fatal(err)
	}
	wantOps := []Op{{Key: "hosts/h1", Value: []byte("A")}, {Key: "hosts/h2"}, {Key: "hosts/h4", Value: []byte("d")}, {Key: "hosts/h3", Value: []byte("C")}}
	if diff := cmp.Diff([]Change{{Rev: rev + 1, Ops: wantOps}}, changes); diff != "" {
		t.Errorf("the change (-want +got):\n%s", diff)
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

	// Every record written by the Update carries its revision.
	for _, r := range all(s) {
		if r.Rev != rev+1 {
			t.Errorf("%s: rev %d, want %d", r.Key, r.Rev, rev+1)
		}
	}

	s = reopen(t, s)
	if diff := cmp.Diff(want, values(s.List("hosts/"))); diff != "" {
		t.Errorf("List after reopen (-want +got):\n%s", diff)
	}
}

func TestTxSeesOwnWrites(t *testing.T) {
	s := openStore(t, dbPath(t))
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
	s := openStore(t, dbPath(t))
	put(t, s, "k1", "v1", "k2", "")
	del(t, s, "dead")      // never existed
	put(t, s, "tomb", "x") //
	del(t, s, "tomb")      // deleted
	before, rev := all(s), s.Revision()

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
		{"delete deleted key again", func(tx *Tx) error { tx.Delete("tomb"); return nil }},
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
			if got := mustUpdate(t, s, tc.fn); got != rev {
				t.Errorf("Update = %d, want the current revision %d", got, rev)
			}
			if got := s.Revision(); got != rev {
				t.Errorf("Revision = %d, want %d", got, rev)
			}
			if diff := cmp.Diff(before, all(s)); diff != "" {
				t.Errorf("All() (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := s.Get("dead"); ok {
		t.Error("deleting a missing key created a live record")
	}
	for _, r := range all(s) {
		if r.Key == "dead" {
			t.Errorf("deleting a missing key left a record: %+v", r)
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
// deletes too.
func crashDeletes(i int) (int, bool) { return i - 5, i%10 == 9 }

// TestHelperProcess is not a test: it is the child of
// TestKillNineKeepsAcknowledged. It commits Updates until killed and
// acknowledges each one on stdout once Update has returned.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestKillNineKeepsAcknowledged")
	}
	s, err := Open(path, Options{})
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

	s := openStore(t, path)
	byKey := map[string]Record{}
	for _, r := range all(s) {
		byKey[r.Key] = r
	}
	for i := 0; i <= last; i++ {
		k := crashKey(i)
		r, ok := byKey[k]
		switch deleter := i + 5; {
		case i%10 == 4 && deleter <= last:
			if ok {
				t.Errorf("%s: deleted by acknowledged Update %d but live: %+v", k, deleter, r)
			}
		case i%10 == 4 && !ok:
			// Deleted by an Update that was not acknowledged, which
			// may or may not have committed.
		case !ok:
			t.Errorf("%s: acknowledged but missing after kill -9", k)
		default:
			if string(r.Value) != crashValue(i) {
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
	path := dbPath(t)
	first := openStore(t, path)
	put(t, first, "k", "v")

	start := time.Now()
	second, err := Open(path, Options{LockTimeout: 500 * time.Millisecond})
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
	s := openStore(t, path)
	if diff := cmp.Diff(map[string]string{"k": "v", "k2": "v2"}, values(s.List(""))); diff != "" {
		t.Errorf("List after the holder closed (-want +got):\n%s", diff)
	}
}

func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSubscribe(t *testing.T) {
	s := openStore(t, dbPath(t))
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

	if err := s.ApplyChange(Change{Rev: s.Revision() + 1, Ops: []Op{{Key: "m", Value: []byte("x")}}}); err != nil {
		t.Fatal(err)
	}
	if !signalled(ch) {
		t.Error("no signal after ApplyChange")
	}
	if _, err := s.ApplyIndexed(10, Batch{Ops: []Op{{Key: "m", Value: []byte("i")}}}); err != nil {
		t.Fatal(err)
	}
	if !signalled(ch) {
		t.Error("no signal after ApplyIndexed")
	}
	if _, err := s.ApplyIndexed(10, Batch{Ops: []Op{{Key: "m", Value: []byte("replayed")}}}); err != nil {
		t.Fatal(err)
	}
	if signalled(ch) {
		t.Error("signal after a replayed ApplyIndexed")
	}
	if err := s.Restore([]Record{{Key: "r", Value: []byte("x"), Rev: 1}}, s.Revision()+1, 11); err != nil {
		t.Fatal(err)
	}
	if !signalled(ch) {
		t.Error("no signal after Restore")
	}

	cancel()
	cancel() // idempotent
	put(t, s, "a", "after cancel")
	if signalled(ch) {
		t.Error("signal after cancel")
	}
	if !signalled(ch2) {
		t.Error("cancelling one subscription stopped another")
	}
}

func BenchmarkUpdate1000(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
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
		rev, err := s.Update(func(tx *Tx) error {
			for i, k := range keys {
				tx.Put(k, v[i])
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if rev != uint64(iter) {
			b.Fatalf("Update made revision %d, want %d", rev, iter)
		}
	}
}
