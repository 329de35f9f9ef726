package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/storage"
)

// UpdatePeers validates and normalizes the whole batch, stamps it with the
// store's clock, then writes it in script calls of bounded size (chunkLen).
// An empty batch makes no round trip.
func (s *Store) UpdatePeers(ctx context.Context, peers []storage.Peer) error {
	const op = "update peers"
	now := s.clock.Now().Unix()
	return s.writePeers(ctx, op, peers, func(norm []storage.Peer) ([]storage.Peer, error) {
		if now < 0 {
			return nil, fmt.Errorf("%w: clock reads %d, before 1970", storage.ErrInvalid, now)
		}
		for i := range norm {
			norm[i].LastUpdateOn = now
		}
		return s.elide(norm, now), nil
	})
}

// elide drops the peers the owner cache shows stored unchanged, within
// Options.RefreshWindow (see there).
func (s *Store) elide(norm []storage.Peer, now int64) []storage.Peer {
	c := s.ownCache()
	if c == nil || s.opts.RefreshWindow < 0 {
		return norm
	}
	window := int64(s.opts.RefreshWindow / time.Second)
	out := norm[:0]
	for _, p := range norm {
		if !c.unchanged(p, now, window) {
			out = append(out, p)
		}
	}
	return out
}

// ImportPeers writes peers like UpdatePeers but keeps each peer's
// LastUpdateOn (for copying a session between stores); a username held by
// several peers goes to the one with the latest LastUpdateOn.
func (s *Store) ImportPeers(ctx context.Context, peers []storage.Peer) error {
	return s.writePeers(ctx, "import peers", peers, func(norm []storage.Peer) ([]storage.Peer, error) {
		for _, p := range norm {
			if p.LastUpdateOn < 0 {
				return nil, fmt.Errorf("%w: peer %d: last_update_on %d is before 1970", storage.ErrInvalid, p.ID, p.LastUpdateOn)
			}
		}
		return norm, nil
	})
}

// writePeers is UpdatePeers and ImportPeers: check the store, normalize the
// batch, let stamp set or check last_update_on (and drop peers that need no
// write), then write what is left fenced.
func (s *Store) writePeers(ctx context.Context, op string, peers []storage.Peer, stamp func([]storage.Peer) ([]storage.Peer, error)) error {
	if err := s.checkOpen(op); err != nil {
		return err
	}
	if len(peers) == 0 {
		return nil
	}
	norm, err := storage.NormalizePeers(peers)
	if err != nil {
		return s.fail(op, err)
	}
	if norm, err = stamp(norm); err != nil {
		return s.fail(op, err)
	}
	if len(norm) == 0 {
		return nil
	}
	token, err := s.token(op)
	if err != nil {
		return err
	}
	return s.updatePeers(ctx, token, norm)
}

// updatePeers writes normalized, stamped peers with the given lease token,
// one script call per chunk (see chunkLen). The owner cache, if any, is
// written through: after each chunk it holds what Redis holds (or, if
// another write raced this one, drops those peers).
func (s *Store) updatePeers(ctx context.Context, token string, norm []storage.Peer) error {
	c := s.cache
	if c == nil {
		return s.writeChunks(ctx, s.keys, token, norm, nil)
	}
	gen, through := c.invalidatePeers(norm), true
	err := s.writeChunks(ctx, s.keys, token, norm, func(chunk []storage.Peer, r writeResult, known bool) {
		if through && known {
			gen, through = c.writeThrough(gen, chunk, r)
			return
		}
		through = false
		c.invalidatePeers(chunk) // a read racing the write must not keep an old value
	})
	if err != nil {
		c.invalidatePeers(norm)
	}
	return err
}

