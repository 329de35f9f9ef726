package redisstore

import (
	"container/list"
	"slices"
	"sync"

	"github.com/tgsession/redisstore/storage"
)

// ownerCache serves lookups and the session from process memory while the
// store owns its session: with the lease this store is the only writer, so
// nothing it has cached can change behind its back. It is invalidated by the
// store's own writes, dropped whenever the lease is not valid, and bounded to
// max peers (least recently used first out).
//
// Reads that fill the cache race with writes that invalidate it; a fill
// carries the generation it started in and is dropped if any invalidation
// happened meanwhile, so a slow read can never reinstate an old value.
type ownerCache struct {
	mu      sync.Mutex
	max     int
	gen     uint64
	lru     *list.List              // of *cached, most recent first
	byID    map[int64]*list.Element // id -> element
	byName  map[string]int64        // username -> id (of a cached row)
	byPhone map[string]int64        // phone -> id (of a cached row)
	session *storage.Session
}

type cached struct {
	peer   storage.Peer
	names  []string // byName keys that point here
	phones []string // byPhone keys that point here
}

func newOwnerCache(max int) *ownerCache {
	return &ownerCache{max: max, lru: list.New(), byID: map[int64]*list.Element{},
		byName: map[string]int64{}, byPhone: map[string]int64{}}
}

// generation returns the current generation, for a fill to come.
func (c *ownerCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func clonePeer(p storage.Peer) storage.Peer {
	p.Usernames = slices.Clone(p.Usernames)
	return p
}

// peer returns a cached peer by id.
func (c *ownerCache) peer(id int64) (storage.Peer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerLocked(id)
}

func (c *ownerCache) peerLocked(id int64) (storage.Peer, bool) {
	e, ok := c.byID[id]
	if !ok {
		return storage.Peer{}, false
	}
	c.lru.MoveToFront(e)
	return clonePeer(e.Value.(*cached).peer), true
}

// byIndex returns the cached holder of a username (phone false) or a phone
// number (phone true). The index maps are read under the mutex: clear
// replaces their contents concurrently.
func (c *ownerCache) byIndex(phone bool, key string) (storage.Peer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	index := c.byName
	if phone {
		index = c.byPhone
	}
	id, ok := index[key]
	if !ok {
		return storage.Peer{}, false
	}
	return c.peerLocked(id)
}

// fill caches a peer read from Redis at generation gen. key, if not empty,
// is the index key it was found by: a phone number when phone is set, else a
// username.
func (c *ownerCache) fill(gen uint64, p storage.Peer, phone bool, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.max <= 0 {
		return
	}
	e, ok := c.byID[p.ID]
	if !ok {
		e = c.lru.PushFront(&cached{peer: clonePeer(p)})
		c.byID[p.ID] = e
	} else {
		e.Value.(*cached).peer = clonePeer(p)
		c.lru.MoveToFront(e)
	}
	entry := e.Value.(*cached)
	if key != "" {
		index, keys := c.byName, &entry.names
		if phone {
			index, keys = c.byPhone, &entry.phones
		}
		if old, ok := index[key]; ok && old != p.ID {
			if oe, ok := c.byID[old]; ok {
				c.removeLocked(oe)
			}
		}
		index[key] = p.ID
		*keys = append(*keys, key)
	}
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

// removeLocked drops a row and every index entry that points at it.
func (c *ownerCache) removeLocked(e *list.Element) {
	entry := e.Value.(*cached)
	id := entry.peer.ID
	c.lru.Remove(e)
	delete(c.byID, id)
	for _, name := range entry.names {
		if c.byName[name] == id {
			delete(c.byName, name)
		}
	}
	for _, phone := range entry.phones {
		if c.byPhone[phone] == id {
			delete(c.byPhone, phone)
		}
	}
}

// invalidatePeers drops what a write of these peers may change: their rows,
// and every cached name or phone they held or now claim. It returns the new
// generation: the one writeThrough must find for the write's result to be
// cached.
func (c *ownerCache) invalidatePeers(peers []storage.Peer) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.invalidateLocked(peers)
	return c.gen
}

// writeResult is what lua/update_peers.lua reports beyond its arguments: the
// usernames and phones a written peer lists but does not hold, and the
// access hashes kept for min peers.
type writeResult struct {
	lostNames  map[string]bool
	lostPhones map[string]bool
	keptHash   map[int64]int64
}

// stored returns the row Redis holds for p after the write.
func (r writeResult) stored(p storage.Peer) storage.Peer {
	if h, ok := r.keptHash[p.ID]; ok {
		p.AccessHash, p.Min = storage.Some(h), false
	}
	return p
}

// writeThrough caches what an own write of peers left in Redis, if no other
// write or invalidation happened since the generation gen it began in (then
// it drops the peers, as invalidatePeers). It returns the generation a next
// part of the same write must find, and whether the result was cached.
// The cache then holds exactly what Redis holds for these peers, their
// names and their phones (TestCacheEqualsRedis).
func (c *ownerCache) writeThrough(gen uint64, peers []storage.Peer, r writeResult) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++ // a read that began before the write must not fill afterwards
	if gen+1 != c.gen || c.max <= 0 {
		c.invalidateLocked(peers)
		return c.gen, false
	}
	// First every peer's row, dropping the index entries of the names and
	// phones it no longer lists (Redis dropped them if they pointed at it);
	// then the claims, in batch order (a later peer may take an earlier
	// one's name).
	for _, p := range peers {
		var names, phones []string
		if e, ok := c.byID[p.ID]; ok {
			entry := e.Value.(*cached)
			names, phones = entry.names, entry.phones
			c.lru.Remove(e)
			delete(c.byID, p.ID)
		}
		for _, n := range names {
			if c.byName[n] == p.ID && !slices.Contains(p.Usernames, n) {
				delete(c.byName, n)
			}
		}
		for _, ph := range phones {
			if c.byPhone[ph] == p.ID && ph != p.PhoneNumber {
				delete(c.byPhone, ph)
			}
		}
		c.byID[p.ID] = c.lru.PushFront(&cached{peer: clonePeer(r.stored(p))})
	}
	for _, p := range peers {
		entry := c.byID[p.ID].Value.(*cached)
		for _, n := range p.Usernames {
			if r.lostNames[n] {
				if c.byName[n] == p.ID {
					delete(c.byName, n)
				}
				continue
			}
			c.byName[n] = p.ID
			entry.names = append(entry.names, n)
		}
		if ph := p.PhoneNumber; ph != "" {
			if r.lostPhones[ph] {
				if c.byPhone[ph] == p.ID {
					delete(c.byPhone, ph)
				}
			} else {
				c.byPhone[ph] = p.ID
				entry.phones = append(entry.phones, ph)
			}
		}
	}
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
	return c.gen, true
}

