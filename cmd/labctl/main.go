// Command labctl drives labnet: apply topologies, list and describe labs,
// networks, hosts and nodes, and ping, traceroute, fetch or bench from a
// virtual host and list its connections.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/labnet-dev/labnet/cmd/labctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
