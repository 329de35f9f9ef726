package redisstore

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

// mustScript loads lua/<name>, preceded by the given preludes (shared
// helpers such as guard.lua; Redis has no include).
func mustScript(name string, preludes ...string) *redis.Script {
	var src []byte
	for _, f := range append(preludes, name) {
		b, err := luaFS.ReadFile("lua/" + f)
		if err != nil {
			panic("redisstore: missing embedded script " + f) // a build defect, not input
		}
		src = append(src, b...)
	}
	return redis.NewScript(string(src))
}

// The scripts, loaded once. Run uses EVALSHA and falls back to EVAL on
// NOSCRIPT (a restarted server or a promoted replica has an empty cache).
var (
	scriptOpen        = mustScript("open.lua", "guard.lua")
	scriptSetFields   = mustScript("set_fields.lua", "guard.lua")
	scriptUpdatePeers = mustScript("update_peers.lua", "guard.lua")
	scriptPeerByIndex = mustScript("peer_by_index.lua")
	scriptDelete      = mustScript("delete.lua", "guard.lua")
	allScripts        = []*redis.Script{scriptOpen, scriptSetFields, scriptUpdatePeers, scriptPeerByIndex, scriptDelete}
)
