package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tgsession/redisstore/memstore"
	"github.com/tgsession/redisstore/storage"
)

func ExampleNew() {
	ctx := context.Background()
	now := time.Unix(1795631487, 0) // a fixed clock: username expiry depends on it
	store := memstore.New("my_account", memstore.Options{Clock: func() time.Time { return now }})
	if err := store.Open(ctx); err != nil { // a new session: dc_id 2, date 0
		panic(err)
	}
	defer store.Close()

	_ = store.UpdatePeers(ctx, []storage.Peer{{ID: 93372553, AccessHash: storage.Some[int64](42), Type: storage.PeerBot, Usernames: []string{"BotFather"}}})
	p, err := store.PeerByUsername(ctx, "@botfather")
	fmt.Println(p.InputPeer(), err)

	now = now.Add(storage.UsernameTTL*time.Second + time.Second)
	_, err = store.PeerByUsername(ctx, "botfather")
	fmt.Println(err)
	// Output:
	// InputPeerUser(user_id=93372553, access_hash=42) <nil>
	// Username expired: botfather
}
