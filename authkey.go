package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/storage"
)

// The auth key's stored forms (the "auth_key" field of the session hash):
//
//	"raw:" + the 256 key bytes            without Options.Keys (and from before it)
//	"gcm1:" + key ID + ":" + nonce + ct   with Options.Keys: package keyring's
//	                                      AES-256-GCM envelope, bound to the
//	                                      prefix, the session name and the field
//
// Both are read whatever the options; a store with Options.Keys writes only
// the second, so a plaintext key is encrypted on its next write (or by
// tgsession rekey).

// authKeyField is the field the envelope is bound to.
const authKeyField = "auth_key"

// binding is where this store's envelopes live.
func (s *Store) binding() keyring.Binding {
	return keyring.Binding{Prefix: s.opts.Prefix, Name: s.name, Field: authKeyField}
}

// sealAuthKey returns the stored form of k ("" for none).
func (s *Store) sealAuthKey(ctx context.Context, k storage.AuthKey) (string, error) {
	switch {
	case k == nil:
		return "", nil
	case s.opts.Keys == nil:
		return authKeyRaw + string(k), nil
	}
	env, err := keyring.Seal(ctx, s.opts.Keys, s.binding(), k)
	if err != nil {
		return "", fmt.Errorf("encrypt the auth key: %w", err)
	}
	return env, nil
}

// openAuthKey turns a stored form into the key. An envelope whose key the
// store lacks, or that does not open, fails with an error that names the key
// ID (keyring.ErrUnknownKey, keyring.ErrDecrypt) and nothing of the key.
func (s *Store) openAuthKey(ctx context.Context, v string) (storage.AuthKey, error) {
	if raw, ok := strings.CutPrefix(v, authKeyRaw); ok {
		k := storage.AuthKey(raw)
		return k, k.Validate()
	}
	if !keyring.IsEnvelope(v) {
		return nil, fmt.Errorf("%w: the auth key is stored in a form this code does not read (neither %q nor %q): written by a newer tgsession, or changed by hand", storage.ErrLayoutVersion, authKeyRaw, keyring.Marker)
	}
	pt, err := keyring.Open(ctx, s.opts.Keys, s.binding(), v)
	if err != nil {
		return nil, fmt.Errorf("%w: pass the keyring that holds it (Options.Keys; tgsession --keyring or $TGSESSION_KEYRING)", err)
	}
	k := storage.AuthKey(pt)
	return k, k.Validate()
}

// AuthKeyStorage says how the stored auth key is kept, without decrypting
// it: "" when the session has no auth key, "plaintext", or
// "encrypted (key ID)" (for tgsession show, and for checking a rotation).
func (s *Store) AuthKeyStorage(ctx context.Context) (string, error) {
	const op = "read auth key"
	if err := s.checkOpen(op); err != nil {
		return "", err
	}
	v, err := s.rdb.HGet(ctx, s.keys.session, authKeyField).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return "", nil
		}
		return "", s.fail(op, err)
	}
	if strings.HasPrefix(v, authKeyRaw) {
		return "plaintext", nil
	}
	id, err := keyring.KeyID(v)
	if err != nil {
		return "", s.fail(op, err)
	}
	return "encrypted (" + id + ")", nil
}
