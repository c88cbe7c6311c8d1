package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/labnet-dev/labnet/node/identity"
)

func testEnrollToken(t testing.TB) EnrollToken {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := identity.NewToken()
	return EnrollToken{API: "127.0.0.1:7443", CAHash: CAHash(ca.Cert), Key: key}
}

func TestEnrollTokenRoundTrip(t *testing.T) {
	want := testEnrollToken(t)
	s := want.String()
	if !strings.HasPrefix(s, "lne1:") {
		t.Fatalf("token %q lacks its prefix", s)
	}
	got, err := ParseEnrollToken(s)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("parsed %+v; want %+v", got, want)
	}
}

func TestParseEnrollTokenRefuses(t *testing.T) {
	good := testEnrollToken(t)
	enc := func(json string) string { return "lne1:" + base64.RawURLEncoding.EncodeToString([]byte(json)) }
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no prefix", strings.TrimPrefix(good.String(), "lne1:")},
		{"other version", "lne2:" + strings.TrimPrefix(good.String(), "lne1:")},
		{"padding", good.String() + "="},
		{"not base64", "lne1:!!!"},
		{"not JSON", enc("nope")},
		{"unknown field", enc(`{"api":"a:1","ca":"` + good.CAHash + `","key":"` + good.Key + `","x":1}`)},
		{"trailing data", enc(`{"api":"a:1","ca":"` + good.CAHash + `","key":"` + good.Key + `"}{}`)},
		{"no api", enc(`{"ca":"` + good.CAHash + `","key":"` + good.Key + `"}`)},
		{"api without port", enc(`{"api":"a","ca":"` + good.CAHash + `","key":"` + good.Key + `"}`)},
		{"bad ca", enc(`{"api":"a:1","ca":"sha256:zz","key":"` + good.Key + `"}`)},
		{"bad key", enc(`{"api":"a:1","ca":"` + good.CAHash + `","key":"lnt_x"}`)},
		{"too long", "lne1:" + strings.Repeat("A", 2000)},
	} {
		if _, err := ParseEnrollToken(tc.in); !errors.Is(err, ErrMalformedEnrollToken) {
			t.Errorf("%s: err = %v; want ErrMalformedEnrollToken", tc.name, err)
		}
	}
}

func FuzzParseEnrollToken(f *testing.F) {
	f.Add(testEnrollToken(f).String())
	f.Add("lne1:")
	f.Add("lne1:e30")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseEnrollToken(s)
		if err != nil {
			return
		}
		// What parses comes back out as it went in.
		again, err := ParseEnrollToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q parsed to %+v, which reparses to %+v, %v", s, tok, again, err)
		}
	})
}
