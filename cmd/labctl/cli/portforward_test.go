package cli

import "testing"

func TestParsePortPair(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want portPair
		err  bool
	}{
		{in: "80", want: portPair{80, 80}},
		{in: "8080:80", want: portPair{8080, 80}},
		{in: ":80", want: portPair{0, 80}},
		{in: "0:80", want: portPair{0, 80}},
		{in: "80:", err: true},
		{in: "80:0", err: true},
		{in: "0", err: true},
		{in: "http", err: true},
		{in: "8080:http", err: true},
		{in: "70000", err: true},
		{in: "1:2:3", err: true},
		{in: "-1:80", err: true},
	} {
		got, err := parsePortPair(tc.in)
		if (err != nil) != tc.err || !tc.err && got != tc.want {
			t.Errorf("parsePortPair(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}
