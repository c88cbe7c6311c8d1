package overlay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
)

var testSecret = []byte("correct horse battery staple, 32+")

func mustKey(t testing.TB, secret []byte) *Key {
	t.Helper()
	k, err := NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealRoundTrip(t *testing.T) {
	k := mustKey(t, testSecret)
	for _, pkt := range [][]byte{genevePacketV4, genevePacketV6, {}, bytes.Repeat([]byte{0x5a}, 1400)} {
		sealed := k.Seal(nil, pkt)
		if len(sealed) != len(pkt)+SealOverhead {
			t.Fatalf("sealed %d bytes into %d, want %d", len(pkt), len(sealed), len(pkt)+SealOverhead)
		}
		if len(pkt) > 0 && bytes.Contains(sealed, pkt) {
			t.Errorf("sealed packet contains the plaintext")
		}
		got, err := k.Open(nil, sealed)
		if err != nil || !bytes.Equal(got, pkt) {
			t.Fatalf("Open = % x, %v; want % x", got, err, pkt)
		}
		// In place, as Conn does.
		got, err = k.Open(sealed[NonceSize:NonceSize], sealed)
		if err != nil || !bytes.Equal(got, pkt) {
			t.Fatalf("Open in place = % x, %v; want % x", got, err, pkt)
		}
		// Another Key from the same secret (another node) opens it too.
		sealed = k.Seal([]byte("prefix"), pkt)
		if got, err := mustKey(t, testSecret).Open(nil, sealed[len("prefix"):]); err != nil || !bytes.Equal(got, pkt) {
			t.Fatalf("Open with a second Key = % x, %v", got, err)
		}
	}
}

// TestSealNonces: no two packets share a nonce, within a Key or across two
// Keys of one secret.
func TestSealNonces(t *testing.T) {
	a, b := mustKey(t, testSecret), mustKey(t, testSecret)
	seen := map[string]bool{}
	for i := range 1000 {
		for _, k := range []*Key{a, b} {
			n := string(k.Seal(nil, genevePacketV4)[:NonceSize])
			if seen[n] {
				t.Fatalf("nonce % x repeated after %d packets", n, i)
			}
			seen[n] = true
		}
	}
}

// TestSealKeyDerivation pins the derivation and the wire format with an
// independent implementation: HKDF-SHA256 written out from RFC 5869 §2.2 and
// §2.3 with crypto/hmac, and AES-256-GCM opening nonce || ciphertext || tag.
func TestSealKeyDerivation(t *testing.T) {
	mac := func(key, msg []byte) []byte {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		return h.Sum(nil)
	}
	prk := mac(make([]byte, sha256.Size), testSecret)                   // extract, salt = HashLen zeros
	okm := mac(prk, append([]byte("labnet overlay AES-256-GCM v1"), 1)) // expand: T(1), 32 bytes
	block, err := aes.NewCipher(okm)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	sealed := mustKey(t, testSecret).Seal(nil, genevePacketV4)
	got, err := gcm.Open(nil, sealed[:12], sealed[12:], nil)
	if err != nil || !bytes.Equal(got, genevePacketV4) {
		t.Fatalf("independent open = % x, %v", got, err)
	}
}

func TestSealRejects(t *testing.T) {
	k := mustKey(t, testSecret)
	sealed := k.Seal(nil, genevePacketV4)

	for i := range sealed {
		bad := slices.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := k.Open(nil, bad); err != ErrBadTag {
			t.Errorf("byte %d flipped: Open error = %v, want ErrBadTag", i, err)
		}
	}
	if _, err := mustKey(t, []byte("another cluster's key")).Open(nil, sealed); err != ErrBadTag {
		t.Errorf("wrong key: Open error = %v, want ErrBadTag", err)
	}
	if _, err := k.Open(nil, genevePacketV6); err != ErrBadTag {
		t.Errorf("unsealed GENEVE: Open error = %v, want ErrBadTag", err)
	}
	if _, err := k.Open(nil, sealed[:len(sealed)-1]); err != ErrBadTag {
		t.Errorf("one byte short: Open error = %v, want ErrBadTag", err)
	}
	if _, err := k.Open(nil, append(slices.Clone(sealed), 0)); err != ErrBadTag {
		t.Errorf("one byte long: Open error = %v, want ErrBadTag", err)
	}
	for n := range SealOverhead {
		_, err := k.Open(nil, sealed[:n])
		if err != ErrSealedTruncated || !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: Open error = %v, want ErrSealedTruncated", n, err)
		}
	}
	if _, err := NewKey(nil); err == nil {
		t.Error("NewKey(nil) succeeded")
	}
}

func FuzzOpen(f *testing.F) {
	k := mustKey(f, testSecret)
	for _, p := range [][]byte{genevePacketV4, genevePacketV6, {}} {
		s := k.Seal(nil, p)
		f.Add(s)
		f.Add(s[:len(s)-1])
		f.Add(s[:SealOverhead])
	}
	f.Add([]byte{})
	f.Add(genevePacketV4)
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := k.Open(nil, slices.Clone(msg))
		switch {
		case err == nil:
			// Only a packet this test sealed opens: the seeds.
			if len(got) != len(msg)-SealOverhead {
				t.Fatalf("opened %d bytes into %d", len(msg), len(got))
			}
		case len(msg) < SealOverhead && err != ErrSealedTruncated,
			len(msg) >= SealOverhead && err != ErrBadTag:
			t.Fatalf("%d bytes: Open error = %v", len(msg), err)
		}
		if len(msg) >= NonceSize {
			in := slices.Clone(msg)
			got2, err2 := k.Open(in[NonceSize:NonceSize], in)
			if (err == nil) != (err2 == nil) || !bytes.Equal(got, got2) {
				t.Fatalf("in place: % x, %v; copying: % x, %v", got2, err2, got, err)
			}
		}
	})
}
