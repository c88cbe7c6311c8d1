package topology

import (
	"unicode"
	"unicode/utf8"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"gopkg.in/yaml.v3"
)

// DefaultLab is the lab a file without a name describes.
const DefaultLab = "default"

// The Go shape of a topology file. The yaml tags are the file's field names,
// both for decoding and for the shape check in check.go, which reads them by
// reflection: a field added here is accepted everywhere.

type file struct {
	Name        text `yaml:"name,omitempty"`
	Description text `yaml:"description,omitempty"`
	// Shared lets every user view the lab, not only its owner.
	Shared   bool          `yaml:"shared,omitempty"`
	Networks []fileNetwork `yaml:"networks,omitempty"`
	Hosts    []fileHost    `yaml:"hosts,omitempty"`
}

type fileNetwork struct {
	Name text   `yaml:"name,omitempty"`
	IPv4 text   `yaml:"ipv4,omitempty"`
	IPv6 text   `yaml:"ipv6,omitempty"`
	MTU  uint32 `yaml:"mtu,omitempty"`
}

type fileHost struct {
	Name       text `yaml:"name,omitempty"`
	Forwarding bool `yaml:"forwarding,omitempty"`
	Node       text `yaml:"node,omitempty"`
	// Owner is a user who operates the host without owning the lab.
	Owner      text            `yaml:"owner,omitempty"`
	Interfaces []fileInterface `yaml:"interfaces,omitempty"`
	Routes     []fileRoute     `yaml:"routes,omitempty"`
	Services   []text          `yaml:"services,omitempty"`
	// Failover false keeps the host on its node when the node is gone.
	Failover *bool `yaml:"failover,omitempty"`
	// Shorthands for a default route; Parse expands them into Routes and
	// Marshal never writes them.
	Gateway  text `yaml:"gateway,omitempty"`
	Gateway6 text `yaml:"gateway6,omitempty"`
}

type fileInterface struct {
	Network text       `yaml:"network,omitempty"`
	IPv4    text       `yaml:"ipv4,omitempty"`
	IPv6    text       `yaml:"ipv6,omitempty"`
	Name    text       `yaml:"name,omitempty"`
	Impair  fileImpair `yaml:"impair,omitempty"`
}

// interfaceFields is fileInterface without its YAML methods, so that they
// can decode and encode the mapping form without calling themselves.
type interfaceFields fileInterface

// UnmarshalYAML accepts an interface written as a bare network name
// ("- lan1") as well as the mapping form ("- {network: lan1}").
func (i *fileInterface) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*i = fileInterface{}
		return n.Decode(&i.Network)
	}
	return n.Decode((*interfaceFields)(i))
}

// MarshalYAML writes an interface that only names its network in the bare
// form.
func (i fileInterface) MarshalYAML() (any, error) {
	if i.Network != "" && i == (fileInterface{Network: i.Network}) {
		return i.Network, nil
	}
	return interfaceFields(i), nil
}

// text is a string in a topology file. It only differs from string in how
// it is written: see MarshalYAML.
type text string

// MarshalYAML double-quotes a string holding a line break or another
// control character. yaml.v3 would write some of them as block scalars that
// do not read back the same (a lone "\n" comes back as ""); in double quotes
// they are escapes, which always do.
func (s text) MarshalYAML() (any, error) {
	if !utf8.ValidString(string(s)) || !hasControl(string(s)) {
		return string(s), nil // yaml.v3 writes invalid UTF-8 as !!binary
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(s), Style: yaml.DoubleQuotedStyle}, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r != ' ' && !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

type fileRoute struct {
	To  text `yaml:"to,omitempty"`
	Via text `yaml:"via,omitempty"`
}

// toProto converts a checked file to the API's Topology, expanding the
// gateway shorthands into routes after the host's own routes.
func (f *file) toProto() *labv1.Topology {
	t := &labv1.Topology{Lab: string(f.Name), Description: string(f.Description), Shared: f.Shared}
	if t.Lab == "" {
		t.Lab = DefaultLab
	}
	for _, n := range f.Networks {
		t.Networks = append(t.Networks, &labv1.Network{
			Name: string(n.Name),
			Ipv4: string(n.IPv4),
			Ipv6: string(n.IPv6),
			Mtu:  n.MTU,
		})
	}
	for _, h := range f.Hosts {
		ph := &labv1.Host{Name: string(h.Name), Forwarding: h.Forwarding, Node: string(h.Node), Owner: string(h.Owner)}
		for _, i := range h.Interfaces {
			ph.Interfaces = append(ph.Interfaces, &labv1.Interface{
				Name:    string(i.Name),
				Network: string(i.Network),
				Ipv4:    string(i.IPv4),
				Ipv6:    string(i.IPv6),
				Impair:  i.Impair.toProto(),
			})
		}
		for _, r := range h.Routes {
			ph.Routes = append(ph.Routes, &labv1.Route{To: string(r.To), Via: string(r.Via)})
		}
		for _, svc := range h.Services {
			ph.Services = append(ph.Services, string(svc))
		}
		ph.NoFailover = h.Failover != nil && !*h.Failover
		if h.Gateway != "" {
			ph.Routes = append(ph.Routes, &labv1.Route{To: "default", Via: string(h.Gateway)})
		}
		if h.Gateway6 != "" {
			ph.Routes = append(ph.Routes, &labv1.Route{To: "default", Via: string(h.Gateway6)})
		}
		t.Hosts = append(t.Hosts, ph)
	}
	return t
}

// fromProto is the reverse of toProto. Routes stay routes: the shorthands are
// input only, so Parse(Marshal(t)) gives back t's routes in t's order.
func fromProto(t *labv1.Topology) *file {
	f := &file{Name: text(t.GetLab()), Description: text(t.GetDescription()), Shared: t.GetShared()}
	for _, n := range t.GetNetworks() {
		f.Networks = append(f.Networks, fileNetwork{
			Name: text(n.GetName()),
			IPv4: text(n.GetIpv4()),
			IPv6: text(n.GetIpv6()),
			MTU:  n.GetMtu(),
		})
	}
	for _, h := range t.GetHosts() {
		fh := fileHost{Name: text(h.GetName()), Forwarding: h.GetForwarding(), Node: text(h.GetNode()), Owner: text(h.GetOwner())}
		for _, i := range h.GetInterfaces() {
			fh.Interfaces = append(fh.Interfaces, fileInterface{
				Network: text(i.GetNetwork()),
				IPv4:    text(i.GetIpv4()),
				IPv6:    text(i.GetIpv6()),
				Name:    text(i.GetName()),
				Impair:  impairFromProto(i.GetImpair()),
			})
		}
		for _, r := range h.GetRoutes() {
			fh.Routes = append(fh.Routes, fileRoute{To: text(r.GetTo()), Via: text(r.GetVia())})
		}
		for _, svc := range h.GetServices() {
			fh.Services = append(fh.Services, text(svc))
		}
		if h.GetNoFailover() {
			no := false
			fh.Failover = &no
		}
		f.Hosts = append(f.Hosts, fh)
	}
	return f
}
