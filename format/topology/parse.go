package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"gopkg.in/yaml.v3"
)

// Error is a problem with a topology file. Every error Parse returns is an
// *Error, and its message is one line: "line 14: hosts[1].interfaces[0]:
// unknown field "netwrk"", or with File set (ParseFile sets it)
// "two-lans.yaml:14: hosts[1].interfaces[0]: unknown field "netwrk"".
type Error struct {
	File string // the file's name as given to ParseFile; "" from Parse
	Line int    // 1-based line; 0 when unknown
	Path string // the field, like "hosts[1].interfaces[0]"; "" for the file as a whole
	Msg  string // what is wrong
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ParseFile reads and parses the topology file at path. Its errors start
// with path: "two-lans.yaml:14: ...".
func ParseFile(path string) (*labv1.Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file already
	}
	t, err := Parse(data)
	if e, ok := errors.AsType[*Error](err); ok {
		e.File = path
	}
	return t, err
}

// Parse parses one topology file. It checks the file's shape only (types,
// unknown fields, required names, the gateway shorthands); what the values
// mean is validated by the server when the topology is applied. The
// topology's lab is DefaultLab when the file names none, and its routes
// include those the gateway shorthands stand for.
func Parse(data []byte) (*labv1.Topology, error) {
	doc, err := document(data)
	if err != nil {
		return nil, err
	}
	if err := check(doc); err != nil {
		return nil, err
	}
	f, err := decode(doc)
	if err != nil {
		return nil, err
	}
	return f.toProto(), nil
}

// document returns the root node of the file's only YAML document.
func document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: "empty document: no topology"}
		}
		return nil, syntaxError(data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(data, err)
	default:
		return nil, &Error{Line: next.Line, Msg: "a second YAML document: one topology per file"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{Msg: "empty document: no topology"}
	}
	return doc.Content[0], nil
}

// decode decodes the root node of a checked file into its Go form, from
// the tree already parsed (parsing a 100,000-host file twice cost labctl a
// second). The check has already rejected everything yaml.v3 would,
// unknown fields included (which a Node's Decode does not look for), so an
// error here is a disagreement between the two: still reported, in
// yaml.v3's words.
func decode(root *yaml.Node) (*file, error) {
	var f file
	if err := root.Decode(&f); err != nil {
		return nil, yamlError(err)
	}
	return &f, nil
}

// syntaxError reports a YAML syntax error at the line where it is. The
// line in yaml.v3's message is often elsewhere: for parser errors it is the
// start of the enclosing block, counted from 0, and on the first line there
// is none. So find the first line at which the file, cut after that line,
// fails with the same complaint (by bisection: a cut before the problem
// parses, or fails differently; a cut after it fails the same).
func syntaxError(data []byte, err error) *Error {
	e := yamlError(err)
	var ends []int // ends[i] is the end of line i+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	line := sort.Search(len(ends), func(i int) bool {
		err := parseAll(data[:ends[i]])
		return err != nil && yamlError(err).Msg == e.Msg
	})
	if line < len(ends) {
		e.Line = line + 1
	}
	return e
}

// parseAll parses every document in data and returns the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// yamlError turns a yaml.v3 error into a one-line *Error.
func yamlError(err error) *Error {
	e := &Error{}
	var msgs []string
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
		e.Msg = "invalid YAML: "
	}
	if len(msgs) == 0 {
		msgs = []string{err.Error()}
	}
	first := msgs[0]
	if m := yamlLine.FindStringSubmatch(first); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		first = first[len(m[0]):]
	}
	e.Msg += strings.Join(strings.Fields(first), " ")
	if len(msgs) > 1 {
		e.Msg += fmt.Sprintf(" (and %d more)", len(msgs)-1)
	}
	return e
}
