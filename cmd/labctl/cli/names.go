package cli

import (
	"context"
	"fmt"
	"strings"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Collections of the resource names labs/{lab}/{collection}/{id}.
const (
	collNetworks = "networks"
	collHosts    = "hosts"
)

// allLabs is the parent that lists networks or hosts of every lab.
const allLabs = "labs/-"

func labName(lab string) string { return "labs/" + lab }

// splitName splits a resource name: "labs/demo" is ("demo", "", ""),
// "labs/demo/hosts/h1" is ("demo", "hosts", "h1"), "nodes/n1" is ("",
// "nodes", "n1"). ok is false for anything else.
func splitName(name string) (lab, collection, id string, ok bool) {
	parts := strings.Split(name, "/")
	switch {
	case len(parts) == 2 && parts[0] == "labs" && parts[1] != "":
		return parts[1], "", "", true
	case len(parts) == 4 && parts[0] == "labs" && parts[1] != "" && parts[2] != "" && parts[3] != "":
		return parts[1], parts[2], parts[3], true
	case len(parts) == 2 && parts[0] == "nodes" && parts[1] != "":
		return "", "nodes", parts[1], true
	}
	return "", "", "", false
}

// shortID is the last segment of a resource name: "h1" for
// "labs/demo/hosts/h1".
func shortID(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// labOf is the lab of a resource name, or "" when it has none.
func labOf(name string) string {
	lab, _, _, _ := splitName(name)
	return lab
}

// kindID is the kubectl-style "kind/id" of a resource name: "lab/demo",
// "network/lan1", "host/h1", "node/n1". Unknown forms are returned as they
// are.
func kindID(name string) string {
	lab, coll, id, ok := splitName(name)
	if !ok {
		return name
	}
	switch coll {
	case "":
		return "lab/" + lab
	case collNetworks:
		return "network/" + id
	case collHosts:
		return "host/" + id
	case "nodes":
		return "node/" + id
	}
	return name
}

// singular is the word for one resource of a collection.
func singular(coll string) string {
	return strings.TrimSuffix(coll, "s")
}

// resolve turns a reference typed by the user into a resource name of coll
// (hosts or networks). A reference is "id", "lab/id" or the full name. A bare
// id is in --lab when it is set; otherwise it is looked up across every lab
// and must be in exactly one.
func (a *app) resolve(ctx context.Context, coll, ref string) (string, error) {
	what := singular(coll)
	if ref == "" {
		return "", fmt.Errorf("empty %s name", what)
	}
	if strings.HasPrefix(ref, "labs/") {
		if _, c, _, ok := splitName(ref); ok && c == coll {
			return ref, nil
		}
		return "", fmt.Errorf("invalid %s name %q (want labs/LAB/%s/ID)", what, ref, coll)
	}
	parts := strings.Split(ref, "/")
	switch {
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return labName(parts[0]) + "/" + coll + "/" + parts[1], nil
	case len(parts) != 1:
		return "", fmt.Errorf("invalid %s reference %q (want %s or LAB/%s)", what, ref, strings.ToUpper(what), strings.ToUpper(what))
	}
	if a.lab != "" {
		return labName(a.lab) + "/" + coll + "/" + ref, nil
	}

	names, err := a.listNames(ctx, coll, allLabs)
	if err != nil {
		return "", err
	}
	var matches []string
	for _, n := range names {
		if shortID(n) == ref {
			matches = append(matches, n)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%s %q not found", what, ref)
	case 1:
		return matches[0], nil
	}
	labs := make([]string, len(matches))
	for i, m := range matches {
		labs[i] = labOf(m)
	}
	return "", fmt.Errorf("%s %q is in several labs (%s): use --lab or LAB/%s", what, ref, strings.Join(labs, ", "), ref)
}

// listNames lists the names of the networks or hosts under parent.
func (a *app) listNames(ctx context.Context, coll, parent string) ([]string, error) {
	var names []string
	switch coll {
	case collHosts:
		hosts, err := a.listHosts(ctx, parent)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			names = append(names, h.GetName())
		}
	case collNetworks:
		nets, err := a.listNetworks(ctx, parent)
		if err != nil {
			return nil, err
		}
		for _, n := range nets {
			names = append(names, n.GetName())
		}
	default:
		return nil, fmt.Errorf("no collection %q", coll)
	}
	return names, nil
}

func (a *app) listLabs(ctx context.Context) ([]*labv1.Lab, error) {
	c, err := a.labs()
	if err != nil {
		return nil, err
	}
	return listAll(a, ctx, func(ctx context.Context, token string) ([]*labv1.Lab, string, error) {
		resp, err := c.ListLabs(ctx, &labv1.ListLabsRequest{PageToken: token})
		return resp.GetLabs(), resp.GetNextPageToken(), err
	})
}

func (a *app) listNetworks(ctx context.Context, parent string) ([]*labv1.Network, error) {
	c, err := a.labs()
	if err != nil {
		return nil, err
	}
	return listAll(a, ctx, func(ctx context.Context, token string) ([]*labv1.Network, string, error) {
		resp, err := c.ListNetworks(ctx, &labv1.ListNetworksRequest{Parent: parent, PageToken: token})
		return resp.GetNetworks(), resp.GetNextPageToken(), err
	})
}

func (a *app) listHosts(ctx context.Context, parent string) ([]*labv1.Host, error) {
	c, err := a.labs()
	if err != nil {
		return nil, err
	}
	return listAll(a, ctx, func(ctx context.Context, token string) ([]*labv1.Host, string, error) {
		resp, err := c.ListHosts(ctx, &labv1.ListHostsRequest{Parent: parent, PageToken: token})
		return resp.GetHosts(), resp.GetNextPageToken(), err
	})
}

func (a *app) listNodes(ctx context.Context) ([]*labv1.Node, error) {
	c, err := a.nodes()
	if err != nil {
		return nil, err
	}
	return listAll(a, ctx, func(ctx context.Context, token string) ([]*labv1.Node, string, error) {
		resp, err := c.ListNodes(ctx, &labv1.ListNodesRequest{PageToken: token})
		return resp.GetNodes(), resp.GetNextPageToken(), err
	})
}

// labRef turns a lab typed by the user ("demo" or "labs/demo") into its
// resource name.
func labRef(ref string) (string, error) {
	id := strings.TrimPrefix(ref, "labs/")
	if id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("invalid lab name %q", ref)
	}
	return labName(id), nil
}

// nodeRef turns a node typed by the user ("n1" or "nodes/n1") into its
// resource name.
func nodeRef(ref string) (string, error) {
	id := strings.TrimPrefix(ref, "nodes/")
	if id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("invalid node name %q", ref)
	}
	return "nodes/" + id, nil
}
