package auth

import (
	"bytes"
	"testing"
)

func TestEnrollProof(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	csr, ca := []byte("certificate request"), []byte("ca certificate")
	proof := EnrollProof(key, csr, ca)
	if len(proof) != 32 {
		t.Fatalf("proof of %d bytes", len(proof))
	}
	if !bytes.Equal(proof, EnrollProof(key, csr, ca)) {
		t.Fatal("EnrollProof is not deterministic")
	}
	if !VerifyEnrollProof(key, csr, ca, proof) {
		t.Fatal("the proof does not verify")
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	for name, ok := range map[string]bool{
		"another key":          VerifyEnrollProof(flip(key, 0), csr, ca, proof),
		"another request":      VerifyEnrollProof(key, flip(csr, 3), ca, proof),
		"another CA":           VerifyEnrollProof(key, csr, flip(ca, 5), proof),
		"tampered proof":       VerifyEnrollProof(key, csr, ca, flip(proof, 31)),
		"short proof":          VerifyEnrollProof(key, csr, ca, proof[:16]),
		"no proof":             VerifyEnrollProof(key, csr, ca, nil),
		"moved boundary":       VerifyEnrollProof(key, []byte("certificate reques"), []byte("tca certificate"), proof),
		"swapped":              VerifyEnrollProof(key, ca, csr, proof),
		"proof under no key":   VerifyEnrollProof(key, csr, ca, EnrollProof(nil, csr, ca)),
		"empty key, own proof": VerifyEnrollProof(nil, csr, ca, EnrollProof(nil, csr, ca)),
	} {
		if ok {
			t.Errorf("%s: verified", name)
		}
	}
}
