package node_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the import path of labnet's module; patterns in depRules
// without a domain are relative to it.
const module = "github.com/labnet-dev/labnet"

// A depRule says: the packages of from, and every package they link
// (their non-test dependencies), must not import a package of not. The
// stack's own rules are in stack/deps_test.go.
type depRule struct {
	from []string // "p" is p itself, "p/..." p and the packages under it
	not  []string
	// direct restricts the rule to from's own imports: what they link
	// through other packages is those packages' business.
	direct bool
	// except are packages whose dependencies are theirs: a chain through
	// one of them is not held against from.
	except []string
	why    string
}

// client is what labctl must not link. It may link stack/wire, the
// packet views: a leaf with no stack behaviour (docs/decisions.md).
var client = []string{"stack", "stack/tcp/...", "stack/udp/...", "stack/vclock/...", "node/..."}

var depRules = []depRule{
	{
		from: []string{"cmd/labctl/..."}, not: client,
		why: "labctl is a client: it links the API, the formats (format/...) and the stack's packet views (stack/wire), never the stack or the daemon",
	},
	{
		from: []string{"format/..."}, not: client,
		why: "labctl and labd share the formats, so they link only what labctl may",
	},
	{
		from: []string{"node/fabric"}, not: []string{"node/overlay/..."},
		why: "the fabric sends to other nodes through its Remote interface; the daemon's packet path plugs the overlay in",
	},
	{
		from: []string{"node/lab/...", "node/probe/...", "node/identity/..."}, not: []string{"google.golang.org/grpc/..."},
		except: []string{"proto/lab/v1"}, // the generated package holds the service stubs beside the messages
		why:    "the lab model and the probes are plain Go APIs; gRPC is node/api's",
	},
	{
		from: []string{"node/api"}, not: []string{"stack", "stack/tcp/...", "stack/udp/...", "stack/wire/...", "node/fabric/..."}, direct: true,
		why: "node/api translates protobuf to the lab model and the probes; packets, TCP and UDP are theirs, reached through the live-host interface",
	},
	{
		from: []string{"node/api"}, not: []string{"node/fabric/...", "node/overlay/...", "node/runtime/...", "node/cluster/..."},
		why: "the API depends on no part of the packet path, nor on the daemon that implements its live-host interface",
	},
	{
		from: []string{"node/api"}, not: []string{"node/control/...", "github.com/hashicorp/raft/..."},
		why: "the API writes through its Writer interface and knows a refused write by its NotLeader method; raft is the control plane's",
	},
}

// TestDeps checks depRules against the import graph `go list` reports.
func TestDeps(t *testing.T) {
	graph := importGraph(t)
	for _, r := range depRules {
		t.Run(strings.Join(r.from, ","), func(t *testing.T) {
			roots := matching(graph, r.from)
			if len(roots) == 0 {
				t.Skipf("no package matches %v yet", r.from)
			}
			verb := "link"
			if r.direct {
				verb = "import"
			}
			for _, chain := range r.violations(graph, roots) {
				t.Errorf("%s must not %s %s: %s\n\t(%s)",
					strings.Join(r.from, " and "), verb, short(chain[len(chain)-1]), chainString(chain), r.why)
			}
		})
	}
}

// importGraph maps every package of the module and every package they
// depend on (tests aside) to its imports.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatalf("not in a module (go env GOMOD = %q)", gomod)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = filepath.Dir(gomod)
	out, err = cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps ./...: %v\n%s", err, msg)
	}
	graph := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			graph[f[0]] = f[1:]
		}
	}
	if _, ok := graph[module+"/cmd/labctl"]; !ok {
		t.Fatalf("go list did not list cmd/labctl; output:\n%s", out)
	}
	return graph
}

