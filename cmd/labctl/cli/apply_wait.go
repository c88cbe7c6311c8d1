package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// defaultWaitPoll is how often apply --wait asks for the hosts' status.
const defaultWaitPoll = 500 * time.Millisecond

// changedHosts are the hosts that changes created or configured: those an
// apply placed or changed, in order.
func changedHosts(changes []*labv1.Change) []string {
	var out []string
	for _, ch := range changes {
		_, coll, _, ok := splitName(ch.GetName())
		if !ok || coll != "hosts" {
			continue
		}
		switch ch.GetAction() {
		case labv1.ChangeAction_CHANGE_ACTION_CREATED, labv1.ChangeAction_CHANGE_ACTION_CONFIGURED:
			out = append(out, ch.GetName())
		}
	}
	return out
}

// waitRunning polls the status of hosts through the API (which forwards
// to the node that runs each) until every one is running, printing the
// progress to stderr when it changes. A host whose node cannot be reached
// yet (Unavailable) or that the node does not know yet (NotFound) is not
// running yet. After timeout, it fails naming the hosts not running and
// the last thing heard of each.
func (a *app) waitRunning(ctx context.Context, hosts []string, timeout time.Duration) error {
	if len(hosts) == 0 {
		return nil
	}
	lc, err := a.live()
	if err != nil {
		return err
	}
	poll := a.waitPoll
	if poll <= 0 {
		poll = defaultWaitPoll
	}
	deadline := a.now().Add(timeout)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	pending := hosts
	why := map[string]string{}
	last := -1
	for {
		var still []string
		for _, h := range pending {
			running, reason, err := a.hostRunning(ctx, lc, h)
			if err != nil {
				return fmt.Errorf("waiting for host %s: %w", shortID(h), err)
			}
			if !running {
				why[h] = reason
				still = append(still, h)
			}
		}
		pending = still
		if n := len(hosts) - len(pending); n != last {
			fmt.Fprintf(a.stderr, "waiting: %d/%d hosts running\n", n, len(hosts))
			last = n
		}
		if len(pending) == 0 {
			return nil
		}
		if !a.now().Before(deadline) {
			return fmt.Errorf("%d of %d hosts not running after %v: %s", len(pending), len(hosts), timeout, describeWaiting(pending, why))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// hostRunning asks for host's status once: running, or why not yet; err
// for an answer that waiting will not change.
func (a *app) hostRunning(ctx context.Context, lc labv1.LiveServiceClient, host string) (bool, string, error) {
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := lc.GetHostStatus(cctx, &labv1.GetHostStatusRequest{Name: host})
	switch {
	case err == nil && resp.GetStatus().GetRunning():
		return true, "", nil
	case err == nil:
		return false, "not running yet", nil
	case ctx.Err() != nil:
		return false, "", ctx.Err()
	}
	switch st := status.Convert(err); st.Code() {
	case codes.Unavailable, codes.NotFound:
		return false, st.Message(), nil
	case codes.DeadlineExceeded:
		return false, fmt.Sprintf("no answer within %v", a.timeout), nil
	default:
		return false, "", err
	}
}

// describeWaiting is "h2 (node n2 is unreachable), h3 (not running yet)":
// hosts by id, or lab/id when they are of several labs.
func describeWaiting(hosts []string, why map[string]string) string {
	labs := map[string]bool{}
	for _, h := range hosts {
		labs[labOf(h)] = true
	}
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		id := shortID(h)
		if len(labs) > 1 {
			id = labOf(h) + "/" + id
		}
		parts[i] = id + " (" + why[h] + ")"
	}
	return strings.Join(parts, ", ")
}
