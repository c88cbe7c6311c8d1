package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// DefaultFetchTimeout limits a whole fetch: connect, headers and body. It is
// also the server's default.
const DefaultFetchTimeout = 30 * time.Second

type fetchOptions struct {
	output  string // -O: a file, "-" for stdout, "" for stdout without summary
	timeout time.Duration
	include bool
}

func (a *app) newFetchCommand() *cobra.Command {
	var o fetchOptions
	cmd := &cobra.Command{
		Use:   "fetch HOST URL [-O FILE] [--timeout D] [-i]",
		Short: "Make an HTTP GET from a virtual host, like curl",
		Long: `Make an HTTP GET request from HOST, over the lab's network and HOST's own
TCP stack, and write the response body to standard output, as curl does.
HOST is ID or LAB/ID. URL is http://ADDRESS[:PORT]/PATH (an IPv6 address in
brackets) or http://NAME[:PORT]/PATH with the name of a host of HOST's lab.
Only plain http is supported, and redirects are not followed.

-O FILE writes the body to FILE instead (-O - to standard output) and prints
a summary on standard error: bytes, time, rate, the server's address and the
status. -i writes the status line and the response headers before the body
(into FILE with -O), as curl -i does.

--timeout limits the whole request: connecting, the headers and the body.

The exit code is 0 for a 2xx status. For any other status (including a 3xx
redirect) the body is still written, then "error: GET URL: 404 Not Found" is
printed and the exit code is 1. When the transfer fails part-way, the error
is printed, the exit code is 1 and a partial FILE is removed.`,
		Example: `  labctl fetch h1 http://10.0.2.10/
  labctl fetch demo/h1 http://h2:8080/big.bin -O big.bin
  labctl fetch h1 http://[fd00:0:0:2::10]/ -i`,
		Args:              exactArgs("HOST URL", 2),
		ValidArgsFunction: a.completeFetchArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runFetch(cmd.Context(), args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output-document", "O", "", "write the body to `FILE` (- for standard output) and print a summary on standard error")
	f.DurationVar(&o.timeout, "timeout", DefaultFetchTimeout, "time limit for the whole request")
	f.BoolVarP(&o.include, "include", "i", false, "write the status line and headers before the body")
	return cmd
}

// fetchGrace is how much longer than --timeout labctl waits for labd, which
// enforces the timeout itself, to report it.
const fetchGrace = 5 * time.Second

func (a *app) runFetch(ctx context.Context, hostRef, url string, o fetchOptions) error {
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", o.timeout)
	}
	host, err := a.resolve(ctx, collHosts, hostRef)
	if err != nil {
		return err
	}
	live, err := a.live()
	if err != nil {
		return err
	}
	start := a.now()
	sctx, cancel := context.WithTimeout(ctx, o.timeout+fetchGrace)
	defer cancel()
	stream, err := live.Fetch(sctx, &labv1.FetchRequest{Host: host, Url: url, Timeout: durationpb.New(o.timeout)})
	if err != nil {
		return fetchStreamError(ctx, sctx, url, o.timeout, err)
	}

	out := &fetchOutput{path: o.output, stdout: a.stdout}
	var head *labv1.FetchHead
	var n uint64
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out.abort(fetchStreamError(ctx, sctx, url, o.timeout, err))
		}
		switch ev := resp.GetEvent().(type) {
		case *labv1.FetchResponse_Head:
			if head != nil {
				return out.abort(errors.New("labd sent a second response head"))
			}
			head = ev.Head
			if err := out.open(); err != nil {
				return err
			}
			if o.include {
				if err := out.write([]byte(headText(head))); err != nil {
					return out.abort(err)
				}
			}
		case *labv1.FetchResponse_Body:
			if head == nil {
				return out.abort(errors.New("labd sent the body before the response head"))
			}
			if err := out.write(ev.Body); err != nil {
				return out.abort(err)
			}
			n += uint64(len(ev.Body))
		}
	}
	if head == nil {
		return out.abort(errors.New("labd ended the fetch without a response"))
	}
	if err := out.close(); err != nil {
		return out.abort(err)
	}
	st := statusText(head)
	if o.output != "" {
		fmt.Fprintln(a.stderr, fetchSummary(n, a.now().Sub(start), head.GetRemoteAddress(), st))
	}
	if c := head.GetStatusCode(); c < 200 || c > 299 {
		return fmt.Errorf("GET %s: %s", url, st)
	}
	return nil
}

