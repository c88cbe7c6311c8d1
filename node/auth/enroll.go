package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// A node enrols (ControlService.Enroll) with a proof that it holds the
// cluster key: an HMAC-SHA256 over its certificate request and the CA
// certificate it pinned. Binding the CA means a proof made for one CA
// (one cluster, or a man in the middle's) is worth nothing to another;
// binding the request means a proof cannot be replayed for another key.
// Issue 14 replaces the proof with enrolment tokens.

// enrollLabel separates the proof's key from every other use of the
// cluster key.
const enrollLabel = "labnet node enrolment proof v1"

// EnrollProof is the proof for the request csrDER under the CA
// certificate caDER (both DER) with the cluster key.
func EnrollProof(clusterKey, csrDER, caDER []byte) []byte {
	mac := hmac.New(sha256.New, enrollKey(clusterKey))
	writeField(mac, csrDER)
	writeField(mac, caDER)
	return mac.Sum(nil)
}

// VerifyEnrollProof reports, in constant time, whether proof is
// EnrollProof(clusterKey, csrDER, caDER). An empty cluster key proves
// nothing.
func VerifyEnrollProof(clusterKey, csrDER, caDER, proof []byte) bool {
	if len(clusterKey) == 0 {
		return false
	}
	return hmac.Equal(EnrollProof(clusterKey, csrDER, caDER), proof)
}

// enrollKey derives the proof's key from the cluster key: HMAC-SHA256
// keyed by the cluster key over the label (a one-block KDF in counter
// mode, NIST SP 800-108r1 §4.1), which unlike crypto/hkdf never fails.
func enrollKey(clusterKey []byte) []byte {
	mac := hmac.New(sha256.New, clusterKey)
	mac.Write([]byte{0, 0, 0, 1})
	mac.Write([]byte(enrollLabel))
	mac.Write([]byte{0})          // no context
	mac.Write([]byte{0, 0, 1, 0}) // L = 256 bits
	return mac.Sum(nil)
}

// writeField writes b with its length first, so (csr, ca) pairs never
// collide by moving bytes across the boundary.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
