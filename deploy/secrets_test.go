package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// secretRecipe is the command deploy/README.md gives for the files the
// Kubernetes base turns into a Secret: the cluster CA
// (what node/auth's LoadCA accepts: a CA certificate, keyCertSign, its
// key) and the first admin's token (lnt_, 10 and 52 characters of
// lower-case base32). TestSecretRecipe checks the README still says it.
const secretRecipe = `(
  cd deploy/kubernetes && umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.crt -days 3650 -subj "/CN=labnet cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
  r=$(head -c 40 /dev/urandom | base32 | tr -d '\n' | tr A-Z a-z)
  echo "lnt_$(echo "$r" | cut -c1-10)_$(echo "$r" | cut -c11-62)" > admin.token
)`

// secretFiles are the files a user writes to deploy/kubernetes before
// kubectl apply -k (ca.crt, ca.key, admin.token), made once.
var (
	secretFilesOnce sync.Once
	secretFilesMap  map[string][]byte
	secretFilesErr  error
	secretFilesHow  string
)

func secretFiles(t *testing.T) map[string][]byte {
	t.Helper()
	secretFilesOnce.Do(func() {
		if _, err := exec.LookPath("openssl"); err == nil {
			secretFilesHow = "deploy/README.md's openssl recipe"
			secretFilesMap, secretFilesErr = runSecretRecipe()
			return
		}
		secretFilesHow = "Go, as the recipe would (no openssl here)"
		secretFilesMap, secretFilesErr = goSecretFiles()
	})
	if secretFilesErr != nil {
		t.Fatalf("secret files (%s): %v", secretFilesHow, secretFilesErr)
	}
	return secretFilesMap
}

// runSecretRecipe runs secretRecipe with sh in a temporary repository
// root and reads what it made.
func runSecretRecipe() (map[string][]byte, error) {
	root, err := os.MkdirTemp("", "labnet-deploy-secrets-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	if err := os.MkdirAll(filepath.Join(root, "deploy", "kubernetes"), 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("sh", "-ec", secretRecipe)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, &recipeError{err: err, out: string(out)}
	}
	files := map[string][]byte{}
	for _, name := range []string{"ca.crt", "ca.key", "admin.token"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", name))
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return files, nil
}

type recipeError struct {
	err error
	out string
}

func (e *recipeError) Error() string { return e.err.Error() + ": " + e.out }

// goSecretFiles makes what the recipe makes, where openssl is missing.
func goSecretFiles() (map[string][]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "labnet cluster CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	r := make([]byte, 40)
	rand.Read(r)
	s := strings.ToLower(base32.StdEncoding.EncodeToString(r))
	return map[string][]byte{
		"ca.crt":      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"ca.key":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		"admin.token": []byte("lnt_" + s[:10] + "_" + s[10:62] + "\n"),
	}, nil
}

// caHash is the pin labctl login --ca-hash takes: "sha256:" and the hex
// SHA-256 of the CA's SubjectPublicKeyInfo (what the README's openssl
// pipeline computes).
func caHash(t *testing.T, caPEM []byte) string {
	t.Helper()
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		t.Fatal("ca.crt: no PEM block")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestSecretRecipe: deploy/README.md gives the recipe the tests run, its
// CA is one labd accepts as --ca-cert (a CA, allowed to sign, P-256) and
// the token has the form of a labnet token; the README's hash pipeline
// gives the pin labctl login expects.
func TestSecretRecipe(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), secretRecipe) {
		t.Errorf("deploy/README.md does not give the recipe the tests run:\n%s", secretRecipe)
	}
	files := secretFiles(t)
	t.Logf("secret files made with %s", secretFilesHow)
	blk, _ := pem.Decode(files["ca.crt"])
	if blk == nil {
		t.Fatal("ca.crt: no PEM block")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("ca.crt: CA %v, basic constraints %v, key usage %b: labd's --ca-cert wants a CA that may sign certificates", cert.IsCA, cert.BasicConstraintsValid, cert.KeyUsage)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("ca.crt: key %T, want ECDSA P-256", cert.PublicKey)
	}
	tok := strings.TrimSpace(string(files["admin.token"]))
	id, secret, ok := strings.Cut(strings.TrimPrefix(tok, "lnt_"), "_")
	lower := func(s string) bool {
		return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") == ""
	}
	if !strings.HasPrefix(tok, "lnt_") || !ok || len(id) != 10 || len(secret) != 52 || !lower(id) || !lower(secret) {
		t.Errorf("admin.token %q: want lnt_ + 10 + _ + 52 characters of lower-case base32", tok)
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		// The README's pipeline for the pin.
		cmd := exec.Command("sh", "-ec", `echo "sha256:$(openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)"`)
		cmd.Stdin = strings.NewReader(string(files["ca.crt"]))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(out)), caHash(t, files["ca.crt"]); got != want {
			t.Errorf("the README's pipeline gives %s, labctl pins %s", got, want)
		}
		if !strings.Contains(string(readme), `openssl x509 -in deploy/kubernetes/ca.crt -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1`) {
			t.Errorf("deploy/README.md does not give the pin's pipeline checked here")
		}
	}
}