// writeChunks writes normalized, stamped peers into the keys k (the
// session's, or a Replace's staged keys), one script call per chunk, and
// passes each chunk's result to done (if not nil); known is false when the
// script reports a retry of a write it had applied (its result is unknown).
func (s *Store) writeChunks(ctx context.Context, k keys, token string, norm []storage.Peer, done func(chunk []storage.Peer, r writeResult, known bool)) error {
	total, written := len(norm), 0
	for len(norm) > 0 {
		chunk := norm[:chunkLen(norm, s.opts.BatchSize)]
		norm = norm[len(chunk):]
		reply, err := updatePeersCall(k, token, chunk).run(ctx, s.rdb).Slice()
		if err != nil {
			if written > 0 {
				// Say what is stored: each script call is atomic, the batch
				// as a whole is not (an OOM under maxmemory stops it half-way).
				err = fmt.Errorf("%w (the first %d of %d peers were written; the rest were not)", err, written, total)
			}
			return s.failWrite("update peers", err)
		}
		written += len(chunk)
		r, known, err := parseWriteResult(reply)
		if err != nil {
			return s.fail("update peers", err)
		}
		if done != nil {
			done(chunk, r, known)
		}
	}
	return nil
}

// parseWriteResult reads lua/update_peers.lua's reply (see its header).
func parseWriteResult(reply []any) (r writeResult, known bool, err error) {
	if len(reply) == 0 {
		return r, false, fmt.Errorf("unexpected reply %q from update_peers", reply)
	}
	if n, _ := reply[0].(int64); n < 0 {
		return r, false, nil
	}
	for _, v := range reply[1:] {
		e, _ := v.(string)
		switch {
		case strings.HasPrefix(e, "u"):
			if r.lostNames == nil {
				r.lostNames = map[string]bool{}
			}
			r.lostNames[e[1:]] = true
		case strings.HasPrefix(e, "p"):
			if r.lostPhones == nil {
				r.lostPhones = map[string]bool{}
			}
			r.lostPhones[e[1:]] = true
		case strings.HasPrefix(e, "m"):
			id, h, ok := strings.Cut(e[1:], "|")
			idN, err1 := strconv.ParseInt(id, 10, 64)
			hN, err2 := strconv.ParseInt(h, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return r, false, fmt.Errorf("unexpected entry %q in update_peers' reply", e)
			}
			if r.keptHash == nil {
				r.keptHash = map[int64]int64{}
			}
			r.keptHash[idN] = hN
		default:
			return r, false, fmt.Errorf("unexpected entry %q in update_peers' reply", e)
		}
	}
	return r, true, nil
}

// chunkLen returns how many of peers the next script call carries: at most
// maxPeers, maxScriptUnits units of work and maxScriptBytes of arguments
// (options.go), and at least one.
func chunkLen(peers []storage.Peer, maxPeers int) int {
	units, size := 0, 0
	for i, p := range peers {
		u := 1 + len(p.Usernames)
		b := 64 + len(p.PhoneNumber) // the id, type, hash, stamp and separators, generously
		if p.PhoneNumber != "" {
			u++
		}
		for _, n := range p.Usernames {
			b += len(n) + 1
		}
		if i > 0 && (i == maxPeers || units+u > maxScriptUnits || size+b > maxScriptBytes) {
			return i
		}
		units, size = units+u, size+b
	}
	return len(peers)
}

