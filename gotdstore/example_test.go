package gotdstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/gotd/td/session"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/gotdstore"
)

// A gotd session stored in Redis: gotd's Loader reads and writes it through
// the adapter; the auth key lands in the session's fields (so the session
// also exports a Hydrogram string once user_id and api_id are known).
func ExampleStore() {
	ctx := context.Background()
	m, _ := miniredis.Run()
	defer m.Close()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	st, _ := redisstore.New(rdb, "mybot", redisstore.Options{Mode: redisstore.Leased, Create: true})
	if err := st.Open(ctx); err != nil { // the lease: one worker at a time
		panic(err)
	}
	defer st.Close()
	loader := session.Loader{Storage: gotdstore.New(st)}

	_, err := loader.Load(ctx)
	fmt.Println("new session:", errors.Is(err, session.ErrNotFound))

	key := make([]byte, 256)
	_, _ = rand.Read(key)
	id := sha1.Sum(key)
	if err := loader.Save(ctx, &session.Data{DC: 2, AuthKey: key, AuthKeyID: id[12:20], Salt: 42}); err != nil {
		panic(err)
	}
	data, _ := loader.Load(ctx)
	stored, _ := st.AuthKey(ctx)
	raw, _ := gotdstore.New(st).LoadSession(ctx)
	var v struct{ Version int }
	_ = json.Unmarshal(raw, &v)
	fmt.Println("dc:", data.DC, "salt:", data.Salt, "version:", v.Version, "key in the session fields:", string(stored) == string(key))
	// Output:
	// new session: true
	// dc: 2 salt: 42 version: 1 key in the session fields: true
}
