package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
)

// Marker starts every envelope this package seals.
const Marker = "gcm1:"

const nonceSize = 12

// Binding is where an envelope is stored; it is the envelope's associated
// data, so a blob opens only where it was sealed.
type Binding struct {
	Prefix string // the store's key prefix
	Name   string // the session name
	Field  string // the field, e.g. "auth_key"
}

// ad encodes the binding unambiguously (each part length-prefixed).
func (b Binding) ad() []byte {
	out := []byte("tgsession envelope v1")
	for _, s := range []string{b.Prefix, b.Name, b.Field} {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	return out
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext with the provider's current key, a random nonce
// and b as associated data, and returns the envelope.
func Seal(ctx context.Context, p KeyProvider, b Binding, plaintext []byte) (string, error) {
	id, key, err := p.CurrentKey(ctx)
	if err != nil {
		return "", fmt.Errorf("keyring: current key: %w", err)
	}
	if !ValidID(id) || len(key) != KeySize {
		return "", fmt.Errorf("keyring: the provider's current key (id %q) is not a valid %d-byte key with a valid id", id, KeySize)
	}
	aead, err := gcm(key)
	if err != nil {
		return "", err
	}
	out := make([]byte, 0, len(Marker)+len(id)+1+nonceSize+len(plaintext)+aead.Overhead())
	out = append(out, Marker...)
	out = append(out, id...)
	out = append(out, ':')
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out = append(out, nonce...)
	return string(aead.Seal(out, nonce, plaintext, b.ad())), nil
}

// KeyID returns the key id an envelope names, or an error wrapping
// ErrMalformed. It does not decrypt.
func KeyID(envelope string) (string, error) {
	id, _, err := split(envelope)
	return id, err
}

// IsEnvelope reports whether v starts with Marker.
func IsEnvelope(v string) bool { return strings.HasPrefix(v, Marker) }

func split(envelope string) (id, body string, err error) {
	rest, ok := strings.CutPrefix(envelope, Marker)
	if !ok {
		return "", "", fmt.Errorf("%w: it does not start with %q", ErrMalformed, Marker)
	}
	id, body, ok = strings.Cut(rest, ":")
	if !ok || !ValidID(id) {
		return "", "", fmt.Errorf("%w: no valid key id", ErrMalformed)
	}
	if len(body) < nonceSize+16 {
		return "", "", fmt.Errorf("%w: %d bytes after the key id, too short", ErrMalformed, len(body))
	}
	return id, body, nil
}

// Open decrypts an envelope sealed for b with the key its id names. A
// missing key wraps ErrUnknownKey, a key that does not open it ErrDecrypt,
// a damaged form ErrMalformed; all name the key id and nothing else.
func Open(ctx context.Context, p KeyProvider, b Binding, envelope string) ([]byte, error) {
	id, body, err := split(envelope)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w (key ID %q; no keyring is configured)", ErrUnknownKey, id)
	}
	key, err := p.Key(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("keyring: key %q from the provider is %d bytes; want %d", id, len(key), KeySize)
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, []byte(body[:nonceSize]), []byte(body[nonceSize:]), b.ad())
	if err != nil {
		return nil, fmt.Errorf("%w with key ID %q: a different key under that ID, a damaged value, or a value copied from another session or field", ErrDecrypt, id)
	}
	return pt, nil
}
