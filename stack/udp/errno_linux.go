package udp

import "syscall"

// errnoSourceIsolated is what Linux reports for ICMP "source host
// isolated" (RFC 1122 §3.2.2.1 code 8): ENONET.
const errnoSourceIsolated = syscall.ENONET
