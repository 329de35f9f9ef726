// Package keyring encrypts auth keys at rest: an AES-256-GCM envelope (Go's
// crypto/aes and crypto/cipher) sealed with the current key of a keyring
// and opened with whichever key its id names.
//
// A Keyring holds several 32-byte keys with ids; the first is current (new
// envelopes are sealed with it), the others only open older envelopes, so
// keys can be rotated: add a new first key, re-encrypt (tgsession rekey),
// then drop the old one. KeyProvider is the narrow interface a store uses,
// so a KMS or Vault can stand in for the file.
//
// The envelope, as stored:
//
//	"gcm1:" ID ":" nonce (12 random bytes) ciphertext+tag (plaintext + 16 bytes)
//
// with associated data binding it to where it is stored (Binding): a blob
// copied to another session, prefix or field does not open.
//
// Key material never appears in errors or String output.
package keyring

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// KeySize is the size of every key: AES-256.
const KeySize = 32

// ErrUnknownKey reports an envelope sealed with a key id the provider does
// not hold (or no provider at all).
var ErrUnknownKey = errors.New("the auth key is encrypted with a key this keyring does not hold")

// ErrDecrypt reports an envelope that does not open with the key its id
// names: a different key under the same id, a damaged value, or a value
// copied from another session or field.
var ErrDecrypt = errors.New("the auth key does not decrypt")

// ErrMalformed reports a stored value that is not a well-formed envelope.
var ErrMalformed = errors.New("malformed auth key envelope")

// KeyProvider supplies keys by id. Keyring implements it; a KMS- or
// Vault-backed provider returns data keys it fetched and unwrapped. Keys
// must be KeySize bytes; the provider keeps ownership (callers do not
// modify them).
type KeyProvider interface {
	// CurrentKey returns the id and key new envelopes are sealed with.
	CurrentKey(ctx context.Context) (id string, key []byte, err error)
	// Key returns the key with that id, or an error wrapping ErrUnknownKey.
	Key(ctx context.Context, id string) ([]byte, error)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ValidID reports whether id is a key id: 1-32 of [A-Za-z0-9_-].
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Keyring is an ordered set of keys; the first is current. It is safe for
// concurrent use (it is never modified after Parse).
type Keyring struct {
	ids  []string
	keys map[string][]byte
}

var _ KeyProvider = (*Keyring)(nil)

// New returns a keyring of the given ids and keys, the first current.
func New(ids []string, keys [][]byte) (*Keyring, error) {
	if len(ids) == 0 || len(ids) != len(keys) {
		return nil, errors.New("keyring: need at least one key, and one id per key")
	}
	r := &Keyring{keys: map[string][]byte{}}
	for i, id := range ids {
		if !ValidID(id) {
			return nil, fmt.Errorf("keyring: key id %q is not 1-32 of [A-Za-z0-9_-]", id)
		}
		if len(keys[i]) != KeySize {
			return nil, fmt.Errorf("keyring: key %q is %d bytes; want %d", id, len(keys[i]), KeySize)
		}
		if _, dup := r.keys[id]; dup {
			return nil, fmt.Errorf("keyring: key id %q appears twice", id)
		}
		r.ids = append(r.ids, id)
		r.keys[id] = bytes.Clone(keys[i])
	}
	return r, nil
}

// maxFile bounds a keyring file.
const maxFile = 1 << 20

// Parse reads a keyring file (at most 1 MiB; a leading UTF-8 byte order
// mark is skipped): one key per line, "ID BASE64", where BASE64
// is 32 bytes in standard base64 and ID is 1-32 of [A-Za-z0-9_-]; the first
// key is current; '#' starts a comment; blank lines are ignored. Errors name
// the line, never its key.
func Parse(r io.Reader) (*Keyring, error) {
	var ids []string
	var keys [][]byte
	data, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("keyring: the file is over %d bytes: a keyring holds a few lines of \"ID BASE64\"", maxFile)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte order mark some editors write
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFile+1)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("keyring line %d: want \"ID BASE64\" (%d fields)", n, len(f))
		}
		if !ValidID(f[0]) {
			return nil, fmt.Errorf("keyring line %d: the key id is not 1-32 of [A-Za-z0-9_-]", n)
		}
		k, err := base64.StdEncoding.Strict().DecodeString(f[1])
		if err != nil || len(k) != KeySize {
			return nil, fmt.Errorf("keyring line %d (key %s): want %d bytes in standard base64 (make one with tgsession keygen)", n, f[0], KeySize)
		}
		ids, keys = append(ids, f[0]), append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if len(ids) == 0 {
		return nil, errors.New("keyring: no keys (one \"ID BASE64\" per line; make one with tgsession keygen)")
	}
	return New(ids, keys)
}

// Load reads a keyring file (see Parse).
func Load(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	r, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Generate returns a keyring line "ID BASE64" for a new random key.
func Generate(id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("keyring: key id %q is not 1-32 of [A-Za-z0-9_-]", id)
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return id + " " + base64.StdEncoding.EncodeToString(k), nil
}

// IDs returns the key ids, the current first.
func (r *Keyring) IDs() []string { return append([]string(nil), r.ids...) }

// CurrentKey returns the first key.
func (r *Keyring) CurrentKey(context.Context) (string, []byte, error) {
	return r.ids[0], r.keys[r.ids[0]], nil
}

// Key returns the key with that id.
func (r *Keyring) Key(_ context.Context, id string) ([]byte, error) {
	k, ok := r.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w (key ID %q; the keyring holds %s)", ErrUnknownKey, id, strings.Join(r.ids, ", "))
	}
	return k, nil
}

// String names the keys by id only.
func (r *Keyring) String() string { return "keyring(" + strings.Join(r.ids, ", ") + ")" }
