// Package netns runs code inside another Linux network namespace on one
// locked OS thread, leaving the rest of the process where it is.
package netns
