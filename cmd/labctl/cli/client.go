package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// connect dials labd once; the connection is lazy, so the first call reports
// an unreachable server.
func (a *app) connect() error {
	if a.conn != nil {
		return nil
	}
	ep, err := a.endpoint()
	if err != nil {
		return err
	}
	creds, err := transportFor(ep)
	if err != nil {
		return err
	}
	a.plaintext = ep.ca == nil
	return a.dialServer(ep.server, creds, ep.token, ep.ca == nil)
}

// dialServer makes the connection to server over creds, sending token (if any)
// with every call; plainOK lets it go without TLS (a loopback server with
// no CA known: transportFor decided).
func (a *app) dialServer(server string, creds credentials.TransportCredentials, token string, plainOK bool) error {
	a.server = server
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, a.replicaAgeInterceptors()...)
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: token, plainOK: plainOK}))
	}
	opts = append(opts, a.dialOpts...)
	conn, err := grpc.NewClient(server, opts...)
	if err != nil {
		return fmt.Errorf("server %q: %w", server, err)
	}
	a.conn = conn
	a.lc = labv1.NewLabServiceClient(conn)
	a.nc = labv1.NewNodeServiceClient(conn)
	a.vc = labv1.NewLiveServiceClient(conn)
	a.ac = labv1.NewAuthServiceClient(conn)
	return nil
}

func (a *app) close() {
	if a.conn != nil {
		_ = a.conn.Close()
		a.conn = nil
	}
}

func (a *app) labs() (labv1.LabServiceClient, error) {
	if err := a.connect(); err != nil {
		return nil, err
	}
	return a.lc, nil
}

func (a *app) nodes() (labv1.NodeServiceClient, error) {
	if err := a.connect(); err != nil {
		return nil, err
	}
	return a.nc, nil
}

func (a *app) live() (labv1.LiveServiceClient, error) {
	if err := a.connect(); err != nil {
		return nil, err
	}
	return a.vc, nil
}

func (a *app) authService() (labv1.AuthServiceClient, error) {
	if err := a.connect(); err != nil {
		return nil, err
	}
	return a.ac, nil
}

// unary runs one unary call under --timeout.
func unary[Resp any](a *app, ctx context.Context, call func(context.Context) (Resp, error)) (Resp, error) {
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := call(cctx)
	return resp, a.timedOut(ctx, cctx, err)
}

// timedOut replaces the error of a call whose --timeout ran out: depending
// on who notices first, it is the client's DeadlineExceeded or whatever
// the server answered when it saw the deadline (a reset stream, possibly
// before the client's own timer fired).
func (a *app) timedOut(parent, call context.Context, err error) error {
	if err == nil || parent.Err() != nil {
		return err
	}
	deadline, ok := call.Deadline()
	if errors.Is(call.Err(), context.DeadlineExceeded) || (ok && !time.Now().Before(deadline)) {
		return status.Errorf(codes.DeadlineExceeded, "labd at %s did not answer within %s", a.server, a.timeout)
	}
	return err
}

// maxPages bounds a list that never stops handing out page tokens.
const maxPages = 10000

// listAll follows next_page_token until it is empty. Each page is one call
// under --timeout.
func listAll[T any](a *app, ctx context.Context, page func(ctx context.Context, token string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	for range maxPages {
		pctx, cancel := context.WithTimeout(ctx, a.timeout)
		items, next, err := page(pctx, token)
		err = a.timedOut(ctx, pctx, err)
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		token = next
	}
	return nil, fmt.Errorf("list did not end after %d pages", maxPages)
}

// rpcErrorMessage returns the line to print for a gRPC error, and false when
// err is not one. Commands return gRPC errors unwrapped: the server's message
// already names the resource and the field.
func (a *app) rpcErrorMessage(err error) (string, bool) {
	var gs interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &gs) {
		return "", false
	}
	st := gs.GRPCStatus()
	if st == nil {
		return "", false
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if reason, ok := transportReason(msg); ok && strings.HasPrefix(reason, "authentication handshake failed: ") {
			return fmt.Sprintf("cannot verify labd at %s: %s", a.server, strings.TrimPrefix(reason, "authentication handshake failed: ")), true
		}
		if reason, ok := transportReason(msg); ok && a.plaintext && plaintextRefused(reason) {
			// A labd whose API is not on loopback alone serves TLS only,
			// also to its own machine: a student's labd before they log in.
			return fmt.Sprintf("labd at %s serves TLS only and labctl knows no CA for it: run the labctl login line your teacher's labctl user invite printed (or set LABD_DATA to that labd's data directory)", a.server), true
		}
		if reason, ok := transportReason(msg); ok {
			return fmt.Sprintf("cannot reach labd at %s: %s (is labd running?)", a.server, reason), true
		}
	case codes.DeadlineExceeded:
		if msg == context.DeadlineExceeded.Error() {
			return fmt.Sprintf("labd at %s did not answer within %s", a.server, a.timeout), true
		}
	case codes.Canceled:
		if msg == context.Canceled.Error() {
			return "interrupted", true
		}
	}
	if msg == "" {
		msg = badRequestMessage(st)
	}
	if msg == "" {
		msg = st.Code().String()
	}
	return foldLines(msg), true
}

// foldLines puts a server's message on one line: its lines joined by
// spaces.
func foldLines(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}

// transportReason recognises the client's own connection errors, as opposed
// to an Unavailable status sent by labd (for example about a node it
// cannot forward to), and returns their short reason.
func transportReason(msg string) (string, bool) {
	switch {
	case strings.Contains(msg, "connection error"),
		strings.Contains(msg, "transport:"),
		strings.Contains(msg, "name resolver error"),
		strings.Contains(msg, "produced zero addresses"),
		strings.Contains(msg, "last resolver error"):
	default:
		return "", false
	}
	reason := msg
	if _, after, ok := strings.Cut(reason, `desc = "`); ok {
		reason = strings.TrimSuffix(after, `"`)
	}
	reason = strings.TrimPrefix(reason, "transport: Error while dialing: ")
	reason = strings.TrimPrefix(reason, "transport: ")
	return reason, true
}

// badRequestMessage builds a message from a google.rpc.BadRequest detail, for
// a server that sent no message.
func badRequestMessage(st *status.Status) string {
	var parts []string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			parts = append(parts, v.GetField()+": "+v.GetDescription())
		}
	}
	return strings.Join(parts, "; ")
}

// plaintextRefused reports whether a transport error is a server closing
// a plaintext connection: a TLS-only labd reads the HTTP/2 preface as no
// TLS handshake and closes the connection.
func plaintextRefused(reason string) bool {
	return strings.Contains(reason, "error reading server preface") &&
		(strings.Contains(reason, "connection reset") || strings.Contains(reason, "EOF"))
}
