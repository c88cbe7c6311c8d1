package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// runWatch is get --watch: it reads the initial state from the Watch stream
// itself (ADDED events up to SYNCED), so nothing falls between the list and
// the watch, prints it as get does, then prints each change until ctx is
// cancelled (Ctrl-C), which is a normal end.
func (a *app) runWatch(ctx context.Context, k kind, names []string) error {
	if k != kindLab && k != kindNetwork && k != kindHost && k != kindNode {
		return fmt.Errorf("--watch works for labs, networks, hosts and nodes, not %s", k.plural())
	}
	if k == kindNode {
		if len(names) > 0 {
			return fmt.Errorf("--watch watches every node: give no NAME")
		}
		return a.runWatchNodes(ctx)
	}
	if len(names) > 0 {
		return fmt.Errorf("--watch watches a whole collection: give no NAME (use --lab for one lab)")
	}
	c, err := a.labs()
	if err != nil {
		return err
	}
	req := &labv1.WatchRequest{Parent: a.parent(), Kinds: []string{k.plural()}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Watch(sctx, req)
	if err != nil {
		return err
	}

	var initial []*labv1.WatchResponse
	var widths []int // of the table's columns, grown by each change row
	synced := false
	for n := 0; ; n++ {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			if errors.Is(err, io.EOF) {
				return errors.New("labd ended the watch")
			}
			return err
		}
		if a.output != outputTable {
			if err := a.printWatchEvent(resp, n == 0); err != nil {
				return err
			}
			continue
		}
		if !synced {
			if resp.GetType() == labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED {
				synced = true
				if err := a.printWatchInitial(k, initial); err != nil {
					return err
				}
				widths = growWidths(nil, a.watchHeader(k))
				for _, e := range initial {
					widths = growWidths(widths, a.watchRow(k, e))
				}
			} else {
				initial = append(initial, resp)
			}
			continue
		}
		row := a.watchRow(k, resp)
		widths = growWidths(widths, row)
		if err := a.printWatchRow(resp.GetType(), row, widths); err != nil {
			return err
		}
	}
}

// printWatchInitial prints the initial state as get prints a list.
func (a *app) printWatchInitial(k kind, events []*labv1.WatchResponse) error {
	switch k {
	case kindLab:
		var labs []*labv1.Lab
		for _, e := range events {
			labs = append(labs, e.GetLab())
		}
		return a.printLabs(labs, false)
	case kindNetwork:
		var nets []*labv1.Network
		for _, e := range events {
			nets = append(nets, e.GetNetwork())
		}
		return a.printNetworks(nets, false)
	default:
		var hosts []*labv1.Host
		for _, e := range events {
			hosts = append(hosts, e.GetHost())
		}
		return a.printHosts(hosts, false)
	}
}

func (a *app) watchHeader(k kind) []string {
	switch k {
	case kindLab:
		return labHeader
	case kindNetwork:
		return a.networkHeader()
	default:
		return a.hostHeader()
	}
}

// watchRow is an event's table row. A resource-less event (a DELETED from a
// server that sends only the name) has the name and default columns.
func (a *app) watchRow(k kind, e *labv1.WatchResponse) []string {
	switch k {
	case kindLab:
		l := e.GetLab()
		if l == nil {
			l = &labv1.Lab{Name: e.GetName()}
		}
		return labRow(a.now(), l)
	case kindNetwork:
		n := e.GetNetwork()
		if n == nil {
			n = &labv1.Network{Name: e.GetName()}
		}
		return a.networkRow(n)
	default:
		h := e.GetHost()
		if h == nil {
			h = &labv1.Host{Name: e.GetName()}
		}
		return a.hostRow(h)
	}
}

// growWidths widens widths to fit row's cells.
func growWidths(widths []int, row []string) []int {
	for i, c := range row {
		if i == len(widths) {
			widths = append(widths, 0)
		}
		widths[i] = max(widths[i], utf8.RuneCountInString(c))
	}
	return widths
}

// eventWidth fits the longest event type, MODIFIED.
const eventWidth = len("MODIFIED")

// printWatchRow prints one change: its type, then its row with the columns
// as wide as the table's (and every earlier change's), three spaces apart
// as in the table, so that the change rows line up with each other.
func (a *app) printWatchRow(t labv1.WatchEventType, row []string, widths []int) error {
	var b strings.Builder
	typ := strings.TrimPrefix(t.String(), "WATCH_EVENT_TYPE_")
	b.WriteString(typ + strings.Repeat(" ", max(0, eventWidth-len(typ))))
	for i, c := range row {
		b.WriteString("   ")
		b.WriteString(c)
		if i < len(row)-1 {
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(a.stdout, b.String())
	return err
}

// printWatchEvent prints one event as a JSON line, or as a YAML document.
func (a *app) printWatchEvent(e proto.Message, first bool) error {
	b, err := marshalJSON(e)
	if err != nil {
		return err
	}
	if a.output == outputYAML {
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return err
		}
		if !first {
			y = append([]byte("---\n"), y...)
		}
		_, err = a.stdout.Write(y)
		return err
	}
	_, err = a.stdout.Write(append(b, '\n'))
	return err
}
