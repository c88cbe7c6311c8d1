package topology

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// check walks the YAML tree of a topology file against the Go types in
// file.go and reports the first thing of the wrong shape with its line and
// field path. yaml.v3's own errors ("line 14: field netwrk not found in type
// topology.fileInterface") name neither the path nor, inside a custom
// unmarshaler such as fileInterface's, unknown fields at all: KnownFields
// does not reach Node.Decode. So this walk is where the user's errors come
// from, and the yaml.v3 decode that follows it is a backstop.
//
// It checks shape only: types, unknown and duplicate fields, required names
// and the gateway shorthands. What the values mean (CIDRs, addresses,
// references between networks and hosts) is the server's to judge.
func check(root *yaml.Node) error {
	// Every alias spends what it expands to; the file's own nodes are free.
	c := &checker{budget: 9*countNodes(root) + 1000}
	if isNull(root) {
		return &Error{Line: root.Line, Msg: "empty document: no topology"}
	}
	if root.Kind != yaml.MappingNode {
		return &Error{Line: root.Line, Msg: "a topology must be a mapping of " + fieldList(fileType)}
	}
	return c.check(root, "", fileType)
}

var (
	fileType      = reflect.TypeFor[file]()
	networkType   = reflect.TypeFor[fileNetwork]()
	hostType      = reflect.TypeFor[fileHost]()
	interfaceType = reflect.TypeFor[fileInterface]()
)

// required names the field each mapping type cannot do without.
var required = map[reflect.Type]string{
	networkType:   "name",
	hostType:      "name",
	interfaceType: "network",
}

type checker struct {
	// budget is how many more nodes aliases may add to the walk. Aliases let
	// a small file expand to a huge tree ("billion laughs"); the budget lets
	// the tree grow to ten times the file, which ordinary anchors never come
	// near.
	budget int
}

// check checks node n, found at path, against Go type t.
func (c *checker) check(n *yaml.Node, path string, t reflect.Type) error {
	n, err := c.deref(n)
	if err != nil {
		return err
	}
	if isNull(n) {
		return nil // null is the zero value, as yaml.v3 decodes it
	}
	switch t.Kind() {
	case reflect.Struct:
		return c.checkStruct(n, path, t)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return errAt(n, path, "must be a list")
		}
		for i, item := range n.Content {
			item, err := c.deref(item)
			if err != nil {
				return err
			}
			itemPath := fmt.Sprintf("%s[%d]", path, i)
			if isNull(item) {
				// yaml.v3 would drop it without a word.
				return errAt(item, itemPath, "empty list item")
			}
			if err := c.check(item, itemPath, t.Elem()); err != nil {
				return err
			}
		}
		return nil
	default:
		// A value with units (impair's percent, duration, bitrate) parses
		// itself: its error says what is wrong.
		if v, ok := reflect.New(t).Interface().(yaml.Unmarshaler); ok {
			if err := n.Decode(v); err != nil {
				return errAt(n, path, err.Error())
			}
			return nil
		}
		// Let yaml.v3 judge scalars, so that what passes here decodes there.
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			want, ok := scalarWant[t.Kind()]
			if !ok {
				want = "has the wrong type"
			}
			return errAt(n, path, want)
		}
		return nil
	}
}

var scalarWant = map[reflect.Kind]string{
	reflect.String: "must be a string",
	reflect.Bool:   "must be true or false",
	reflect.Uint32: "must be a whole number from 0 to 4294967295",
}

// deref resolves an alias, spending budget on what it stands for.
func (c *checker) deref(n *yaml.Node) (*yaml.Node, error) {
	if n.Kind != yaml.AliasNode {
		return n, nil
	}
	at := n
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c.budget -= countNodes(n)
	if c.budget < 0 {
		return nil, errAt(at, "", "aliases expand to too large a document")
	}
	return n, nil
}

