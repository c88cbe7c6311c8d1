package node

import (
	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/runtime"
)

// hostsOf adapts the runtime to api.Hosts.
type hostsOf struct{ rt *runtime.Runtime }

func (h hostsOf) Host(name string) (api.LiveHost, bool) {
	host, ok := h.rt.Host(name)
	if !ok {
		return nil, false
	}
	return host, true
}

func (h hostsOf) Count() int { return h.rt.Count() }