// violations returns, for every package of r.not that the roots link, the
// shortest import chain from a root to it. A chain stops at the first
// forbidden package.
func (r depRule) violations(graph map[string][]string, roots []string) [][]string {
	parent := map[string]string{}
	seen := map[string]bool{}
	queue := slices.Clone(roots)
	for _, p := range roots {
		seen[p] = true
	}
	var bad [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if !slices.Contains(roots, p) && (r.direct || matchAny(r.except, p)) {
			continue
		}
		for _, imp := range graph[p] {
			if seen[imp] {
				continue
			}
			seen[imp] = true
			parent[imp] = p
			if matchAny(r.not, imp) {
				chain := []string{imp}
				for q := imp; parent[q] != ""; q = parent[q] {
					chain = append(chain, parent[q])
				}
				slices.Reverse(chain)
				bad = append(bad, chain)
				continue
			}
			queue = append(queue, imp)
		}
	}
	return bad
}

// matching returns the packages of graph that patterns match, sorted.
func matching(graph map[string][]string, patterns []string) []string {
	var out []string
	for p := range graph {
		if matchAny(patterns, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return match(pat, pkg) })
}

// match reports whether pkg is pattern's package ("p") or, for "p/...", p
// or a package under it. A pattern without a domain is in the module.
func match(pattern, pkg string) bool {
	if first, _, _ := strings.Cut(pattern, "/"); !strings.Contains(first, ".") {
		pattern = module + "/" + pattern
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// short drops the module's prefix.
func short(pkg string) string {
	if s, ok := strings.CutPrefix(pkg, module+"/"); ok {
		return s
	}
	return pkg
}

func chainString(chain []string) string {
	s := make([]string, len(chain))
	for i, p := range chain {
		s[i] = short(p)
	}
	return strings.Join(s, " imports ")
}

// TestDepRuleChains checks the rule checker itself on a small graph, so
// that TestDeps cannot pass by matching nothing.
func TestDepRuleChains(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	graph := map[string][]string{
		m("cmd/cli"):             {"fmt", m("format/cap"), m("proto/v1")},
		m("format/cap"):          {m("stack/wire"), m("stack")},
		m("stack"):               {m("stack/wire")},
		m("stack/wire"):          {"encoding/binary"},
		m("proto/v1"):            {"google.golang.org/grpc"},
		m("cmd/b"):               {m("nodeish"), m("node/x")},
		m("nodeish"):             {}, // a sibling of node/, not under it
		m("node/x"):              {},
		m("api"):                 {m("probe"), m("fabric")},
		m("probe"):               {m("tcp")},
		"google.golang.org/grpc": {},
	}
	tests := []struct {
		name  string
		rule  depRule
		roots []string
		want  []string // chains, as chainString writes them
	}{
		{"transitive, shortest chain", depRule{not: []string{"stack"}}, []string{m("cmd/cli")},
			[]string{"cmd/cli imports format/cap imports stack"}},
		{"stack is not stack/wire", depRule{not: []string{"stack/wire/..."}}, []string{m("stack")},
			[]string{"stack imports stack/wire"}},
		{"exact pattern", depRule{not: []string{"stack"}}, []string{m("stack")}, nil},
		{"node/... is not nodeish", depRule{not: []string{"node/..."}}, []string{m("cmd/b")},
			[]string{"cmd/b imports node/x"}},
		{"other domains", depRule{not: []string{"google.golang.org/grpc/..."}}, []string{m("cmd/cli")},
			[]string{"cmd/cli imports proto/v1 imports google.golang.org/grpc"}},
		{"except", depRule{not: []string{"google.golang.org/grpc/..."}, except: []string{"proto/v1"}}, []string{m("cmd/cli")}, nil},
		{"direct: own imports only", depRule{not: []string{"tcp", "fabric"}, direct: true}, []string{m("api")},
			[]string{"api imports fabric"}},
		{"transitive", depRule{not: []string{"tcp", "fabric"}}, []string{m("api")},
			[]string{"api imports fabric", "api imports probe imports tcp"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range tc.rule.violations(graph, tc.roots) {
				got = append(got, chainString(c))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("violations = %q, want %q", got, tc.want)
			}
		})
	}
}
