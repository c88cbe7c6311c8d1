package node

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestTunFlags(t *testing.T) {
	home := env(map[string]string{"HOME": "/h"})
	for _, tc := range []struct {
		args    []string
		wantErr string
		kernel  string // addresses of the link, when valid
		router  string
	}{
		{args: nil},
		{args: []string{"--tun", "labtun0", "--tun-router", "demo/r1"}, kernel: "[10.254.0.1/30]", router: "[10.254.0.2/30]"},
		{args: []string{"--tun", "t0", "--tun-router", "demo/r1", "--tun-net", "192.168.9.0/24, fd00:9::/64", "--tun-routes", "10.0.0.0/16,fd00::/16"},
			kernel: "[192.168.9.1/24 fd00:9::1/64]", router: "[192.168.9.2/24 fd00:9::2/64]"},
		{args: []string{"--tun", "t0"}, wantErr: "--tun-router"},
		{args: []string{"--tun", "t0", "--tun-router", "r1"}, wantErr: "--tun-router"},
		{args: []string{"--tun", "t0", "--tun-router", "demo/r1/x"}, wantErr: "--tun-router"},
		{args: []string{"--tun", "a-name-far-too-long", "--tun-router", "demo/r1"}, wantErr: "--tun"},
		{args: []string{"--tun", "t0", "--tun-router", "demo/r1", "--tun-net", "10.0.0.0/31"}, wantErr: "no room"},
		{args: []string{"--tun", "t0", "--tun-router", "demo/r1", "--tun-net", "10.0.0.0/30,10.1.0.0/30"}, wantErr: "one prefix per address family"},
		{args: []string{"--tun", "t0", "--tun-router", "demo/r1", "--tun-net", ""}, wantErr: "--tun-net"},
		{args: []string{"--tun", "t0", "--tun-router", "demo/r1", "--tun-routes", "10.0.0.0"}, wantErr: "--tun-routes"},
		{args: []string{"--tun-routes", "10.0.0.0/8"}, wantErr: "need --tun"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c, err := ParseFlags(tc.args, home, &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kernel, router := c.Tun.addrs()
			if tc.kernel != "" && (fmt.Sprint(kernel) != tc.kernel || fmt.Sprint(router) != tc.router) {
				t.Errorf("link addresses: kernel %v, router %v; want %s, %s", kernel, router, tc.kernel, tc.router)
			}
		})
	}
	c, _ := ParseFlags(nil, env(map[string]string{"HOME": "/h", "LABD_TUN": "t9", "LABD_TUN_ROUTER": "a/b", "LABD_TUN_ROUTES": "10.0.0.0/8"}), &bytes.Buffer{})
	if c.Tun.Device != "t9" || c.Tun.Router != "a/b" || len(c.Tun.Routes) != 1 || c.Tun.Routes[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("from the environment: %+v", c.Tun)
	}
}
