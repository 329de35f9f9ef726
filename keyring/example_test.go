package keyring_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/tgsession/redisstore/keyring"
)

// A keyring file holds one "ID BASE64" line per key, the current first;
// tgsession keygen prints a line.
func Example() {
	line, _ := keyring.Generate("k2026")
	ring, err := keyring.Parse(strings.NewReader("# current key\n" + line + "\n"))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	where := keyring.Binding{Prefix: "tgsession", Name: "acct", Field: "auth_key"}
	env, _ := keyring.Seal(ctx, ring, where, []byte("256 bytes of auth key..."))
	id, _ := keyring.KeyID(env)
	plain, _ := keyring.Open(ctx, ring, where, env)
	fmt.Println(id, string(plain))
	// Output: k2026 256 bytes of auth key...
}
