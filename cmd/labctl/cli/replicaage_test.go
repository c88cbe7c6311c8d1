package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// ageHeader makes a server answer every call with the replica-age header.
func ageHeader(v string) []grpc.ServerOption {
	md := metadata.Pairs(replicaAgeHeader, v)
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			grpc.SetHeader(ctx, md)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ss.SetHeader(md)
			return h(srv, ss)
		}),
	}
}

func TestReplicaAgeNote(t *testing.T) {
	since := t0.Add(-12500 * time.Millisecond).Local().Format("15:04:05")
	note := "note: this node's copy of the lab is 12s old (control plane unreachable since " + since + ")\n"
	for _, tc := range []struct {
		name   string
		header []grpc.ServerOption
		want   string
	}{
		{"stale", ageHeader("12.5"), note}, // get labs takes two pages: one note
		{"fresh", ageHeader("1.5"), ""},
		{"two seconds", ageHeader("2.0"), ""},
		{"control node", nil, ""},
		{"garbage", ageHeader("soon"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := newFakeServer().start(t, tc.header...)
			got := runCLI(t.Context(), addr, "", []string{"get", "labs"})
			if got.code != 0 || got.stderr != tc.want {
				t.Errorf("exit code %d, stderr %q; want 0, %q", got.code, got.stderr, tc.want)
			}
		})
	}
}

func TestReplicaAgeNoteOnWatch(t *testing.T) {
	addr := newFakeServer().start(t, ageHeader("75")...)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out := &interruptAt{cancel: cancel}
	var errb bytes.Buffer
	Run(ctx, []string{"--server", addr, "get", "labs", "-w"}, strings.NewReader(""), out, &errb,
		WithClock(func() time.Time { return t0 }), WithEnv(func(string) string { return "" }))
	since := t0.Add(-75 * time.Second).Local().Format("15:04:05")
	if want := "note: this node's copy of the lab is 75s old (control plane unreachable since " + since + ")\n"; errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
}
