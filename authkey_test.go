package redisstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

func testAuthKey(b byte) storage.AuthKey {
	k := make(storage.AuthKey, storage.AuthKeySize)
	for i := range k {
		k[i] = b + byte(i*7)
	}
	return k
}

// leaks reports whether any form of the key (bytes, hex, base64, or a
// 16-byte run of them) appears in v.
func leaks(v []byte, k storage.AuthKey) bool {
	for _, form := range [][]byte{k[:16], k[100:116], []byte(hex.EncodeToString(k[:16])), []byte(strings.ToUpper(hex.EncodeToString(k[:16]))),
		[]byte(base64.StdEncoding.EncodeToString(k)[:20]), []byte(base64.URLEncoding.EncodeToString(k)[:20])} {
		if bytes.Contains(v, form) {
			return true
		}
	}
	return false
}

// TestAuthKeyAtRest: with Options.Keys no stored value (HGETALL, DUMP) holds
// the key; reads give it back; without the keyring, or with one that lacks
// the id, reading fails naming the id; another key under the id, or the
// blob moved to another session, fails to decrypt; a plaintext session stays
// readable and is encrypted by its next write; rotation re-encrypts.
func TestAuthKeyAtRest(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{miniBackend(), realBackend()} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := b.client(t)
			prefix := "keys-" + redistest.TempName(t)
			ring := testKeyring()
			key := testAuthKey(3)
			open := func(name string, keys keyring.KeyProvider) *Store {
				o := Options{Mode: Unfenced, Prefix: prefix}
				if keys != nil {
					o.Keys = keys
				}
				s, err := New(c, name, o)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Open(ctx); err != nil {
					t.Fatal(err)
				}
				return s
			}
			a := open("a", ring)
			if err := a.SetSession(ctx, storage.Session{DCID: storage.Some(2), APIID: storage.Some[int64](1), AuthKey: key,
				UserID: storage.Some[int64](7), IsBot: storage.Some(false)}); err != nil {
				t.Fatal(err)
			}
			// Nothing stored holds the key.
			for _, k := range []string{a.keys.session, a.keys.peers, a.keys.applied, a.keys.lease, registryKey(prefix)} {
				vals, _ := c.HGetAll(ctx, k).Result() // WRONGTYPE for the strings and sets: empty
				for f, v := range vals {
					if leaks([]byte(f+v), key) {
						t.Errorf("HGETALL %s field %s holds the auth key", k, f)
					}
				}
				dump, err := c.Dump(ctx, k).Result()
				if err != nil && !errors.Is(err, redis.Nil) && b.mini == nil { // miniredis dumps strings only
					t.Fatal(err)
				}
				if leaks([]byte(dump), key) {
					t.Errorf("DUMP %s holds the auth key", k)
				}
			}
			m, _ := c.HGetAll(ctx, a.keys.session).Result()
			if !strings.HasPrefix(m["auth_key"], "gcm1:t2:") {
				t.Errorf("stored auth_key starts %q; want the envelope of key t2", m["auth_key"][:8])
			}
			if st, err := a.AuthKeyStorage(ctx); err != nil || st != "encrypted (t2)" {
				t.Errorf("AuthKeyStorage = %q, %v", st, err)
			}
			if got, err := a.AuthKey(ctx); err != nil || !bytes.Equal(got, key) {
				t.Fatalf("AuthKey = %v; want it back", err)
			}

			// Without the keyring, or with one that lacks t2: an error naming t2.
			only1, _ := keyring.New([]string{"t1"}, [][]byte{bytes.Repeat([]byte{1}, 32)})
			for _, keys := range []keyring.KeyProvider{nil, only1} {
				_, err := open("a", keys).Session(ctx)
				if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), `"t2"`) {
					t.Errorf("Session without key t2 = %v; want ErrUnknownKey naming t2", err)
				}
			}
			// Another key under the id: ErrDecrypt, never other bytes.
			impostor, _ := keyring.New([]string{"t2"}, [][]byte{bytes.Repeat([]byte{9}, 32)})
			if _, err := open("a", impostor).AuthKey(ctx); !errors.Is(err, keyring.ErrDecrypt) {
				t.Errorf("AuthKey with another key under t2 = %v; want ErrDecrypt", err)
			}
			// The blob moved to another session does not decrypt there.
			bs := open("b", ring)
			if err := bs.SetDCID(ctx, storage.Some(2)); err != nil {
				t.Fatal(err)
			}
			if err := c.HSet(ctx, bs.keys.session, "auth_key", m["auth_key"]).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := bs.AuthKey(ctx); !errors.Is(err, keyring.ErrDecrypt) {
				t.Errorf("a blob moved to session b = %v; want ErrDecrypt", err)
			}

			// A plaintext session stays readable with a keyring and is
			// encrypted by its next write of the key.
			p := open("plain", nil)
			if err := p.SetSession(ctx, storage.Session{DCID: storage.Some(1), AuthKey: key}); err != nil {
				t.Fatal(err)
			}
			pk := open("plain", ring)
			if st, _ := pk.AuthKeyStorage(ctx); st != "plaintext" {
				t.Errorf("AuthKeyStorage = %q; want plaintext", st)
			}
			got, err := pk.AuthKey(ctx)
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("plaintext AuthKey with a keyring = %v", err)
			}
			if err := pk.SetAuthKey(ctx, got); err != nil {
				t.Fatal(err)
			}
			if st, _ := pk.AuthKeyStorage(ctx); st != "encrypted (t2)" {
				t.Errorf("after a write: %q; want encrypted (t2)", st)
			}

			// Rotation: a keyring with a new current key reads t2 and writes t3.
			rotated, _ := keyring.New([]string{"t3", "t2"}, [][]byte{bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{2}, 32)})
			r := open("a", rotated)
			k2, err := r.AuthKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.SetAuthKey(ctx, k2); err != nil {
				t.Fatal(err)
			}
			only3, _ := keyring.New([]string{"t3"}, [][]byte{bytes.Repeat([]byte{3}, 32)})
			if got, err := open("a", only3).AuthKey(ctx); err != nil || !bytes.Equal(got, key) {
				t.Errorf("after rotation, with t3 only: %v", err)
			}
		})
	}
}

// TestLeasedOpenWithoutKeyring: a worker without the keyring cannot read an
// encrypted session: its read fails naming the key id, and nothing it has
// returns key bytes.
func TestLeasedOpenWithoutKeyring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := miniBackend().client(t)
	w, _ := New(c, "acct", Options{Mode: Unfenced, Keys: testKeyring()})
	if err := w.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.SetSession(ctx, storage.Session{DCID: storage.Some(2), AuthKey: testAuthKey(5)}); err != nil {
		t.Fatal(err)
	}
	worker, _ := New(c, "acct", Options{Mode: Leased, Create: true, Lease: lock.Options{TTL: time.Minute}, CacheSize: 10})
	if err := worker.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	s, err := worker.Session(ctx)
	if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "t2") || s.AuthKey != nil {
		t.Fatalf("Session = %v, %d key bytes; want ErrUnknownKey naming t2 and no key", err, len(s.AuthKey))
	}
}
