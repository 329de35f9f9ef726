package redisstore

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "tgsession"

// LayoutVersion is the data layout this code writes and reads: the one
// described here. Open refuses a session stored with another layout
// (storage.ErrLayoutVersion), and every write script checks it again.
const LayoutVersion = 2

// This file is the one description of the data layout in Redis; README.md and
// the package documentation point here.
//
// For a session named N under prefix P, with E = escapeName(N):
//
//	P:{E}:s        hash: the session fields and the layout version
//	P:{E}:p        hash: peer id -> row (codec.go)
//	P:{E}:u        hash: username -> peer id
//	P:{E}:ph       hash: phone number -> peer id
//	P:{E}:w        sorted set: ids of the session's last 1000 applied writes (retry dedup, lua/guard.lua)
//	P:{E}:st       hash: the update state: user, pts, qts, date, seq, and "c:<channel id>" -> pts
//	P:{E}:x        hash: client data (key -> opaque value: a client library's salt, config, ...)
//	P:{E}:lease    string: the owner's lease (package lock), "<token>|<owner JSON>", with a TTL
//	P:{E}:stage:<id>:{s,p,u,ph,w}
//	               a Replace in progress: the same five keys for the new content, each
//	               with a TTL (stageTTL) from its creation (lua/stage.lua creates all
//	               five, with placeholder fields ""); lua/replace.lua renames them over
//	               the session's keys, Abort, Delete or the TTL removes them
//	P:{E}:stages   set: ids of the Replaces begun (with a TTL), for Delete
//	P:sessions     set: every session name under P (outside any hash tag)
//
// The session hash holds "layout" (LayoutVersion) and the fields dc_id,
// api_id, test_mode, auth_key, date, user_id, is_bot; a NULL field is absent.
// Integers are exact decimal strings, kept as strings inside Lua (Lua numbers
// are doubles); booleans are "0" or "1". auth_key is an envelope: "raw:" and
// the 256 key bytes, or with Options.Keys "gcm1:" and package keyring's
// AES-256-GCM envelope (authkey.go); any other form is refused, not misread.
//
// A peer row is "type|access_hash|usernames|phone|min|last_update_on": type is
// one of Hydrogram's five type names; access_hash decimal or "" for NULL;
// usernames lower-case [a-z0-9_] names separated by one space, the primary
// first; phone digits or ""; min "1" or ""; last_update_on unix seconds. No
// field can contain '|'. encodeRow and decodeRow (codec.go) are its only
// Go implementation; lua/update_peers.lua (and lua/update_peer.lua, its
// single-peer twin) write it from the same argument.
//
// The username and phone indexes point at the holder written most recently
// (greatest last_update_on, ties to the later write); rows of older holders
// are kept as written (the storage package documents the semantics).
//
// The update state and client data keys were added to layout 2 without a new
// version: they are additive (code that predates them reads every session as
// before, and leaves them behind only on Delete).
//
// Layout 2 keeps all peers of a session in one hash (layout 1 had a hash per
// peer plus an id set): about half the memory per peer, and UpdatePeers reads
// and writes a whole batch with a few bulk commands.
//
// Every key of one session shares the hash tag {E}, so a session lives in one
// Cluster slot and every script is cluster-legal; scripts touch only declared
// keys. Nothing ever scans the keyspace: listing reads P:sessions.
type keys struct {
	base      string // P:{E}:
	session   string
	peers     string
	usernames string
	phones    string
	applied   string
	lease     string
	state     string
	data      string
	stages    string
}

func newKeys(prefix, name string) keys {
	return keysUnder(prefix+":{"+escapeName(name)+"}:", "")
}

// keysUnder names every key of a session under base; lease, when not empty,
// is the lease key to use instead of base+"lease".
func keysUnder(base, lease string) keys {
	if lease == "" {
		lease = base + "lease"
	}
	return keys{
		base:      base,
		session:   base + "s",
		peers:     base + "p",
		usernames: base + "u",
		phones:    base + "ph",
		applied:   base + "w",
		lease:     lease,
		state:     base + "st",
		data:      base + "x",
		stages:    base + "stages",
	}
}

// stage returns the keys of a Replace staged under id: the session's data
// keys under P:{E}:stage:<id>:, and the session's own lease (staged writes
// are fenced like any other).
func (k keys) stage(id string) keys {
	return keysUnder(k.base+"stage:"+id+":", k.lease)
}

func registryKey(prefix string) string { return prefix + ":sessions" }

// escapeName maps a session name to a non-empty hash tag without '{' or '}'.
// Letters, digits, '_', '.' and '-' stand for themselves; every other byte is
// %XX (upper-case hex), so the map is injective and reversible (the tests
// hold the inverse). The empty name is "%", which no other name produces (a
// '%' from escaping is always followed by two hex digits).
func escapeName(name string) string {
	if name == "" {
		return "%"
	}
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// validPrefix rejects prefixes that could move the hash tag or collide.
func validPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("redisstore: empty key prefix: use %q or a name of your own", DefaultPrefix)
	}
	if strings.ContainsAny(p, "{}") {
		return fmt.Errorf("redisstore: key prefix %q must not contain '{' or '}' (they would move the cluster hash tag)", p)
	}
	return nil
}

// unescapeName inverts escapeName (RebuildRegistry reads names back from
// keys; the tests hold it as the proof that the escaping is injective).
func unescapeName(tag string) (string, error) {
	if tag == "%" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tag) {
			return "", fmt.Errorf("redisstore: bad escape in tag %q", tag)
		}
		v, err := strconv.ParseUint(tag[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("redisstore: bad escape in tag %q", tag)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}
