package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/labnet-dev/labnet/node/identity"
)

// A node enrolment token (labd --enroll, from `labctl node invite`) is all
// a new node needs to enrol, as k3s's K10<hash>:: tokens are: where to
// enrol (the API address of a node that holds the CA), the CA's hash to
// pin that connection to, and the invite's secret (an identity token,
// lnt_{id}_{secret}, whose hash the invite record stores). Its form is
//
//	lne1:BASE64URL(JSON {"api":"HOST:PORT","ca":"sha256:HEX","key":"lnt_..."})
//
// with no padding and no other fields; "lne1" versions the form.

const enrollTokenPrefix = "lne1:"

// maxEnrollToken bounds a token's length before it is decoded.
const maxEnrollToken = 1024

// EnrollToken is a parsed node enrolment token.
type EnrollToken struct {
	API    string `json:"api"` // host:port of the API to enrol at
	CAHash string `json:"ca"`  // auth.CAHash of the cluster CA
	Key    string `json:"key"` // the invite's identity token
}

// String is the token as labd --enroll takes it.
func (t EnrollToken) String() string {
	b, _ := json.Marshal(t)
	return enrollTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ErrMalformedEnrollToken is a string that is not a node enrolment token.
var ErrMalformedEnrollToken = errors.New("not a node enrolment token (lne1:..., from `labctl node invite`)")

// ParseEnrollToken parses and checks a node enrolment token.
func ParseEnrollToken(s string) (EnrollToken, error) {
	rest, ok := strings.CutPrefix(s, enrollTokenPrefix)
	if !ok || len(s) > maxEnrollToken {
		return EnrollToken{}, ErrMalformedEnrollToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return EnrollToken{}, fmt.Errorf("%w: %v", ErrMalformedEnrollToken, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var t EnrollToken
	if err := dec.Decode(&t); err != nil {
		return EnrollToken{}, fmt.Errorf("%w: %v", ErrMalformedEnrollToken, err)
	}
	if dec.More() {
		return EnrollToken{}, fmt.Errorf("%w: data after the JSON object", ErrMalformedEnrollToken)
	}
	host, port, err := net.SplitHostPort(t.API)
	if err != nil || host == "" || port == "" || strings.ContainsAny(t.API, "/ \t\n") {
		return EnrollToken{}, fmt.Errorf("%w: api %q is not host:port", ErrMalformedEnrollToken, t.API)
	}
	if t.CAHash, err = ParseCAHash(t.CAHash); err != nil {
		return EnrollToken{}, fmt.Errorf("%w: ca: %v", ErrMalformedEnrollToken, err)
	}
	if _, _, err := identity.ParseToken(t.Key); err != nil {
		return EnrollToken{}, fmt.Errorf("%w: key: %v", ErrMalformedEnrollToken, err)
	}
	return t, nil
}