// fetchStreamError replaces the error of a fetch that labd did not end in
// time; other errors are labd's, which name the URL.
func fetchStreamError(parent, call context.Context, url string, timeout time.Duration, err error) error {
	if parent.Err() == nil && errors.Is(call.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("GET %s: no response within %s", url, timeout)
	}
	return err
}

// statusText is "404 Not Found", from the status code when labd sent no
// text.
func statusText(h *labv1.FetchHead) string {
	if s := h.GetStatus(); s != "" {
		return s
	}
	c := int(h.GetStatusCode())
	return strings.TrimSpace(strconv.Itoa(c) + " " + http.StatusText(c))
}

// headText is what curl -i writes before the body: the status line, the
// header lines and an empty line.
func headText(h *labv1.FetchHead) string {
	proto := h.GetProto()
	if proto == "" {
		proto = "HTTP/1.1"
	}
	var b strings.Builder
	b.WriteString(proto + " " + statusText(h) + "\n")
	for _, l := range h.GetHeaders() {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// fetchSummary is the line -O prints on stderr:
//
//	fetched 10000000 bytes in 0.12s (667 Mbit/s) from 10.0.2.10:80, status 200 OK
func fetchSummary(n uint64, elapsed time.Duration, from, status string) string {
	s := fmt.Sprintf("fetched %d byte%s in %s", n, plural(int(min(n, 2))), formatSeconds(elapsed.Seconds()))
	if elapsed > 0 {
		s += " (" + formatBitRate(float64(n)*8/elapsed.Seconds()) + ")"
	}
	if from != "" {
		s += " from " + from
	}
	return s + ", status " + status
}

// fetchOutput is where the body goes: stdout, or a file created when the
// response head arrives and removed if the transfer fails.
type fetchOutput struct {
	path   string
	stdout io.Writer
	file   *os.File
}

func (f *fetchOutput) toFile() bool { return f.path != "" && f.path != "-" }

func (f *fetchOutput) open() error {
	if !f.toFile() {
		return nil
	}
	file, err := os.Create(f.path)
	if err != nil {
		return err
	}
	f.file = file
	return nil
}

func (f *fetchOutput) write(p []byte) error {
	if f.file != nil {
		_, err := f.file.Write(p)
		return err
	}
	if _, err := f.stdout.Write(p); err != nil {
		return fmt.Errorf("writing to standard output: %w", err)
	}
	return nil
}

func (f *fetchOutput) close() error {
	if f.file == nil {
		return nil
	}
	err := f.file.Close()
	f.file = nil
	return err
}

// abort removes a partly written file and returns err.
func (f *fetchOutput) abort(err error) error {
	if f.file != nil {
		_ = f.file.Close()
		_ = os.Remove(f.path)
		f.file = nil
	}
	return err
}

// completeFetchArgs completes HOST, then URL as http://NAME/ for the hosts
// of HOST's lab.
func (a *app) completeFetchArgs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return a.completeNames(cmd.Context(), collHosts, toComplete), cobra.ShellCompDirectiveNoFileComp
	case 1:
		const scheme = "http://"
		var typed string
		switch {
		case strings.HasPrefix(scheme, toComplete):
		case strings.HasPrefix(toComplete, scheme) && !strings.Contains(toComplete[len(scheme):], "/"):
			typed = toComplete[len(scheme):]
		default: // another scheme, or a path: nothing to offer
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, c := range a.completeDestinations(cmd.Context(), args[0], typed) {
			id, desc, _ := strings.Cut(c, "\t")
			out = append(out, cobra.CompletionWithDesc(scheme+id+"/", desc))
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
