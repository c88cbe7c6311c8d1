package cli

import (
	"context"
	"errors"
	"io"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// runWatchNodes is get nodes --watch: as runWatch, over NodeService's
// WatchNodes stream.
func (a *app) runWatchNodes(ctx context.Context) error {
	c, err := a.nodes()
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.WatchNodes(sctx, &labv1.WatchNodesRequest{})
	if err != nil {
		return err
	}
	var initial []*labv1.Node
	var widths []int
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
			if resp.GetType() != labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED {
				initial = append(initial, resp.GetNode())
				continue
			}
			synced = true
			if err := a.printNodes(initial, false); err != nil {
				return err
			}
			widths = growWidths(nil, nodeHeader)
			for _, node := range initial {
				widths = growWidths(widths, nodeRow(a.now(), node))
			}
			continue
		}
		node := resp.GetNode()
		if node == nil {
			node = &labv1.Node{Name: resp.GetName()}
		}
		row := nodeRow(a.now(), node)
		widths = growWidths(widths, row)
		if err := a.printWatchRow(resp.GetType(), row, widths); err != nil {
			return err
		}
	}
}
