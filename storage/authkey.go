package storage

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
)

// AuthKeySize is the length of an MTProto authorization key in bytes.
const AuthKeySize = 256

// AuthKey is an MTProto authorization key: the secret that logs the account
// in. nil means NULL. Formatting an AuthKey with any fmt verb, String or
// GoString never prints the key: it prints its public key id (the low 64
// bits of SHA-1, which MTProto sends in clear with every message).
type AuthKey []byte

// ID returns the key's MTProto auth_key_id as 16 hex digits, or "" for a
// key that is not 256 bytes.
func (k AuthKey) ID() string {
	if len(k) != AuthKeySize {
		return ""
	}
	sum := sha1.Sum(k)
	return hex.EncodeToString(sum[12:20])
}

// String describes the key without revealing it.
func (k AuthKey) String() string {
	switch {
	case k == nil:
		return "AuthKey(NULL)"
	case len(k) != AuthKeySize:
		return fmt.Sprintf("AuthKey(invalid, %d bytes)", len(k))
	default:
		return "AuthKey(id=" + k.ID() + ")"
	}
}

// GoString is String, so %#v does not reveal the key either.
func (k AuthKey) GoString() string { return k.String() }

// Format implements fmt.Formatter so that every verb (%x and %v included)
// prints String and never the key bytes.
func (k AuthKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// Validate reports whether k is NULL or exactly AuthKeySize bytes.
func (k AuthKey) Validate() error {
	if k != nil && len(k) != AuthKeySize {
		return fmt.Errorf("%w: auth key must be %d bytes (or nil for NULL), got %d", ErrInvalid, AuthKeySize, len(k))
	}
	return nil
}
