package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateCA(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := LoadOrCreateCA(dir)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateCA: created %v, err %v", created, err)
	}
	if ca.Cert.Subject.CommonName != "labnet cluster CA" || !ca.Cert.IsCA {
		t.Errorf("CA certificate: CN %q, IsCA %v", ca.Cert.Subject.CommonName, ca.Cert.IsCA)
	}
	if pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.Cert.PublicKey)
	}
	if life := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("CA lives %v, want ten years", life)
	}
	for file, mode := range map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", file, fi.Mode().Perm(), mode)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	again, created, err := LoadOrCreateCA(dir)
	if err != nil || created {
		t.Fatalf("reload: created %v, err %v", created, err)
	}
	if !again.Cert.Equal(ca.Cert) || !samePublic(again.Cert, again.Key) {
		t.Error("reload gave another CA")
	}
	if CAHash(again.Cert) != CAHash(ca.Cert) {
		t.Error("reload changed the CA hash")
	}
}

// A CA directory in a bad state is an error naming the file, and is left
// as it was.
func TestLoadOrCreateCABroken(t *testing.T) {
	other, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := encodeKey(other.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		prepare   func(t *testing.T, dir string)
		wantInErr string
	}{
		{"certificate without key", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, CAKeyFile))
		}, CAKeyFile},
		{"key without certificate", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, CACertFile))
		}, CACertFile},
		{"truncated certificate", func(t *testing.T, dir string) {
			truncate(t, filepath.Join(dir, CACertFile))
		}, CACertFile},
		{"truncated key", func(t *testing.T, dir string) {
			truncate(t, filepath.Join(dir, CAKeyFile))
		}, CAKeyFile},
		{"garbage certificate", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CACertFile), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
		}, CACertFile},
		{"empty key", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CAKeyFile), nil, 0o600)
		}, CAKeyFile},
		{"mismatched pair", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CAKeyFile), otherKey, 0o600)
		}, CACertFile + " is not the certificate of the key in "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, _, err := LoadOrCreateCA(dir); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, dir)
			before := snapshot(t, dir)
			_, _, err := LoadOrCreateCA(dir)
			if err == nil {
				t.Fatal("LoadOrCreateCA succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not name %s", err, tc.wantInErr)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("directory changed: %s -> %s", before, after)
			}
		})
	}
}

func TestLoadCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, encodeCert(ca.Cert.Raw), 0o644)

	// The key as openssl writes it (SEC 1).
	der, err := x509.MarshalECPrivateKey(ca.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	got, err := LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadCA (SEC 1 key): %v", err)
	}
	if CAHash(got.Cert) != CAHash(ca.Cert) {
		t.Error("LoadCA: another CA")
	}

	// A leaf is no CA.
	node := signTestNode(t, ca, "n1", false)
	leafFile := filepath.Join(dir, "leaf.crt")
	os.WriteFile(leafFile, encodeCert(node.certDER), 0o644)
	leafKey := filepath.Join(dir, "leaf.key")
	pemKey, _ := encodeKey(node.key)
	os.WriteFile(leafKey, pemKey, 0o600)
	if _, err := LoadCA(leafFile, leafKey); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("LoadCA of a leaf: %v", err)
	}
	if _, err := LoadCA(filepath.Join(dir, "missing.crt"), keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadCA of a missing file: %v", err)
	}
}

// An RSA CA (cert-manager's default) signs node certificates too.
func TestRSACA(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA key generation is slow")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecCA, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *ecCA.Cert
	tmpl.SignatureAlgorithm = 0
	tmpl.PublicKey = key.Public()
	tmpl.SubjectKeyId = nil
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.crt"), encodeCert(der), 0o644)
	os.WriteFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	ca, err := LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	signTestNode(t, ca, "n1", true)
}

func TestCAHash(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	h := CAHash(ca.Cert)
	if !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+64 {
		t.Fatalf("CAHash = %q", h)
	}
	if got, err := ParseCAHash(strings.ToUpper(h[:7]) + strings.ToUpper(h[7:])); err == nil {
		t.Errorf("ParseCAHash accepted an upper-case prefix: %q", got)
	}
	if got, err := ParseCAHash("sha256:" + strings.ToUpper(h[7:])); err != nil || got != h {
		t.Errorf("ParseCAHash(upper-case hex) = %q, %v; want %q", got, err, h)
	}
	for _, bad := range []string{"", "sha256:", h[7:], "sha1:" + h[7:], h[:len(h)-1], h + "00", "sha256:" + strings.Repeat("zz", 32)} {
		if _, err := ParseCAHash(bad); err == nil {
			t.Errorf("ParseCAHash(%q) succeeded", bad)
		}
	}
}

func truncate(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes a directory's files and their contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		c, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b.WriteString(e.Name() + ":" + string(c) + ";")
	}
	return b.String()
}
