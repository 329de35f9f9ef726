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
// and every cached name or phone they held or now claim.
func (c *ownerCache) invalidatePeers(peers []storage.Peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
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
