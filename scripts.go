package redisstore

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
	"github.com/tgsession/redisstore/storage"
)

//go:embed lua/*.lua
var luaFS embed.FS

// mustScript loads lua/<name>, preceded by the given preludes (shared
// helpers such as guard.lua; Redis has no include). It is sent with the
// "#!lua" shebang, so a read-only replica refuses it (READONLY) rather than
// running it on stale data; readScript's are flagged no-writes.
func mustScript(name string, preludes ...string) *redisutil.Script {
	return redisutil.NewScript(source(name, preludes...))
}

func readScript(name string) *redisutil.Script {
	return redisutil.NewReadScript(source(name))
}

func source(name string, preludes ...string) string {
	var src []byte
	for _, f := range append(preludes, name) {
		b, err := luaFS.ReadFile("lua/" + f)
		if err != nil {
			panic("redisstore: missing embedded script " + f) // a build defect, not input
		}
		src = append(src, b...)
	}
	return string(src)
}

// The scripts, loaded once. Run uses EVALSHA and falls back to EVAL on
// NOSCRIPT (a restarted server or a promoted replica has an empty cache).
var (
	scriptOpen        = mustScript("open.lua", "guard.lua")
	scriptSetFields   = mustScript("set_fields.lua", "guard.lua")
	scriptUpdatePeers = mustScript("update_peers.lua", "guard.lua")
	scriptUpdatePeer  = mustScript("update_peer.lua", "guard.lua")
	scriptPeerByIndex = readScript("peer_by_index.lua")
	scriptDelete      = mustScript("delete.lua", "guard.lua")
	scriptReplace     = mustScript("replace.lua", "guard.lua")
	scriptStage       = mustScript("stage.lua", "guard.lua")
	scriptUpdateState = mustScript("update_state.lua", "guard.lua")
	scriptClientData  = mustScript("client_data.lua", "guard.lua")
	allScripts        = []*redisutil.Script{scriptOpen, scriptSetFields, scriptUpdatePeers, scriptUpdatePeer, scriptPeerByIndex, scriptDelete, scriptReplace,
		scriptStage, scriptUpdateState, scriptClientData}
)

// call is one script invocation: the script, its KEYS in the order the
// script's header declares them, and its ARGV. The constructors below are the
// only places that build KEYS and ARGV; each mirrors its script's header.
type call struct {
	script *redisutil.Script
	keys   []string
	args   []any
}

// run runs the call (EVALSHA, then EVAL on NOSCRIPT).
func (c call) run(ctx context.Context, rdb redis.Scripter) *redis.Cmd {
	return c.script.Run(ctx, rdb, c.keys, c.args...)
}

