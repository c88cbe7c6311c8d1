package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// none fills an empty table cell, as kubectl does.
const none = "<none>"

// newTabWriter aligns columns the way kubectl does: three spaces between
// columns.
func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
}

// writeTable prints a header and rows as aligned columns.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := newTabWriter(w)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// orNone returns s, or none when s is empty.
func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// marshalJSON is protojson with field names in lowerCamelCase and unset
// fields left out, re-indented by encoding/json: protojson deliberately
// varies its whitespace between builds, and golden files must not.
func marshalJSON(m proto.Message) ([]byte, error) {
	b, err := protojson.MarshalOptions{}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// printObjects prints resources as JSON or YAML: one resource as itself, a
// list as {"items": [...]}.
func (a *app) printObjects(items []proto.Message, single bool) error {
	var doc []byte
	if single && len(items) == 1 {
		b, err := marshalJSON(items[0])
		if err != nil {
			return err
		}
		doc = b
	} else {
		parts := make([][]byte, len(items))
		for i, m := range items {
			b, err := marshalJSON(m)
			if err != nil {
				return err
			}
			parts[i] = b
		}
		doc = append(append([]byte(`{"items":[`), bytes.Join(parts, []byte(","))...), "]}"...)
	}
	return a.printDocument(doc)
}

// printDocument prints a compact JSON document as -o asks: indented JSON, or
// YAML.
func (a *app) printDocument(doc []byte) error {
	switch a.output {
	case outputYAML:
		y, err := yaml.JSONToYAML(doc)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(y)
		return err
	default:
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := a.stdout.Write(buf.Bytes())
		return err
	}
}

// age is the AGE column: how long ago t was, or <unknown>.
func age(now time.Time, t *timestamppb.Timestamp) string {
	if t == nil || !t.IsValid() {
		return "<unknown>"
	}
	return humanDuration(now.Sub(t.AsTime()))
}

// humanDuration prints d as kubectl's AGE column does
// (k8s.io/apimachinery/pkg/util/duration.HumanDuration): exact while short,
// coarser as it grows.
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	switch {
	case seconds < -1:
		return "<invalid>"
	case seconds < 0:
		return "0s"
	case seconds < 60*2:
		return fmt.Sprintf("%ds", seconds)
	}
	minutes := int(d / time.Minute)
	switch {
	case minutes < 10:
		if s := int(d/time.Second) % 60; s != 0 {
			return fmt.Sprintf("%dm%ds", minutes, s)
		}
		return fmt.Sprintf("%dm", minutes)
	case minutes < 60*3:
		return fmt.Sprintf("%dm", minutes)
	}
	hours := int(d / time.Hour)
	switch {
	case hours < 8:
		if m := minutes % 60; m != 0 {
			return fmt.Sprintf("%dh%dm", hours, m)
		}
		return fmt.Sprintf("%dh", hours)
	case hours < 48:
		return fmt.Sprintf("%dh", hours)
	case hours < 24*8:
		if h := hours % 24; h != 0 {
			return fmt.Sprintf("%dd%dh", hours/24, h)
		}
		return fmt.Sprintf("%dd", hours/24)
	case hours < 24*365*2:
		return fmt.Sprintf("%dd", hours/24)
	case hours < 24*365*8:
		if dy := (hours / 24) % 365; dy != 0 {
			return fmt.Sprintf("%dy%dd", hours/24/365, dy)
		}
		return fmt.Sprintf("%dy", hours/24/365)
	}
	return fmt.Sprintf("%dy", hours/24/365)
}
