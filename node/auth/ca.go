package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The cluster CA signs every node's certificate. The bootstrapping control
// node makes it in its data directory (ca.crt, ca.key) unless one is
// supplied (--ca-cert, --ca-key: a Kubernetes Secret); clients pin it by
// CAHash, as `kubeadm join --discovery-token-ca-cert-hash` does.

// The CA's files in a data directory.
const (
	CACertFile = "ca.crt" // PEM, 0644
	CAKeyFile  = "ca.key" // PEM PKCS #8, 0600
)

// CA validity and the CA's name.
const (
	caValidity = 10 * 365 * 24 * time.Hour
	caName     = "labnet cluster CA"
	// backdate covers clocks a little behind the CA's.
	backdate = 5 * time.Minute
)

// CA is the cluster CA: its certificate and the key that signs with it.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Now is the clock for validity periods; nil is time.Now.
	Now func() time.Time
}

func (ca *CA) now() time.Time {
	if ca.Now != nil {
		return ca.Now()
	}
	return time.Now()
}

// LoadOrCreateCA loads the CA of data directory dir, or makes one there
// when neither file exists (created is then true). One file without the
// other, unreadable files and a certificate that is not for the key are
// errors naming the file: a CA is never silently replaced, since every
// node certificate and every client's pin depend on it.
func LoadOrCreateCA(dir string) (ca *CA, created bool, err error) {
	certFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := LoadCA(certFile, keyFile)
		return ca, false, err
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("cluster CA: %s exists without %s: this data directory holds only the CA's certificate (a member's); supply the key (--ca-cert, --ca-key) or remove %s to make a new CA", certFile, keyFile, certFile)
	case keyErr == nil && errors.Is(certErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("cluster CA: %s exists without %s (an interrupted creation?); restore the certificate, or remove %s to make a new CA", keyFile, certFile, keyFile)
	case !errors.Is(certErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("cluster CA: %w", certErr)
	case !errors.Is(keyErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("cluster CA: %w", keyErr)
	}
	ca, err = NewCA()
	if err != nil {
		return nil, false, err
	}
	if err := ca.write(certFile, keyFile); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// NewCA makes a CA (ECDSA P-256, ten years) in memory.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// It signs node certificates only, never another CA.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// write stores the CA, the key first: an interruption leaves a key
// without a certificate, which LoadOrCreateCA reports rather than taking
// the directory for a member's. Neither file is overwritten.
func (ca *CA) write(certFile, keyFile string) error {
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600, true); err != nil {
		return fmt.Errorf("cluster CA: write key: %w", err)
	}
	if err := writeFileAtomic(certFile, encodeCert(ca.Cert.Raw), 0o644, true); err != nil {
		return fmt.Errorf("cluster CA: write certificate: %w", err)
	}
	return nil
}

// LoadCA loads a CA from a PEM certificate and a PEM private key (PKCS #8,
// SEC 1 or PKCS #1), as a Kubernetes Secret holds them. The certificate
// must be a CA's, current, and for the key.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cert, err := readCert(certFile)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("cluster CA: %s is not a CA certificate (basic constraints CA:TRUE)", certFile)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("cluster CA: %s may not sign certificates (key usage lacks keyCertSign)", certFile)
	}
	if !samePublic(cert, key) {
		return nil, fmt.Errorf("cluster CA: %s is not the certificate of the key in %s", certFile, keyFile)
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return nil, fmt.Errorf("cluster CA: %s expired on %s", certFile, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCACert reads a CA certificate (DATA/ca.crt on a member, or labctl's
// CA file).
func LoadCACert(file string) (*x509.Certificate, error) {
	cert, err := readCert(file)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return cert, nil
}

// WriteCACert stores the CA certificate at file (0644), replacing what was
// there: a member does this once it has enrolled.
func WriteCACert(file string, cert *x509.Certificate) error {
	if err := writeFileAtomic(file, encodeCert(cert.Raw), 0o644, false); err != nil {
		return fmt.Errorf("cluster CA: write certificate: %w", err)
	}
	return nil
}

const caHashPrefix = "sha256:"

// CAHash is the pin of a CA: "sha256:" and the hex SHA-256 of its
// SubjectPublicKeyInfo, kubeadm's --discovery-token-ca-cert-hash format.
// It names the key, so a CA certificate re-issued for the same key keeps
// its pin.
func CAHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return caHashPrefix + hex.EncodeToString(sum[:])
}

// ParseCAHash checks a CA pin and returns it in CAHash's form (lower-case
// hex), so pins compare as strings.
func ParseCAHash(s string) (string, error) {
	h, ok := strings.CutPrefix(s, caHashPrefix)
	if !ok {
		return "", fmt.Errorf("CA hash %q: want sha256:<64 hex digits>", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("CA hash %q: want sha256:<64 hex digits>", s)
	}
	return caHashPrefix + hex.EncodeToString(b), nil
}

// randomSerial is a random 128-bit serial number with the top bit clear,
// so it is positive (RFC 5280 §4.1.2.2 allows up to 20 octets).
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b), nil
}

// checkPublicKey refuses keys too weak for a node.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			return fmt.Errorf("ECDSA key on %s is too small", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too small (2048 at least)", k.N.BitLen())
		}
	default:
		if _, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok {
			return fmt.Errorf("unsupported public key %T", pub)
		}
	}
	return nil
}
