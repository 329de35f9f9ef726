// Package memstore is an in-memory storage.Storage: pure Go, safe for
// concurrent use, with the same semantics as the Redis store (NULL fields,
// several usernames per peer, min peers, the 8 h username TTL on an
// injectable clock) and held to the same conformance suite. It is the store
// for tests and single-process tools; nothing survives the process.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tgsession/redisstore/storage"
)

// Store is one session in memory.
type Store struct {
	storage.Accessors

	name  string
	clock storage.Clock

	mu      sync.RWMutex
	open    bool
	exists  bool
	session storage.Session
	peers   map[int64]storage.Peer
	users   map[string]int64 // username -> the latest holder
	phones  map[string]int64 // phone -> the latest holder
	order   []int64          // sorted ids for ScanPeers; nil when stale

	state    *storage.UpdateState // nil when none is stored
	channels map[int64]int        // channel id -> pts, with state
	data     map[string][]byte    // client data
}

var (
	_ storage.Storage      = (*Store)(nil)
	_ storage.PeerScanner  = (*Store)(nil)
	_ storage.PeerImporter = (*Store)(nil)
)

// Options configure a Store; the zero value uses the defaults.
type Options struct {
	// Clock is read for last_update_on, username expiry and Save (default
	// time.Now).
	Clock func() time.Time
}

// New returns an empty, unopened store for the session called name.
func New(name string, opts Options) *Store {
	s := &Store{name: name, clock: opts.Clock}
	s.Accessors = storage.Accessors{IO: s}
	return s
}

// String names the store.
func (s *Store) String() string { return fmt.Sprintf("memstore(%q)", s.name) }

func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("memstore: %s %q: %w", op, s.name, err)
}

// Open creates the session if it does not exist (dc_id 2, date 0).
func (s *Store) Open(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exists {
		s.exists = true
		s.session = storage.NewSession()
		s.reset()
	}
	s.open = true
	return nil
}

func (s *Store) reset() {
	s.peers = map[int64]storage.Peer{}
	s.users = map[string]int64{}
	s.phones = map[string]int64{}
	s.order = nil
	s.state, s.channels, s.data = nil, nil, map[string][]byte{}
}

// Close marks the store closed; the data stays for the next Open.
func (s *Store) Close() error {
	s.mu.Lock()
	s.open = false
	s.mu.Unlock()
	return nil
}

// Delete removes the session and its peers (also on a closed store).
func (s *Store) Delete(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exists = false
	s.session = storage.Session{}
	s.reset()
	return nil
}

// Save stamps date with the clock.
func (s *Store) Save(ctx context.Context) error {
	return s.SetDate(ctx, s.clock.Now().Unix())
}

// ready checks open and existing; the caller holds mu.
func (s *Store) ready(op string) error {
	switch {
	case !s.open:
		return s.fail(op, storage.ErrClosed)
	case !s.exists:
		return s.fail(op, storage.ErrSessionNotFound)
	}
	return nil
}

// Session returns every field.
func (s *Store) Session(context.Context) (storage.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.ready("read session"); err != nil {
		return storage.Session{}, err
	}
	out := s.session
	out.AuthKey = slices.Clone(out.AuthKey)
	return out, nil
}

