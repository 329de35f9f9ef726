package filestore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/memstore"
	"github.com/tgsession/redisstore/storage"
)

// A session moves between engines with storage.Copy: here from memory into
// a Hydrogram .session file that Hydrogram itself can open.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	src := memstore.New("my_account", memstore.Options{})
	_ = src.Open(ctx)
	_ = src.SetAPIID(ctx, storage.Some[int64](12345))
	_ = src.UpdatePeers(ctx, []storage.Peer{{ID: 777000, Type: storage.PeerUser, Usernames: []string{"telegram"}}})

	dst := filestore.New(filestore.Path(dir, "my_account"), filestore.Options{}) // <dir>/my_account.session
	if err := dst.Open(ctx); err != nil {
		panic(err)
	}
	defer dst.Close()
	n, err := storage.Copy(ctx, dst, src, storage.CopyOptions{})
	api, _ := dst.APIID(ctx)
	fmt.Println(n, err, api)
	// Output: 1 <nil> 12345
}
