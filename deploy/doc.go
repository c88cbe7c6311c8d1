// Package deploy tests the deployment files next to it: the Kubernetes base
// (built with kustomize, decoded strictly into the API types, and run as
// labd processes with the arguments and environment its pods get), the
// Dockerfile (linted) and the compose file.
//
// It is its own module so that the Kubernetes and kustomize libraries stay
// out of labnet's go.mod; the tests build labd and labctl from the parent
// module with the go command.
package deploy
