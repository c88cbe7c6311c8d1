package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is in the chain of the error for a gossip message that does
// not decode.
var ErrMalformed = errors.New("cluster: malformed message")

// A leave announcement is kindLeave | name length (uvarint) | name.
const kindLeave byte = 3

// maxNameLen bounds a node name in a leave announcement.
const maxNameLen = 255

func encodeLeave(name string) []byte {
	b := []byte{kindLeave}
	b = binary.AppendUvarint(b, uint64(len(name)))
	return append(b, name...)
}

func decodeLeave(b []byte) (string, error) {
	if len(b) < 1 || b[0] != kindLeave {
		return "", fmt.Errorf("%w: not a leave announcement", ErrMalformed)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n == 0 || n > maxNameLen || uint64(len(b)-1-k) != n {
		return "", fmt.Errorf("%w: leave announcement", ErrMalformed)
	}
	return string(b[1+k:]), nil
}
