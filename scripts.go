package redisstore

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

func mustScript(name string) *redis.Script {
	src, err := luaFS.ReadFile("lua/" + name)
	if err != nil {
		panic("redisstore: missing embedded script " + name) // a build defect, not input
	}
	return redis.NewScript(string(src))
}

// The scripts, loaded once. Run uses EVALSHA and falls back to EVAL on
// NOSCRIPT (a restarted server or a promoted replica has an empty cache).
var (
	scriptOpen        = mustScript("open.lua")
	scriptSetFields   = mustScript("set_fields.lua")
	scriptUpdatePeers = mustScript("update_peers.lua")
	scriptPeerByIndex = mustScript("peer_by_index.lua")
	scriptDelete      = mustScript("delete.lua")
	allScripts        = []*redis.Script{scriptOpen, scriptSetFields, scriptUpdatePeers, scriptPeerByIndex, scriptDelete}
)
