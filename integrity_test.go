package redisstore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/storage"
)

// accountKey is the auth key of the account with user id u: every byte
// says which account it is, so a session holding one account's user id
// and another's key is caught.
func accountKey(u int64) storage.AuthKey {
	return bytes.Repeat([]byte{byte(u)}, storage.AuthKeySize)
}

// TestResealNeverSwapsAccounts (issue 24): an importer keeps replacing a
// session with account A or account B (user id and auth key, sealed with
// the old key) while a re-sealer (tgsession rekey) re-encrypts it with the
// new current key. Re-sealing is a compare-and-swap on the envelope it read:
// it may be refused (ErrChanged), but the session never holds one account's
// user id with the other's key. Without the condition (a read, then a plain
// write of the key) this fails within a few hundred iterations.
func TestResealNeverSwapsAccounts(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{miniBackend(), realBackend()} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := b.client(t)
			prefix := "reseal-" + redistest.TempName(t)
			old, err := keyring.New([]string{"t1"}, [][]byte{bytes.Repeat([]byte{1}, 32)})
			if err != nil {
				t.Fatal(err)
			}
			open := func(keys keyring.KeyProvider) *Store {
				s, err := New(c, "acct", Options{Mode: Unfenced, Prefix: prefix, Keys: keys})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Open(ctx); err != nil {
					t.Fatal(err)
				}
				return s
			}
			importer, resealer, reader := open(old), open(testKeyring()), open(testKeyring())
			const iterations = 1000
			var wg sync.WaitGroup
			stop := make(chan struct{})
			resealed, changed := 0, 0
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					was, err := resealer.Reseal(ctx)
					switch {
					case err == nil && was == "encrypted (t1)":
						resealed++
					case err == nil:
					case errors.Is(err, ErrChanged):
						changed++
					default:
						t.Errorf("reseal: %v", err)
						return
					}
				}
			})
			swapped := 0
			for i := range iterations {
				u := int64(1001 + i%2)
				v := storage.Session{DCID: storage.Some(2), UserID: storage.Some(u), AuthKey: accountKey(u), Date: int64(i)}
				if err := importer.SetFields(ctx, v, storage.FieldUserID|storage.FieldAuthKey|storage.FieldDate); err != nil {
					t.Fatal(err)
				}
				got, err := reader.Session(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.AuthKey, accountKey(got.UserID.V)) {
					swapped++
					if swapped <= 3 {
						t.Errorf("iteration %d: the session says user %d but holds the auth key of user %d", i, got.UserID.V, got.AuthKey[0])
					}
				}
			}
			close(stop)
			wg.Wait()
			// One last check after the re-sealer stopped: its final write
			// may have landed after the last read.
			got, err := reader.Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.AuthKey, accountKey(got.UserID.V)) {
				swapped++
			}
			t.Logf("%d imports, %d re-seals, %d refused as changed, %d sessions with a swapped key", iterations, resealed, changed, swapped)
			if resealed == 0 || changed == 0 {
				t.Logf("note: the race was not exercised both ways (%d re-seals, %d refusals)", resealed, changed)
			}
			if swapped > 0 {
				t.Errorf("%d of %d reads held one account's user id with another's auth key", swapped, iterations+1)
			}
		})
	}
}
