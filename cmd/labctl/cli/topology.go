package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/labnet-dev/labnet/format/topology"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// stdinName stands for standard input in messages about -f -.
const stdinName = "<stdin>"

// readTopologies parses every -f argument: a file, a directory (its *.yaml,
// *.yml and *.json files in name order) or "-" for standard input. It parses
// them all before anything is written, so a bad file changes nothing.
func (a *app) readTopologies(paths []string) ([]*labv1.Topology, error) {
	if len(paths) == 0 {
		return nil, errors.New("no topology file: use -f FILE (or -f - for standard input)")
	}
	var files []string
	stdin := false
	for _, p := range paths {
		switch {
		case p == "-":
			if stdin {
				return nil, errors.New("-f - given twice: standard input can be read only once")
			}
			stdin = true
			files = append(files, p)
		case isDir(p):
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			var found []string
			for _, e := range entries {
				switch strings.ToLower(filepath.Ext(e.Name())) {
				case ".yaml", ".yml", ".json":
					if !e.IsDir() {
						found = append(found, filepath.Join(p, e.Name()))
					}
				}
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", p)
			}
			slices.Sort(found)
			files = append(files, found...)
		default:
			files = append(files, p)
		}
	}
	var tops []*labv1.Topology
	for _, f := range files {
		var data []byte
		var err error
		name := f
		if f == "-" {
			name = stdinName
			data, err = io.ReadAll(a.stdin)
			if err != nil {
				err = fmt.Errorf("%s: %w", stdinName, err)
			}
		} else {
			data, err = os.ReadFile(f) // *fs.PathError names the file
		}
		if err != nil {
			return nil, err
		}
		t, err := a.parseTopology(name, data)
		if err != nil {
			return nil, err
		}
		tops = append(tops, t)
	}
	return tops, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// parseTopology is topology.ParseFile for a file already read, so that
// standard input works the same: its errors start with name and the line,
// "lab.yaml:14: hosts[1].interfaces[0]: unknown field "netwrk"".
func parseTopology(name string, data []byte) (*labv1.Topology, error) {
	t, err := topology.Parse(data)
	if e, ok := errors.AsType[*topology.Error](err); ok {
		e.File = name
	}
	return t, err
}
