package api

import (
	"context"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// SetImpairment replaces the impairments of one interface of a host: the
// host's spec is written like any other, and the runtime applies the change
// to the running interface without restarting the host.
func (s *Server) SetImpairment(ctx context.Context, req *labv1.SetImpairmentRequest) (*labv1.SetImpairmentResponse, error) {
	labID, id, ok := lab.ParseHostName(req.Host)
	if !ok {
		return nil, invalid("host", "%q is not a host name (labs/{lab}/hosts/{host})", req.Host)
	}
	if req.Interface == "" {
		return nil, invalid("interface", "required: an interface name such as eth0")
	}
	var v lab.Violations
	lab.ValidateImpairment("impair", req.Impair, &v)
	if err := v.Err(); err != nil {
		return nil, modelErr(err)
	}
	st, err := s.change(asHostOperation(ctx, id), labID, func(old, next *lab.State) (map[string]string, []string, error) {
		h := next.Hosts[id]
		if h == nil {
			return nil, nil, notFound("host %q not found in lab %q", id, labID)
		}
		var names []string
		for _, ifc := range h.Interfaces {
			if ifc.Name == req.Interface {
				ifc.Impair = lab.CanonImpairment(proto.CloneOf(req.Impair))
				return nil, nil, nil
			}
			names = append(names, ifc.Name)
		}
		has := "it has no interfaces"
		if len(names) > 0 {
			has = "it has " + strings.Join(names, ", ")
		}
		return nil, nil, notFound("interface %q not found on host %s (%s)", req.Interface, id, has)
	})
	if err != nil {
		return nil, err
	}
	return &labv1.SetImpairmentResponse{Host: st.Hosts[id]}, nil
}
