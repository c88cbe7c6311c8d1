package overlay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
)

// A sealed UDP payload is
//
//	nonce (12 bytes) || AES-256-GCM(key, nonce, GENEVE packet) || tag (16 bytes)
//
// with no additional data: the whole GENEVE packet, header included, is
// encrypted and authenticated. Sealed traffic is opaque to tshark by design;
// unsealed traffic stays plain GENEVE.
const (
	NonceSize    = 12
	TagSize      = 16
	SealOverhead = NonceSize + TagSize

	// keyLabel is HKDF's info: it binds the derived key to this use, so the
	// same cluster secret can also key memberlist (under another label)
	// without the two keys being related.
	keyLabel = "labnet overlay AES-256-GCM v1"
)

// ErrBadTag is returned by Open when the tag does not verify: the packet was
// altered, sealed under another key, or never sealed.
var ErrBadTag = errors.New("overlay: message authentication failed")

// ErrSealedTruncated is returned by Open for a payload shorter than a nonce
// and a tag. It wraps ErrMalformed.
var ErrSealedTruncated = malformed("sealed payload shorter than nonce and tag")

// Key seals and opens overlay payloads under the cluster key. It is safe for
// concurrent use.
type Key struct {
	aead cipher.AEAD
	// Nonces are a random 12-byte starting point chosen by NewKey, then
	// counted up by one per packet (the low 8 bytes; the high 4 stay).
	// Drawing a fresh random nonce per packet, as the wire format allows,
	// would meet AES-GCM's birthday bound: NIST SP 800-38D §8.3 allows
	// 2^32 random nonces per key, which a 3M packets/s overlay spends in
	// under half an hour. Counting from a random start never repeats within
	// one Key, and two Keys (two nodes, or a restart) collide only if their
	// random starts land within the packets each sends of one another.
	prefix [4]byte
	next   atomic.Uint64
}

// NewKey derives the 32-byte AES-256-GCM key from the cluster secret with
// HKDF-SHA256 (RFC 5869) and a fixed label. HKDF does not stretch a weak
// passphrase: the secret should be high-entropy, such as 32 random bytes.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) == 0 {
		return nil, errors.New("overlay: empty cluster key")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, keyLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("overlay: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("overlay: derive key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("overlay: derive key: %w", err)
	}
	k := &Key{aead: aead}
	var start [NonceSize]byte
	rand.Read(start[:]) // never fails (crypto/rand, Go 1.24+)
	copy(k.prefix[:], start[:4])
	k.next.Store(binary.BigEndian.Uint64(start[4:]))
	return k, nil
}

// Seal appends the sealed form of pkt (nonce, ciphertext, tag: len(pkt) +
// SealOverhead bytes) to dst and returns the extended buffer. pkt must not
// overlap dst's spare capacity.
func (k *Key) Seal(dst, pkt []byte) []byte { return k.sealParts(dst, nil, pkt) }

// sealParts is Seal of head followed by body, written once: the two are
// copied into dst after the nonce and encrypted there, in place.
func (k *Key) sealParts(dst, head, body []byte) []byte {
	var nonce [NonceSize]byte
	copy(nonce[:4], k.prefix[:])
	binary.BigEndian.PutUint64(nonce[4:], k.next.Add(1))
	dst = append(dst, nonce[:]...)
	off := len(dst)
	dst = append(append(dst, head...), body...)
	return k.aead.Seal(dst[:off], nonce[:], dst[off:], nil)
}

// Open checks and decrypts a sealed payload, appends the GENEVE packet to dst
// and returns the extended buffer. To decrypt in place, pass
// msg[NonceSize:NonceSize] as dst. It returns ErrSealedTruncated for a
// payload too short to be sealed and ErrBadTag when authentication fails;
// dst's spare capacity may then hold garbage.
func (k *Key) Open(dst, msg []byte) ([]byte, error) {
	if len(msg) < SealOverhead {
		return dst, ErrSealedTruncated
	}
	out, err := k.aead.Open(dst, msg[:NonceSize], msg[NonceSize:], nil)
	if err != nil {
		return dst, ErrBadTag
	}
	return out, nil
}