// queue adds the call to a pipeline on rdb, as EVAL when eval is set and
// EVALSHA otherwise (a pipeline cannot fall back by itself), in the form
// rdb's server compiles.
func (c call) queue(ctx context.Context, rdb redis.Scripter, p redis.Pipeliner, eval bool) {
	if eval {
		c.script.For(rdb).Eval(ctx, p, c.keys, c.args...)
	} else {
		c.script.For(rdb).EvalSha(ctx, p, c.keys, c.args...)
	}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// openCall runs lua/open.lua: KEYS session, peers, lease; ARGV layout,
// create ("1"/"0"), token.
func openCall(k keys, create bool, token string) call {
	return call{scriptOpen, []string{k.session, k.peers, k.lease}, []any{LayoutVersion, boolArg(create), token}}
}

// setFieldsCall runs lua/set_fields.lua: KEYS session, lease, applied
// writes; ARGV layout, token, a fresh write id, then field/value pairs for the
// fields of v named by which (authKey is the auth key's stored form).
func setFieldsCall(k keys, token string, v storage.Session, which storage.Field, authKey string) call {
	args := append([]any{LayoutVersion, token, writeID()}, encodeSession(v, which, authKey)...)
	return call{scriptSetFields, []string{k.session, k.lease, k.applied}, args}
}

// writeID returns a random id for one script call, so that a client's retry
// of a write that was applied is recognized (lua/guard.lua). It starts with
// the wall clock's time, "<seconds>.<microseconds>-", which the script uses
// as the id's score when it trims the set of applied writes to the newest
// 1000: an ordering hint, never compared with the store's (injected) clock.
func writeID() string {
	now := time.Now()
	micro := strconv.Itoa(1_000_000 + now.Nanosecond()/1000)[1:] // six digits
	return strconv.FormatInt(now.Unix(), 10) + "." + micro + "-" + randomID()
}

// randomID returns 16 random URL-safe characters (96 bits).
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// updatePeersCall runs lua/update_peers.lua (lua/update_peer.lua for a
// single peer: the same rules and reply, about a quarter less server time):
// KEYS session, peers, username index, phone index, lease, applied writes;
// ARGV layout, token, a fresh write id, then one "id|row" per peer (the row
// of codec.go). The peers must be normalized.
func updatePeersCall(k keys, token string, peers []storage.Peer) call {
	args := make([]any, 0, 3+len(peers))
	args = append(args, strconv.Itoa(LayoutVersion), token, writeID())
	var b []byte
	for _, p := range peers {
		b = strconv.AppendInt(b[:0], p.ID, 10)
		b = append(b, '|')
		b = appendRow(b, p)
		args = append(args, string(b))
	}
	script := scriptUpdatePeers
	if len(peers) == 1 {
		script = scriptUpdatePeer // the same rules, written straight for one peer
	}
	return call{script, []string{k.session, k.peers, k.usernames, k.phones, k.lease, k.applied}, args}
}

// peerByIndexCall runs lua/peer_by_index.lua: KEYS the username index (or
// the phone index when phone is set), peers; ARGV the normalized key.
func peerByIndexCall(k keys, phone bool, key string) call {
	index := k.usernames
	if phone {
		index = k.phones
	}
	return call{scriptPeerByIndex, []string{index, k.peers}, []any{key}}
}

// deleteCall runs lua/delete.lua: KEYS session, peers, username index, phone
// index, lease, applied writes, update state, client data, stage list, then
// the staged keys of the stages listed (stages); ARGV token.
func deleteCall(k keys, token string, stages []string) call {
	ks := []string{k.session, k.peers, k.usernames, k.phones, k.lease, k.applied, k.state, k.data, k.stages}
	for _, id := range stages {
		st := k.stage(id)
		ks = append(ks, st.session, st.peers, st.usernames, st.phones, st.applied)
	}
	return call{scriptDelete, ks, []any{token}}
}

// updateStateCall runs lua/update_state.lua: KEYS session, update state,
// lease, applied writes; ARGV layout, token, a fresh write id, the
// operation, then its arguments.
func updateStateCall(k keys, token, op string, args ...any) call {
	return call{scriptUpdateState, []string{k.session, k.state, k.lease, k.applied},
		append([]any{strconv.Itoa(LayoutVersion), token, writeID(), op}, args...)}
}

// clientDataCall runs lua/client_data.lua: KEYS session, client data, lease,
// applied writes; ARGV layout, token, a fresh write id, key, value.
func clientDataCall(k keys, token, key string, value []byte) call {
	return call{scriptClientData, []string{k.session, k.data, k.lease, k.applied},
		[]any{strconv.Itoa(LayoutVersion), token, writeID(), key, value}}
}

// replaceCall runs lua/replace.lua: KEYS session, peers, username index,
// phone index, lease, applied writes, then the staged session, peers,
// username index, phone index and applied writes, then the update state,
// client data and the stage list; ARGV layout, token, a fresh write id, the
// stage id.
func replaceCall(k, staged keys, token, id string) call {
	return call{scriptReplace, []string{k.session, k.peers, k.usernames, k.phones, k.lease, k.applied,
		staged.session, staged.peers, staged.usernames, staged.phones, staged.applied, k.state, k.data, k.stages},
		[]any{strconv.Itoa(LayoutVersion), token, writeID(), id}}
}

// stageCall runs lua/stage.lua: KEYS the five staged keys, lease, stage
// list; ARGV layout, token, TTL (ms), stage id.
func stageCall(k, staged keys, token, id string) call {
	return call{scriptStage, []string{staged.session, staged.peers, staged.usernames, staged.phones, staged.applied, k.lease, k.stages},
		[]any{strconv.Itoa(LayoutVersion), token, stageTTL.Milliseconds(), id}}
}
