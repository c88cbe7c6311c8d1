// Package tun connects a stack.Stack to the Linux kernel through a TUN
// device: a layer-3 interface whose packets the kernel hands to us (reads)
// and takes from us (writes) as bare IP packets. It is how labnet's own
// stack talks to the kernel's, for interop tests and for a lab that reaches
// real hosts.
//
// Creating a TUN device changes the kernel's network: Open creates it in the
// caller's network namespace, OpenInNamespace in another one. Tests only ever
// use OpenInNamespace with a namespace they create and remove themselves
// (package nstest), so nothing they do is visible outside it (DESIGN.md,
// "Testing").
//
// TUN devices exist on Linux only; elsewhere Open and OpenInNamespace return
// an error that wraps errors.ErrUnsupported.
package tun

import "errors"

// ErrClosed is returned by ReadPacket and WritePacket on a closed Device.
var ErrClosed = errors.New("tun: device closed")
