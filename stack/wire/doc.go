// Package wire holds the packet formats of the lab's TCP/IP stack.
//
// Each header has two forms, as smoltcp's wire module and gVisor's header
// package do: a view over bytes (type IPv4 []byte) whose accessors are named
// after the RFC's fields, and a parsed struct with Parse and Encode. A view's
// accessors may only be used once its Check method has returned nil; after
// that every accessor is safe on hostile input. Untrusted bytes always go
// through Check (or Parse, which calls it).
package wire

import "errors"

// Errors returned by Check and Parse. They wrap ErrMalformed so callers can
// count every malformed packet under one reason.
var (
	ErrMalformed = errors.New("malformed packet")
	ErrTruncated = fmtErr("truncated")
	ErrVersion   = fmtErr("bad IP version")
	ErrHeaderLen = fmtErr("bad header length")
	ErrTotalLen  = fmtErr("bad total length")
	ErrChecksum  = fmtErr("bad checksum")
)

type wireError struct{ msg string }

func (e *wireError) Error() string        { return "malformed packet: " + e.msg }
func (e *wireError) Is(target error) bool { return target == ErrMalformed }

func fmtErr(msg string) error { return &wireError{msg} }
