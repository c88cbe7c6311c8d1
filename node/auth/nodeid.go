package auth

import (
	"crypto/x509"
	"net/url"
	"strings"
)

// A node's certificate names the node in a URI SAN "labnet://node/{name}";
// users have no certificates (they hold tokens), so a certificate of the
// cluster CA with such a URI is a node's.

// NodeURI is the URI SAN of node name's certificate.
func NodeURI(name string) *url.URL {
	return &url.URL{Scheme: "labnet", Host: "node", Path: "/" + name}
}

// NodeOf is the node a certificate names; ok is false when it names none.
// The caller has verified the certificate against the cluster CA.
func NodeOf(cert *x509.Certificate) (name string, ok bool) {
	if cert == nil {
		return "", false
	}
	for _, u := range cert.URIs {
		if u.Scheme == "labnet" && u.Host == "node" {
			name = strings.TrimPrefix(u.Path, "/")
			if name != "" && !strings.Contains(name, "/") {
				return name, true
			}
		}
	}
	return "", false
}

// ownerURI is the URI SAN that names the user who owns a node.
func ownerURI(user string) *url.URL {
	return &url.URL{Scheme: "labnet", Host: "user", Path: "/" + user}
}

// OwnerOf is the user a node certificate names as its owner
// ("labnet://user/{owner}"); ok is false when it names none.
func OwnerOf(cert *x509.Certificate) (owner string, ok bool) {
	if cert == nil {
		return "", false
	}
	for _, u := range cert.URIs {
		if u.Scheme == "labnet" && u.Host == "user" {
			owner = strings.TrimPrefix(u.Path, "/")
			if owner != "" && !strings.Contains(owner, "/") {
				return owner, true
			}
		}
	}
	return "", false
}
