package topology

import (
	"bytes"
	"errors"
	"gopkg.in/yaml.v3"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzParse checks that Parse never panics, that its errors are one-line
// *Errors, that the shape check and yaml.v3 agree, and that what it accepts
// survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"{}",
		"hosts: [{name: h, interfaces: [lan1, {network: lan2, ipv4: 10.0.2.1}], gateway: 10.0.1.1}]",
		"hosts: [{name: h, gateway6: 'fd00::1', routes: [{to: '::/0', via: 'fd00::2'}]}]",
		"name: &a x\nhosts: [{name: *a, routes: &r [{to: a, via: b}]}, {name: b, routes: *r}]",
		"networks: [{name: n, mtu: 0x10}]\n---\n",
		"hosts:\n  - name: h\n    interfaces:\n      - netwrk: lan1\n",
		"hosts: [{name: h, interfaces: [{network: lan1, impair: {loss: 10%, delay: 20ms, jitter: 5ms, duplicate: 2%, reorder: 5%, corrupt: 0.5%, rate: 10mbit}}]}]",
		"hosts: [{name: h, interfaces: [{network: lan1, impair: {rate: 1.5Gbit, delay: 1h2m3.5s, loss: 1e-3%}}]}]",
		"hosts: [{name: h, interfaces: [{network: lan1, impair: {loss: '-0%', rate: 0, delay: 0s}}]}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := Parse(data)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("Parse error %T is not an *Error: %v", err, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") {
				t.Fatalf("Parse error is not one line: %q", msg)
			}
			// What passes the shape check must decode, even with
			// yaml.v3's own unknown-field check (which Parse, decoding the
			// checked tree, relies on the shape check for).
			if doc, err := document(data); err == nil && check(doc) == nil {
				if err := decodeStrict(data); err != nil {
					t.Fatalf("shape check passed but yaml.v3 failed: %v", err)
				}
			}
			return
		}
		out, err := Marshal(topo)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(data))): %v\n%s", err, out)
		}
		if !proto.Equal(topo, again) {
			t.Fatalf("round trip changed the topology:\n%v\n%v\n%s", topo, again, out)
		}
	})
}

// decodeStrict decodes data as yaml.v3 does with KnownFields: what the
// shape check must be at least as strict as.
func decodeStrict(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	return dec.Decode(&f)
}
