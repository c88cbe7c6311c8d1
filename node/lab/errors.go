package lab

import (
	"fmt"
	"strings"
)

// FieldViolation is one bad field: its path in the request (as
// "topology.hosts[1].interfaces[0].ipv4") or, for a stored resource the
// request did not name, the resource name and the field within it.
type FieldViolation struct {
	Field       string
	Description string
}

// Violations is the error validation returns: every bad field, in the
// order found. The API turns it into InvalidArgument with the fields named
// (AIP-193).
type Violations []FieldViolation

// Add records a bad field.
func (v *Violations) Add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err is v as an error; nil when there are none.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}

// Error names the first field, so that a CLI can print it as its one line.
func (v Violations) Error() string {
	if len(v) == 0 {
		return "no violations"
	}
	msg := v[0].Field + ": " + v[0].Description
	if len(v) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(v)-1)
	}
	return msg
}

// Field makes a field path: Field("topology", "hosts[1]") is
// "topology.hosts[1]"; empty parts are skipped.
func Field(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}
