package api

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/lab"
)

// violations collects bad fields; it becomes one InvalidArgument status with
// a google.rpc.BadRequest naming every field (AIP-193). The message names the
// first, so a CLI can print it as its one line.
type violations []*errdetails.BadRequest_FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	msg := v[0].Field + ": " + v[0].Description
	if len(v) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(v)-1)
	}
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.BadRequest{FieldViolations: v})
	if err != nil {
		return status.Error(codes.InvalidArgument, msg)
	}
	return st.Err()
}

// invalid is a single bad field.
func invalid(field, format string, args ...any) error {
	var v violations
	v.add(field, format, args...)
	return v.err()
}

func notFound(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format, args...)
}

// join makes a field path: join("topology", "hosts[1]") = "topology.hosts[1]".
func join(parts ...string) string { return lab.Field(parts...) }

// modelErr is the model's validation error as an InvalidArgument status
// naming every field; other errors pass unchanged.
func modelErr(err error) error {
	var lv lab.Violations
	if !errors.As(err, &lv) {
		return err
	}
	var v violations
	for _, f := range lv {
		v.add(f.Field, "%s", f.Description)
	}
	return v.err()
}
