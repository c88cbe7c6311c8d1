// Package proto holds labnet's public API definitions (package lab.v1 in
// lab/v1). The generated Go code is committed; after editing a .proto file,
// lint and regenerate from the repository root with:
//
//	go generate ./proto
//
// which runs buf and the protoc plugins pinned in tools/go.mod.
package proto

//go:generate sh -c "cd .. && go tool -modfile=tools/go.mod buf lint && go tool -modfile=tools/go.mod buf generate"