// SetFields validates and writes the fields named by which.
func (s *Store) SetFields(_ context.Context, v storage.Session, which storage.Field) error {
	if err := v.Validate(which); err != nil {
		return s.fail("write session", err)
	}
	v.AuthKey = slices.Clone(v.AuthKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready("write session"); err != nil {
		return err
	}
	s.session = s.session.Merge(v, which)
	return nil
}

// UpdatePeers caches a batch, stamping it with the clock.
func (s *Store) UpdatePeers(_ context.Context, peers []storage.Peer) error {
	return s.write("update peers", peers, true)
}

// ImportPeers caches a batch keeping each peer's LastUpdateOn.
func (s *Store) ImportPeers(_ context.Context, peers []storage.Peer) error {
	return s.write("import peers", peers, false)
}

func (s *Store) write(op string, peers []storage.Peer, stamp bool) error {
	s.mu.RLock()
	err := s.ready(op)
	s.mu.RUnlock()
	if err != nil || len(peers) == 0 {
		return err
	}
	norm, err := storage.NormalizePeers(peers)
	if err != nil {
		return s.fail(op, err)
	}
	now := s.clock.Now().Unix()
	for i := range norm {
		if stamp {
			norm[i].LastUpdateOn = now
		}
		if norm[i].LastUpdateOn < 0 {
			return s.fail(op, fmt.Errorf("%w: peer %d: last_update_on before 1970", storage.ErrInvalid, norm[i].ID))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready(op); err != nil {
		return err
	}
	for _, p := range norm {
		s.put(p)
	}
	return nil
}

// put applies one normalized peer exactly as update_peers.lua does.
func (s *Store) put(p storage.Peer) {
	cur, existed := s.peers[p.ID]
	if p.Min && existed && !cur.Min && cur.AccessHash.Valid {
		p.AccessHash, p.Min = cur.AccessHash, false
	}
	for _, u := range cur.Usernames {
		if !slices.Contains(p.Usernames, u) && s.users[u] == p.ID {
			delete(s.users, u)
		}
	}
	if cur.PhoneNumber != "" && cur.PhoneNumber != p.PhoneNumber && s.phones[cur.PhoneNumber] == p.ID {
		delete(s.phones, cur.PhoneNumber)
	}
	for _, u := range p.Usernames {
		s.claim(s.users, u, p)
	}
	if p.PhoneNumber != "" {
		s.claim(s.phones, p.PhoneNumber, p)
	}
	p.Usernames = slices.Clone(p.Usernames)
	s.peers[p.ID] = p
	if !existed {
		s.order = nil
	}
}

// claim points name at p unless its holder was written later.
func (s *Store) claim(index map[string]int64, name string, p storage.Peer) {
	if h, ok := index[name]; ok && h != p.ID {
		if holder, ok := s.peers[h]; ok && holder.LastUpdateOn > p.LastUpdateOn {
			return
		}
	}
	index[name] = p.ID
}

// peer looks a peer up. Like the Redis store, lookups in a deleted session
// are misses, not ErrSessionNotFound.
func (s *Store) peer(op string, id int64) (storage.Peer, bool, error) {
	if !s.open {
		return storage.Peer{}, false, s.fail(op, storage.ErrClosed)
	}
	p, ok := s.peers[id]
	p.Usernames = slices.Clone(p.Usernames)
	return p, ok, nil
}

// PeerByID returns the cached peer with that id.
func (s *Store) PeerByID(_ context.Context, id int64) (storage.Peer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok, err := s.peer("peer by id", id)
	if err == nil && !ok {
		err = storage.NotFoundByID(id)
	}
	return p, err
}

// PeerByUsername returns the latest holder of a username, by the storage
// package's rules (normalization, storage.UsernameTTL expiry).
func (s *Store) PeerByUsername(_ context.Context, username string) (storage.Peer, error) {
	n := storage.NormalizeUsername(username)
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, found := s.users[n]
	p, ok, err := s.peer("peer by username", id)
	switch {
	case err != nil:
		return p, err
	case !found || !ok:
		return storage.Peer{}, storage.NotFoundByUsername(username)
	case storage.UsernameExpired(s.clock.Now().Unix(), p.LastUpdateOn):
		return storage.Peer{}, storage.ExpiredUsername(username)
	}
	return p, nil
}

// PeerByPhoneNumber returns the latest holder of a phone number.
func (s *Store) PeerByPhoneNumber(_ context.Context, phone string) (storage.Peer, error) {
	n := storage.NormalizePhoneNumber(phone)
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, found := s.phones[n]
	p, ok, err := s.peer("peer by phone number", id)
	switch {
	case err != nil:
		return p, err
	case !found || !ok:
		return storage.Peer{}, storage.NotFoundByPhoneNumber(phone)
	}
	return p, nil
}

// ScanPeers returns up to count peers in id order after cursor ("" starts).
func (s *Store) ScanPeers(_ context.Context, cursor string, count int) ([]storage.Peer, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready("scan peers"); err != nil {
		return nil, "", err
	}
	if s.order == nil {
		s.order = make([]int64, 0, len(s.peers))
		for id := range s.peers {
			s.order = append(s.order, id)
		}
		slices.Sort(s.order)
	}
	start := 0
	if cursor != "" {
		after, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			return nil, "", s.fail("scan peers", fmt.Errorf("%w: bad cursor %q", storage.ErrInvalid, cursor))
		}
		start, _ = slices.BinarySearch(s.order, after+1)
	}
	end := min(start+max(count, 1), len(s.order))
	out := make([]storage.Peer, 0, end-start)
	for _, id := range s.order[start:end] {
		if p, ok := s.peers[id]; ok {
			p.Usernames = slices.Clone(p.Usernames)
			out = append(out, p)
		}
	}
	next := ""
	if end < len(s.order) {
		next = strconv.FormatInt(s.order[end-1], 10)
	}
	return out, next, nil
}

var _ storage.Replacer = (*Store)(nil)

// Replace begins replacing the whole session (storage.Replacer): the new
// content is built in a private store and swapped in by Commit under the
// store's lock. The store must be open.
func (s *Store) Replace(context.Context) (storage.Replacement, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.open {
		return nil, s.fail("replace", storage.ErrClosed)
	}
	next := New(s.name, Options{Clock: s.clock})
	next.open, next.exists = true, true
	next.reset()
	return &replacement{s: s, next: next}, nil
}

// replacement is a Replace in progress: the new content in a private store.
type replacement struct {
	s    *Store
	next *Store
	done bool
}

// ImportPeers adds peers to the new content, keeping their LastUpdateOn.
func (r *replacement) ImportPeers(ctx context.Context, peers []storage.Peer) error {
	if r.done {
		return r.s.fail("replace", errReplaceDone)
	}
	return r.next.ImportPeers(ctx, peers)
}

// Commit swaps the new content and v in under the store's lock.
func (r *replacement) Commit(_ context.Context, v storage.Session) error {
	if r.done {
		return r.s.fail("replace", errReplaceDone)
	}
	if err := v.Validate(storage.AllFields); err != nil {
		return r.s.fail("replace", err)
	}
	r.done = true
	s, n := r.s, r.next
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exists = true
	s.session = v
	s.session.AuthKey = slices.Clone(v.AuthKey)
	s.peers, s.users, s.phones, s.order = n.peers, n.users, n.phones, nil
	s.state, s.channels, s.data = nil, nil, map[string][]byte{} // a new session starts without them
	return nil
}

// Abort drops the new content.
func (r *replacement) Abort(context.Context) error {
	r.done = true
	return nil
}

var errReplaceDone = errors.New("this replacement was committed or aborted already")

var (
	_ storage.UpdateStateStore = (*Store)(nil)
	_ storage.ClientDataStore  = (*Store)(nil)
)

// UpdateState returns the update state and every channel's pts.
func (s *Store) UpdateState(context.Context) (storage.UpdateState, map[int64]int, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.ready("read update state"); err != nil {
		return storage.UpdateState{}, nil, false, err
	}
	if s.state == nil {
		return storage.UpdateState{}, nil, false, nil
	}
	ch := make(map[int64]int, len(s.channels))
	for k, v := range s.channels {
		ch[k] = v
	}
	return *s.state, ch, true, nil
}

// writeLocked runs fn under the store's lock after input validated (invalid
// is the validation's error) and the store is open and exists.
func (s *Store) writeLocked(op string, invalid error, fn func() error) error {
	if invalid != nil {
		return s.fail(op, invalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready(op); err != nil {
		return err
	}
	return fn()
}

// SetUpdateState stores the whole state and forgets the channels' pts.
func (s *Store) SetUpdateState(_ context.Context, v storage.UpdateState) error {
	return s.writeLocked("write update state", v.Validate(), func() error {
		s.state, s.channels = &v, map[int64]int{}
		return nil
	})
}

// SetUpdateFields writes some counters of the stored state.
func (s *Store) SetUpdateFields(_ context.Context, v storage.UpdateState, which storage.UpdateField) error {
	return s.writeLocked("write update state", v.Validate(), func() error { return s.setUpdateFields(v, which) })
}

// setUpdateFields is SetUpdateFields under the lock.
func (s *Store) setUpdateFields(v storage.UpdateState, which storage.UpdateField) error {
	if s.state == nil || s.state.UserID != v.UserID {
		return s.fail("write update state", storage.ErrUpdateStateNotFound)
	}
	if which.Has(storage.UpdatePts) {
		s.state.Pts = v.Pts
	}
	if which.Has(storage.UpdateQts) {
		s.state.Qts = v.Qts
	}
	if which.Has(storage.UpdateDate) {
		s.state.Date = v.Date
	}
	if which.Has(storage.UpdateSeq) {
		s.state.Seq = v.Seq
	}
	return nil
}

// SetChannelPts sets one channel's pts.
func (s *Store) SetChannelPts(_ context.Context, userID, channelID int64, pts int) error {
	return s.writeLocked("write channel pts", storage.ValidChannelPts(channelID, pts), func() error {
		if s.state == nil || s.state.UserID != userID {
			return s.fail("write channel pts", storage.ErrUpdateStateNotFound)
		}
		s.channels[channelID] = pts
		return nil
	})
}

// ClientData returns a client-data value.
func (s *Store) ClientData(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.ready("read client data"); err != nil {
		return nil, false, err
	}
	v, ok := s.data[key]
	return slices.Clone(v), ok, nil
}

// SetClientData stores (or, with an empty value, removes) a client-data value.
func (s *Store) SetClientData(_ context.Context, key string, value []byte) error {
	return s.writeLocked("write client data", storage.ValidClientData(key, value), func() error {
		if len(value) == 0 {
			delete(s.data, key)
		} else {
			s.data[key] = slices.Clone(value)
		}
		return nil
	})
}
