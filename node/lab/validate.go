package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/labnet-dev/labnet/node/services"
)

var (
	ifaceNamePattern = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,14}$`) // Linux IFNAMSIZ
	nodeNamePattern  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`)
)

// FieldOf returns the request field path of a resource, or its resource name
// when the request did not name it (an existing resource broken by a change).
type FieldOf func(name string) string

// Validate checks the whole lab. Every problem is reported against the
// field that caused it. named lists the resources the request wrote, in
// request order: a clash between two hosts is reported on the later one,
// and never on a host the request did not name.
func Validate(st *State, field FieldOf, named []string) Violations {
	var v Violations
	nets := parseNetworks(st, field, &v)
	type owner struct{ host, iface string }
	owners := make(map[netip.Addr]owner, len(st.Hosts))
	inRequest := map[string]bool{}
	for _, name := range named {
		inRequest[name] = true
	}
	var order []string
	for _, id := range SortedKeys(st.Hosts) {
		if !inRequest[st.Hosts[id].Name] {
			order = append(order, id)
		}
	}
	for _, name := range named {
		if _, id, ok := ParseHostName(name); ok && st.Hosts[id] != nil {
			order = append(order, id)
		}
	}
	for _, id := range order {
		h := st.Hosts[id]
		f := field(h.Name)
		if h.Owner != "" && !ValidID(h.Owner) {
			v.Add(Field(f, "owner"), "%q is not a user id: it %s", h.Owner, IDRule)
		}
		if h.Node != "" && !nodeNamePattern.MatchString(h.Node) {
			v.Add(Field(f, "node"), "%q is not a node name", h.Node)
		}
		seenSvc := map[string]bool{}
		for i, name := range h.Services {
			fs := Field(f, fmt.Sprintf("services[%d]", i))
			if err := services.Validate(name); err != nil {
				v.Add(fs, "%v", err)
			} else if seenSvc[name] {
				v.Add(fs, "service %q appears twice", name)
			}
			seenSvc[name] = true
		}
		var connected []netip.Prefix
		local := map[netip.Addr]bool{}
		names := map[string]bool{}
		for i, ifc := range h.Interfaces {
			fi := Field(f, fmt.Sprintf("interfaces[%d]", i))
			if !ifaceNamePattern.MatchString(ifc.Name) {
				v.Add(Field(fi, "name"), "%q is not an interface name (a-z, 0-9, '.', '-', up to 15 characters, starting with a letter)", ifc.Name)
			} else if names[ifc.Name] {
				v.Add(Field(fi, "name"), "duplicate interface name %q", ifc.Name)
			}
			names[ifc.Name] = true
			ValidateImpairment(Field(fi, "impair"), ifc.Impair, &v)
			if ifc.Network == "" {
				v.Add(Field(fi, "network"), "required: the name of a network of lab %s", st.ID)
				continue
			}
			_, known := st.Networks[ifc.Network]
			if !known {
				v.Add(Field(fi, "network"), "unknown network %q%s", ifc.Network, knownList("networks", SortedKeys(st.Networks)))
				continue
			}
			pn, ok := nets[ifc.Network]
			if !ok {
				continue // the network itself is reported
			}
			for _, fam := range []struct {
				name   string
				value  string
				subnet netip.Prefix
				v4     bool
			}{{"ipv4", ifc.Ipv4, pn.v4, true}, {"ipv6", ifc.Ipv6, pn.v6, false}} {
				if fam.value == "" {
					continue
				}
				ff := Field(fi, fam.name)
				if !fam.subnet.IsValid() {
					v.Add(ff, "network %s has no %s prefix", ifc.Network, map[bool]string{true: "IPv4", false: "IPv6"}[fam.v4])
					continue
				}
				p, err := netip.ParsePrefix(fam.value)
				if err != nil || p.Addr().Is4() != fam.v4 || p.Addr().Is4In6() {
					v.Add(ff, "%q is not an %s address with prefix length", fam.value, map[bool]string{true: "IPv4", false: "IPv6"}[fam.v4])
					continue
				}
				if !fam.subnet.Contains(p.Addr()) {
					v.Add(ff, "%s is not in network %s (%s)", p.Addr(), ifc.Network, fam.subnet)
					continue
				}
				if p.Bits() != fam.subnet.Bits() {
					v.Add(ff, "prefix length /%d does not match network %s (%s)", p.Bits(), ifc.Network, fam.subnet)
					continue
				}
				if reason := reserved(p.Addr(), fam.subnet); reason != "" {
					v.Add(ff, "%s is the %s of network %s (%s)", p.Addr(), reason, ifc.Network, fam.subnet)
					continue
				}
				if o, dup := owners[p.Addr()]; dup {
					v.Add(ff, "address %s is already used by %s %s", p.Addr(), o.host, o.iface)
					continue
				}
				owners[p.Addr()] = owner{ID(h.Name), ifc.Name}
				local[p.Addr()] = true
				connected = append(connected, fam.subnet)
			}
		}
		validateRoutes(f, h, connected, local, &v)
	}
	return v
}

func knownList(what string, ids []string) string {
	if len(ids) == 0 {
		return fmt.Sprintf(" (the lab has no %s)", what)
	}
	return fmt.Sprintf(" (the lab has %s)", strings.Join(ids, ", "))
}
