package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// newHealthCommand asks labd's grpc.health.v1 service whether it serves:
// the container image's HEALTHCHECK and scripts that wait for labd use it,
// as grpc-health-probe would be used elsewhere.
func (a *app) newHealthCommand() *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that labd serves (grpc.health.v1); exit 0 when SERVING",
		Long: `Check that labd serves, with the standard gRPC health check
(grpc.health.v1.Health/Check). Prints the status; exits 0 when it is
SERVING and 1 otherwise (NOT_SERVING while labd shuts down, or labd not
reachable within --timeout).

  labctl health
  labctl --server 127.0.0.1:7700 --timeout 3s health`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.connect(); err != nil {
				return err
			}
			resp, err := unary(a, cmd.Context(), func(ctx context.Context) (*healthpb.HealthCheckResponse, error) {
				return healthpb.NewHealthClient(a.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, resp.Status)
			if resp.Status != healthpb.HealthCheckResponse_SERVING {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "service to ask about; empty: the server as a whole")
	return cmd
}
