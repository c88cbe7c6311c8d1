package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// interruptAt is the stdout of a watch: it cancels the command's context
// (Ctrl-C) once the output shows the fake server's last event, a resource
// named "gone".
type interruptAt struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *interruptAt) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), "gone") {
		w.cancel()
	}
	return n, err
}

func (w *interruptAt) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestGetWatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		calls []string
	}{
		{"get_hosts_watch", []string{"get", "hosts", "-w"}, []string{"Watch labs/- hosts"}},
		{"get_hosts_watch_in_lab", []string{"get", "hosts", "--watch", "--lab", "other"}, []string{"Watch labs/other hosts"}},
		{"get_networks_watch", []string{"get", "nets", "-w", "--lab", "demo"}, nil},
		{"get_labs_watch", []string{"get", "labs", "-w"}, []string{"Watch labs/- labs"}},
		{"get_labs_watch_json", []string{"get", "labs", "-w", "-o", "json"}, nil},
		{"get_hosts_watch_yaml", []string{"get", "hosts", "-w", "-o", "yaml", "--lab", "demo"}, nil},
		{"get_nodes_watch", []string{"get", "nodes", "-w"}, []string{"WatchNodes"}},
		{"get_nodes_watch_json", []string{"get", "nodes", "-w", "-o", "json"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer()
			addr := f.start(t)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			out := &interruptAt{cancel: cancel}
			var errb bytes.Buffer
			code := Run(ctx, append([]string{"--server", addr}, tc.args...), strings.NewReader(""), out, &errb,
				WithClock(stepClock(t0, 2003*time.Millisecond)),
				WithEnv(func(string) string { return "" }))
			if code != 0 || errb.String() != "" {
				t.Errorf("exit code %d, stderr %q; want 0 and nothing", code, errb.String())
			}
			if ctx.Err() != context.Canceled {
				t.Errorf("the watch ended before it printed the last event")
			}
			checkGolden(t, tc.name, out.String())
			if tc.calls != nil {
				if diff := cmp.Diff(tc.calls, f.recorded()); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestGetWatchErrors(t *testing.T) {
	runCases(t, []cliCase{
		{name: "get_watch_named_node", args: []string{"get", "node", "n1", "-w"}, code: 1,
			stderr: "error: --watch watches every node: give no NAME\n", calls: []string{}},
		{name: "get_watch_named", args: []string{"get", "host", "h1", "-w"}, code: 1,
			stderr: "error: --watch watches a whole collection: give no NAME (use --lab for one lab)\n", calls: []string{}},
		{name: "get_watch_server_stops", args: []string{"get", "hosts", "-w", "--lab", "broken"}, code: 1,
			stderr: "No hosts found in lab broken.\nerror: labd is shutting down\n"},
	})
}
