//go:build !linux

package netns

import (
	"errors"
	"fmt"
	"runtime"
)

// Do fails: network namespaces are Linux-only.
func Do(path string, f func() error) error {
	return fmt.Errorf("netns: network namespaces are Linux-only, not %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
