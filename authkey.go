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

// Reseal re-encrypts the stored auth key with Options.Keys' current key (a
// plaintext key too) and returns how it was stored before, as
// AuthKeyStorage says it ("" when the session has no auth key: nothing to
// do). A key already sealed with the current key is left as it is.
//
// It is a compare-and-swap: the write goes ahead only if the stored auth key
// is still the one it read, so a concurrent import or login is never undone
// (ErrChanged, nothing written). The other fields are never written.
// It needs Options.Keys, and is fenced like any write: a Leased store writes
// with its lease, an Unfenced one is refused while a worker owns the session
// (lock.ErrHeld).
func (s *Store) Reseal(ctx context.Context) (was string, err error) {
	const op = "reseal auth key"
	if err := s.checkOpen(op); err != nil {
		return "", err
	}
	if s.opts.Keys == nil {
		return "", s.fail(op, errors.New("no keyring: set Options.Keys (tgsession --keyring or $TGSESSION_KEYRING)"))
	}
	token, err := s.token(op)
	if err != nil {
		return "", err
	}
	stored, err := s.rdb.HGet(ctx, s.keys.session, authKeyField).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", s.fail(op, err)
	}
	was = "plaintext"
	if !strings.HasPrefix(stored, authKeyRaw) {
		id, err := keyring.KeyID(stored)
		if err != nil {
			return "", s.fail(op, err)
		}
		was = "encrypted (" + id + ")"
		current, _, err := s.opts.Keys.CurrentKey(ctx)
		if err != nil {
			return "", s.fail(op, fmt.Errorf("keyring: %w", err))
		}
		if id == current {
			return was, nil
		}
	}
	k, err := s.openAuthKey(ctx, stored)
	if err != nil {
		return "", s.fail(op, err)
	}
	sealed, err := s.sealAuthKey(ctx, k)
	if err != nil {
		return "", s.fail(op, err)
	}
	if s.cache != nil {
		s.cache.invalidateSession()
		defer s.cache.invalidateSession()
	}
	c := setFieldsCall(s.keys, token, storage.Session{}, 0, "")
	c.args = append(c.args, "if:"+authKeyField, stored, authKeyField, sealed)
	if s.opts.Durability.Replicas > 0 {
		return was, s.durable(ctx, op, c)
	}
	return was, s.failWrite(op, c.run(ctx, s.rdb).Err())
}
