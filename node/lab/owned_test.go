package lab

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestKeysOwned fails when a package under node/ or cmd/ other than this
// one builds or splits store keys by hand: a string literal of the key
// layout ("labs/...", ".../hosts/...", "nodes/...") or strings.Split of a
// record's Key. Resource names go through this package's helpers. Tests
// are exempt (they may write records as they like), and so is labctl: an
// API client that handles the names the API returns, never the store, and
// must not link the daemon's model.
func TestKeysOwned(t *testing.T) {
	root := filepath.Join("..", "..")
	exempt := map[string]bool{
		filepath.Join(root, "node", "lab"):   true,
		filepath.Join(root, "cmd", "labctl"): true,
	}
	for _, top := range []string{"node", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if exempt[path] {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			for _, p := range keyUses(t, path) {
				t.Errorf("%s: store keys are node/lab's (use its name helpers)", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// keyUses lists where the file at path builds or splits store keys.
func keyUses(t *testing.T, path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(n.Value)
			if err == nil && layoutLiteral(s) {
				out = append(out, fset.Position(n.Pos()).String()+" literal "+n.Value)
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Split" || len(n.Args) == 0 {
				return true
			}
			if arg, ok := n.Args[0].(*ast.SelectorExpr); ok && arg.Sel.Name == "Key" {
				out = append(out, fset.Position(n.Pos()).String()+" splits a record key")
			}
		}
		return true
	})
	return out
}

// layoutLiteral reports whether s is a piece of the key layout. Message
// templates that show the layout ("labs/{lab}/hosts/{host}") are fine.
func layoutLiteral(s string) bool {
	if strings.Contains(s, "{") {
		return false
	}
	return strings.HasPrefix(s, labsPrefix) || strings.HasPrefix(s, nodesPrefix) ||
		strings.Contains(s, "/"+string(Networks)+"/") || strings.Contains(s, "/"+string(Hosts)+"/") ||
		s == "/"+string(Networks) || s == "/"+string(Hosts)
}

// TestKeysOwnedCatches shows the check finding what it is for.
func TestKeysOwnedCatches(t *testing.T) {
	for _, s := range []string{"labs/", "labs/" + "x/hosts/", "/hosts/", "nodes/"} {
		if !layoutLiteral(s) {
			t.Errorf("layoutLiteral(%q) = false", s)
		}
	}
	for _, s := range []string{"%q is not a host name (labs/{lab}/hosts/{host})", "hosts", "networks", "eth0"} {
		if layoutLiteral(s) {
			t.Errorf("layoutLiteral(%q) = true", s)
		}
	}
}
