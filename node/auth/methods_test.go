package auth

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// labFiles are every file of proto/lab/v1: a new file with a service must
// be added here (TestEveryFileListed finds one that is not).
var labFiles = []protoreflect.FileDescriptor{
	labv1.File_lab_v1_auth_service_proto,
	labv1.File_lab_v1_capture_service_proto,
	labv1.File_lab_v1_control_service_proto,
	labv1.File_lab_v1_lab_service_proto,
	labv1.File_lab_v1_live_service_proto,
	labv1.File_lab_v1_node_service_proto,
	labv1.File_lab_v1_resources_proto,
	labv1.File_lab_v1_socket_service_proto,
}

func TestEveryFileListed(t *testing.T) {
	listed := map[string]bool{}
	for _, f := range labFiles {
		listed[f.Path()] = true
	}
	protoregistry.GlobalFiles.RangeFilesByPackage("lab.v1", func(f protoreflect.FileDescriptor) bool {
		if !listed[f.Path()] {
			t.Errorf("%s is not in labFiles", f.Path())
		}
		return true
	})
}

// TestEveryMethodHasRule fails for a method of labnet's API without a
// rule, and for a rule whose request type is not the method's (the rule
// would refuse every call).
func TestEveryMethodHasRule(t *testing.T) {
	ruled := map[string]bool{}
	n := 0
	for _, f := range labFiles {
		for i := range f.Services().Len() {
			sd := f.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				name := fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())
				n++
				r, ok := ruleOf(name)
				if !ok {
					t.Errorf("%s has no rule in methods.go", name)
					continue
				}
				ruled[name] = true
				if r.access != byPolicy {
					continue
				}
				mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range r.checks(newFakeDir(), mt.New().Interface()) {
					if c.Resource == "?" {
						t.Errorf("%s: the rule's request type is not %s", name, md.Input().FullName())
					}
				}
			}
		}
	}
	if n < 40 {
		t.Errorf("only %d methods found in the descriptors", n)
	}
	for name := range methods {
		if !ruled[name] && !strings.HasPrefix(name, "/grpc.") {
			t.Errorf("rule for %s, which no service has", name)
		}
	}
	for _, m := range []string{
		"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/grpc.health.v1.Health/List",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	} {
		if _, ok := ruleOf(m); !ok {
			t.Errorf("%s has no rule", m)
		}
	}
}

// TestChecks is the verb and resources of requests whose names are
// assembled from several fields.
func TestChecks(t *testing.T) {
	dir := newFakeDir()
	dir.setLab("l1", LabInfo{Owner: "alice"})
	tok := "abcdefghij"
	dir.tokens[tok] = Token{ID: tok, User: "bob"}
	for _, tc := range []struct {
		method string
		req    any
		want   string
	}{
		{"LabService/Apply", &labv1.ApplyRequest{Topology: &labv1.Topology{Lab: "l1"}}, "update labs/l1"},
		{"LabService/Apply", &labv1.ApplyRequest{Topology: &labv1.Topology{Lab: "l2"}}, "create labs/l2"},
		{"LabService/Apply", &labv1.ApplyRequest{}, "create labs/default"},
		{"LabService/DeleteTopology", &labv1.DeleteTopologyRequest{}, "delete labs/default"},
		{"LabService/CreateLab", &labv1.CreateLabRequest{LabId: "x"}, "create labs/x"},
		{"LabService/CreateHost", &labv1.CreateHostRequest{Parent: "labs/l1"}, "create labs/l1/hosts"},
		{"LabService/CreateNetwork", &labv1.CreateNetworkRequest{Parent: "labs/l1"}, "create labs/l1/networks"},
		{"LabService/Watch", &labv1.WatchRequest{}, "watch labs"},
		{"LabService/SetImpairment", &labv1.SetImpairmentRequest{Host: "labs/l1/hosts/r"}, "impair labs/l1/hosts/r"},
		{"CaptureService/Capture", &labv1.CaptureRequest{Lab: "labs/l1", Targets: []string{"h1", "r:eth1", "net/lan"}},
			"capture labs/l1/hosts/h1, capture labs/l1/hosts/r, capture labs/l1/networks/lan"},
		{"CaptureService/Capture", &labv1.CaptureRequest{Lab: "labs/l1"}, "capture labs/l1"},
		{"SocketService/Dial", &labv1.DialRequest{Event: &labv1.DialRequest_Data{}}, ""},
		{"SocketService/Accept", &labv1.AcceptRequest{Event: &labv1.AcceptRequest_Open{Open: &labv1.AcceptOpen{Host: "labs/l1/hosts/h"}}}, "exec labs/l1/hosts/h"},
		{"SocketService/Datagrams", &labv1.DatagramsRequest{Event: &labv1.DatagramsRequest_Open{Open: &labv1.DatagramsOpen{Host: "labs/l1/hosts/h"}}}, "exec labs/l1/hosts/h"},
		{"AuthService/CreateToken", &labv1.CreateTokenRequest{Parent: "users/alice"}, "create users/alice/tokens"},
		{"AuthService/ListTokens", &labv1.ListTokensRequest{Parent: "users/-"}, "list users/-/tokens"},
		{"AuthService/RevokeToken", &labv1.RevokeTokenRequest{Name: "users/alice/tokens/" + tok}, "delete users/bob/tokens/" + tok},
		{"AuthService/CreateUser", &labv1.CreateUserRequest{UserId: "carol"}, "create users/carol"},
		{"NodeService/PromoteNode", &labv1.PromoteNodeRequest{Name: "nodes/n2"}, "update nodes/n2"},
	} {
		r, ok := ruleOf("/lab.v1." + tc.method)
		if !ok {
			t.Fatalf("no rule for %s", tc.method)
		}
		var got []string
		for _, c := range r.checks(dir, tc.req) {
			got = append(got, string(c.Verb)+" "+c.Resource)
		}
		if s := strings.Join(got, ", "); s != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.method, tc.req, s, tc.want)
		}
	}
}