func (c *checker) checkStruct(n *yaml.Node, path string, t reflect.Type) error {
	if t == interfaceType && n.Kind == yaml.ScalarNode {
		// The bare form: "- lan1".
		var network string
		if n.Decode(&network) != nil {
			return errAt(n, path, "must be a network name or a mapping of "+fieldList(t))
		}
		if network == "" {
			return errAt(n, join(path, "network"), "required")
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		want := "must be a mapping of "
		if t == interfaceType {
			want = "must be a network name or a mapping of "
		}
		return errAt(n, path, want+fieldList(t))
	}
	fields := fieldsOf(t)
	keys := map[string]*yaml.Node{}   // field name -> its key node
	values := map[string]*yaml.Node{} // field name -> its value node, aliases resolved
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := c.deref(n.Content[i])
		if err != nil {
			return err
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			return errAt(k, path, "merge keys (<<) are not supported")
		}
		var name string
		if k.Kind != yaml.ScalarNode || k.Decode(&name) != nil {
			return errAt(k, path, "field names must be strings")
		}
		ft, ok := fields[name]
		if !ok {
			return errAt(k, path, fmt.Sprintf("unknown field %q", name))
		}
		if first, dup := keys[name]; dup {
			return errAt(k, join(path, name), fmt.Sprintf("given twice (first on line %d)", first.Line))
		}
		v, err := c.deref(n.Content[i+1])
		if err != nil {
			return err
		}
		keys[name], values[name] = k, v
		if err := c.check(v, join(path, name), ft); err != nil {
			return err
		}
	}
	if name, ok := required[t]; ok && stringValue(values[name]) == "" {
		at := n
		if v := values[name]; v != nil {
			at = v
		}
		return errAt(at, join(path, name), "required")
	}
	if t == hostType {
		return checkGateways(path, keys, values)
	}
	return nil
}

// checkGateways checks a host's gateway shorthands: each must be an address
// of its family, and must not say again what an explicit default route of
// that family already says.
func checkGateways(path string, keys, values map[string]*yaml.Node) error {
	for _, g := range []struct {
		field  string
		is4    bool
		family string
	}{
		{"gateway", true, "IPv4"},
		{"gateway6", false, "IPv6"},
	} {
		s := stringValue(values[g.field])
		if s == "" {
			continue
		}
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Is4() != g.is4 || addr.Zone() != "" {
			return errAt(values[g.field], join(path, g.field), fmt.Sprintf("%q is not an %s address", s, g.family))
		}
		routes := values["routes"]
		if routes == nil || routes.Kind != yaml.SequenceNode {
			continue
		}
		for i, r := range routes.Content {
			to, via := stringValue(mapValue(r, "to")), stringValue(mapValue(r, "via"))
			if isDefault(to, via, g.is4) {
				return errAt(keys[g.field], join(path, g.field),
					fmt.Sprintf("conflicts with %s[%d]: both set the %s default route", join(path, "routes"), i, g.family))
			}
		}
	}
	return nil
}

// isDefault tells whether a route {to, via} is a default route of the given
// family: "default" via an address of that family, or a /0 prefix.
func isDefault(to, via string, is4 bool) bool {
	if to == "default" {
		addr, err := netip.ParseAddr(via)
		return err == nil && addr.Is4() == is4
	}
	p, err := netip.ParsePrefix(to)
	return err == nil && p.Bits() == 0 && p.Addr().Is4() == is4
}

// mapValue returns the value of key in mapping n, aliases resolved, or nil.
// It runs after the walk, on nodes already checked (and paid for).
func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var k string
		if resolve(n.Content[i]).Decode(&k) == nil && k == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// stringValue decodes a checked string field; "" when absent or null.
func stringValue(n *yaml.Node) string {
	var s string
	if n == nil || n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return ""
	}
	return s
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// countNodes counts the nodes of n's subtree as written, not following
// aliases.
func countNodes(n *yaml.Node) int {
	count := 1
	for _, c := range n.Content {
		count += countNodes(c)
	}
	return count
}

// fieldsOf maps the YAML field names of struct type t to their Go types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		fields[name] = f.Type
	}
	return fields
}

// fieldList lists the YAML field names of struct type t in file order.
func fieldList(t reflect.Type) string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func errAt(n *yaml.Node, path, msg string) *Error {
	return &Error{Line: n.Line, Path: path, Msg: msg}
}
