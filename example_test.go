package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

func Example() {
	ctx := context.Background()
	m := miniredis.NewMiniRedis() // any go-redis UniversalClient works: single, Sentinel, Cluster
	_ = m.Start()
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer client.Close()

	// A worker owns its session: Open waits for the lease, Close hands it over.
	store, err := redisstore.New(client, "my_account", redisstore.Options{Mode: redisstore.Leased, Create: true, Lease: lock.Options{TTL: 15 * time.Second}})
	if err != nil {
		panic(err)
	}
	if err := store.Open(ctx); err != nil { // creates the session: dc_id 2, date 0
		panic(err)
	}
	defer store.Close()

	_ = store.SetAPIID(ctx, storage.Some[int64](12345))
	dc, _ := store.DCID(ctx)
	user, _ := store.UserID(ctx)
	fmt.Println("dc_id:", dc, "user_id:", user)
	// Output: dc_id: 2 user_id: NULL
}

func ExampleStore_UpdatePeers() {
	ctx := context.Background()
	m := miniredis.NewMiniRedis()
	_ = m.Start()
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer client.Close()

	now := time.Unix(1795631487, 0)
	store, _ := redisstore.New(client, "bot", redisstore.Options{Mode: redisstore.Unfenced, Clock: func() time.Time { return now }})
	_ = store.Open(ctx)

	err := store.UpdatePeers(ctx, []storage.Peer{
		{ID: -1001234567890, AccessHash: storage.Some[int64](-6666666666666666666), Type: storage.PeerChannel,
			Usernames: []string{"news_channel", "news_collectible"}},
		{ID: 93372553, AccessHash: storage.Some[int64](9223372036854775807), Type: storage.PeerBot, Usernames: []string{"botfather"}},
	})
	if err != nil {
		panic(err)
	}
	p, _ := store.PeerByUsername(ctx, "@News_Collectible")
	fmt.Println(p.InputPeer())

	now = now.Add(8*time.Hour + time.Second)
	_, err = store.PeerByUsername(ctx, "botfather")
	fmt.Println(err, errors.Is(err, storage.ErrUsernameExpired))

	_, err = store.PeerByID(ctx, 999)
	fmt.Println(err, errors.Is(err, storage.ErrPeerNotFound))
	// Output:
	// InputPeerChannel(channel_id=1234567890, access_hash=-6666666666666666666)
	// Username expired: botfather true
	// ID not found: 999 true
}

func ExampleListSessions() {
	ctx := context.Background()
	m := miniredis.NewMiniRedis()
	_ = m.Start()
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer client.Close()

	for _, name := range []string{"alpha", "beta"} {
		s, _ := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: "tenant-7"})
		_ = s.Open(ctx)
	}
	names, _ := redisstore.ListSessions(ctx, client, "tenant-7")
	fmt.Println(len(names))
	// Output: 2
}

// With Options.Keys the auth key is encrypted before it reaches Redis
// (package keyring); reads decrypt it with whichever keyring key sealed it.
func ExampleStore_AuthKeyStorage() {
	ctx := context.Background()
	m := miniredis.NewMiniRedis()
	_ = m.Start()
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer client.Close()

	line, _ := keyring.Generate("k2026a") // tgsession keygen; keep the file 0600
	ring, err := keyring.Parse(strings.NewReader(line + "\n"))
	if err != nil {
		panic(err)
	}
	store, _ := redisstore.New(client, "acct", redisstore.Options{Mode: redisstore.Unfenced, Keys: ring})
	_ = store.Open(ctx)
	_ = store.SetAuthKey(ctx, make(storage.AuthKey, storage.AuthKeySize))

	how, _ := store.AuthKeyStorage(ctx)
	stored := client.HGet(ctx, "tgsession:{acct}:s", "auth_key").Val()
	key, _ := store.AuthKey(ctx)
	fmt.Println(how, strings.HasPrefix(stored, "gcm1:k2026a:"), len(key))
	// Output: encrypted (k2026a) true 256
}