// PeerByID returns the cached peer with that Bot-API id (one HGET, or the
// owner cache).
func (s *Store) PeerByID(ctx context.Context, id int64) (storage.Peer, error) {
	const op = "peer by id"
	if err := s.checkOpen(op); err != nil {
		return storage.Peer{}, err
	}
	if _, err := storage.KindOfID(id); err != nil {
		return storage.Peer{}, storage.NotFoundByID(id)
	}
	c := s.ownCache()
	var gen uint64
	if c != nil {
		if p, ok := c.peer(id); ok {
			return p, nil
		}
		gen = c.generation()
	}
	row, err := s.rdb.HGet(ctx, s.keys.peers, strconv.FormatInt(id, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return storage.Peer{}, storage.NotFoundByID(id)
	}
	if err != nil {
		return storage.Peer{}, s.fail(op, err)
	}
	p, err := decodeRow(id, row)
	if err == nil && c != nil {
		c.fill(gen, p, false, "")
	}
	return p, s.fail(op, err)
}

// PeerByUsername returns the current holder of a username (one script call,
// or the owner cache); see the storage package for the rules. A holder
// written more than storage.UsernameTTL ago is reported as
// storage.ErrUsernameExpired.
func (s *Store) PeerByUsername(ctx context.Context, username string) (storage.Peer, error) {
	p, err := s.peerByIndex(ctx, false, username)
	if err == nil && storage.UsernameExpired(s.clock.Now().Unix(), p.LastUpdateOn) {
		return storage.Peer{}, storage.ExpiredUsername(username)
	}
	return p, err
}

// PeerByPhoneNumber returns the current holder of a phone number (one script
// call, or the owner cache); see the storage package for the rules.
func (s *Store) PeerByPhoneNumber(ctx context.Context, phone string) (storage.Peer, error) {
	return s.peerByIndex(ctx, true, phone)
}

// peerByIndex looks key up in the username index, or the phone index when
// phone is set: from the owner cache if it may be used, else with
// peer_by_index.lua. A miss is the storage package's LookupError.
func (s *Store) peerByIndex(ctx context.Context, phone bool, key string) (storage.Peer, error) {
	op, normalize, valid, miss := "peer by username", storage.NormalizeUsername, storage.ValidLookupUsername, storage.NotFoundByUsername
	if phone {
		op, normalize, valid, miss = "peer by phone number", storage.NormalizePhoneNumber, storage.ValidLookupPhoneNumber, storage.NotFoundByPhoneNumber
	}
	if err := s.checkOpen(op); err != nil {
		return storage.Peer{}, err
	}
	n := normalize(key)
	if !valid(n) {
		return storage.Peer{}, miss(key)
	}
	c := s.ownCache()
	var gen uint64
	if c != nil {
		if p, ok := c.byIndex(phone, n); ok {
			return p, nil
		}
		gen = c.generation()
	}
	res, err := peerByIndexCall(s.keys, phone, n).run(ctx, s.rdb).Slice()
	if errors.Is(err, redis.Nil) {
		return storage.Peer{}, miss(key)
	}
	if err != nil {
		return storage.Peer{}, s.fail(op, err)
	}
	if len(res) != 2 {
		return storage.Peer{}, s.fail(op, fmt.Errorf("unexpected reply %q", res))
	}
	idStr, _ := res[0].(string)
	row, ok := res[1].(string)
	if !ok {
		return storage.Peer{}, miss(key) // an index entry without a row
	}
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil {
		return storage.Peer{}, s.fail(op, fmt.Errorf("corrupt index entry %q", idStr))
	}
	p, err := decodeRow(id, row)
	if err != nil {
		return storage.Peer{}, s.fail(op, err)
	}
	if c != nil {
		c.fill(gen, p, phone, n)
	}
	return p, nil
}

// PeerCount returns how many peers the session caches (one HLEN).
func (s *Store) PeerCount(ctx context.Context) (int64, error) {
	if err := s.checkOpen("count peers"); err != nil {
		return 0, err
	}
	n, err := s.rdb.HLen(ctx, s.keys.peers).Result()
	return n, s.fail("count peers", err)
}

// ScanPeers returns about count cached peers (one HSCAN of the peers hash)
// and the next cursor.
func (s *Store) ScanPeers(ctx context.Context, cursor string, count int) ([]storage.Peer, string, error) {
	const op = "scan peers"
	if err := s.checkOpen(op); err != nil {
		return nil, "", err
	}
	var cur uint64
	if cursor != "" {
		var err error
		if cur, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", s.fail(op, fmt.Errorf("%w: bad cursor %q", storage.ErrInvalid, cursor))
		}
	}
	kv, next, err := s.rdb.HScan(ctx, s.keys.peers, cur, "", int64(max(count, 1))).Result()
	if err != nil {
		return nil, "", s.fail(op, err)
	}
	peers := make([]storage.Peer, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		id, err := strconv.ParseInt(kv[i], 10, 64)
		if err != nil {
			return nil, "", s.fail(op, fmt.Errorf("corrupt peer id %q", kv[i]))
		}
		p, err := decodeRow(id, kv[i+1])
		if err != nil {
			return nil, "", s.fail(op, err)
		}
		peers = append(peers, p)
	}
	nextCursor := ""
	if next != 0 {
		nextCursor = strconv.FormatUint(next, 10)
	}
	return peers, nextCursor, nil
}
