//go:build linux

package netns

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do calls f on a locked OS thread that has entered the network namespace
// at path (a bind mount such as /var/run/netns/NAME, or /proc/PID/ns/net)
// and returns f's error. Sockets and devices f creates belong to that
// namespace for their whole life, whatever thread uses them later.
// Goroutines f starts do not run in the namespace.
//
// If the thread cannot go back to its own namespace, the thread is thrown
// away (its goroutine exits while locked, so the runtime terminates it) and
// Do reports the failure along with f's error: no other goroutine ever runs
// in the wrong namespace.
func Do(path string, f func() error) error {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(target)

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// thread-self, not self: namespaces are per thread and self is
		// the main thread.
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open own namespace: %w", err)
			return
		}
		defer unix.Close(home)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", path, err)
			return
		}
		ferr := f()
		if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("netns: return from %s: %w", path, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