// invalidateLocked is invalidatePeers' work, with the mutex held.
func (c *ownerCache) invalidateLocked(peers []storage.Peer) {
	for _, p := range peers {
		if e, ok := c.byID[p.ID]; ok {
			c.removeLocked(e)
		}
		for _, u := range p.Usernames {
			delete(c.byName, u)
		}
		if p.PhoneNumber != "" {
			delete(c.byPhone, p.PhoneNumber)
		}
	}
}

// unchanged reports whether writing p (stamped now) would change nothing in
// Redis but last_update_on, and the stored last_update_on is less than
// window seconds old: then the write may be skipped (Options.RefreshWindow).
// It knows only cached peers; a peer it does not hold, or that lists a name
// or phone the cache does not show it holding (a write would claim it), is
// "changed".
func (c *ownerCache) unchanged(p storage.Peer, now, window int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[p.ID]
	if !ok {
		return false
	}
	q := e.Value.(*cached).peer
	if now-q.LastUpdateOn >= window || now < q.LastUpdateOn {
		return false
	}
	if p.Min && !q.Min && q.AccessHash.Valid { // the script keeps a known full access hash
		p.AccessHash, p.Min = q.AccessHash, false
	}
	if p.Type != q.Type || p.AccessHash != q.AccessHash || p.Min != q.Min || p.PhoneNumber != q.PhoneNumber ||
		!slices.Equal(p.Usernames, q.Usernames) {
		return false
	}
	// A peer that lists a name or phone the index does not give it (or that
	// the cache does not know it holds) would claim it again: not skipped.
	for _, n := range p.Usernames {
		if id, ok := c.byName[n]; !ok || id != p.ID {
			return false
		}
	}
	if ph := p.PhoneNumber; ph != "" {
		if id, ok := c.byPhone[ph]; !ok || id != p.ID {
			return false
		}
	}
	c.lru.MoveToFront(e)
	return true
}

// sessionFields returns the cached session.
func (c *ownerCache) sessionFields() (storage.Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return storage.Session{}, false
	}
	s := *c.session
	s.AuthKey = slices.Clone(s.AuthKey)
	return s, true
}

// fillSession caches the session read at generation gen.
func (c *ownerCache) fillSession(gen uint64, s storage.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	s.AuthKey = slices.Clone(s.AuthKey)
	c.session = &s
}

// invalidateSession drops the cached session (before a write of its fields).
func (c *ownerCache) invalidateSession() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.session = nil
}

// clear drops everything (lease lost or released, session deleted).
func (c *ownerCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Init()
	clear(c.byID)
	clear(c.byName)
	clear(c.byPhone)
	c.session = nil
}
