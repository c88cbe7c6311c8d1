//go:build !linux

package udp

import "syscall"

// errnoSourceIsolated stands for ICMP "source host isolated" where the
// system has no ENONET (macOS, the BSDs): host unreachable is the nearest.
const errnoSourceIsolated = syscall.EHOSTUNREACH
