package metrics

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/node/auth"
)

func TestAPICalls(t *testing.T) {
	// The daemon converts auth's counts as they are.
	calls := []auth.CallCount{
		{Method: "/lab.v1.LabService/GetHost", Outcome: "ok", Count: 3},
		{Method: "/lab.v1.LabService/GetHost", Outcome: "denied", Count: 1},
		{Method: "/lab.v1.LabService/GetHost", Outcome: "unauthenticated", Count: 0},
	}
	reg := New(Sources{APICalls: func(yield func(APICall) bool) {
		for _, c := range calls {
			if !yield(APICall(c)) {
				return
			}
		}
	}})
	got := only(scrape(t, serve(t, reg)), "labnet_")
	want := map[string]string{
		`labnet_api_calls_total{method="/lab.v1.LabService/GetHost",outcome="ok"}`:              "3",
		`labnet_api_calls_total{method="/lab.v1.LabService/GetHost",outcome="denied"}`:          "1",
		`labnet_api_calls_total{method="/lab.v1.LabService/GetHost",outcome="unauthenticated"}`: "0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
