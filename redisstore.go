// Package redisstore keeps Telegram MTProto sessions (Hydrogram's storage
// contract, package storage) in Redis through any go-redis v9
// UniversalClient: a single server, Sentinel or Cluster.
//
// Data model (layout 2, see keys.go for the exact keys): one hash with the
// seven session fields and the layout version, one hash with every cached
// peer of the session (id -> encoded row), and index hashes for username -> id
// and phone -> id; nothing ever scans the keyspace. Every key of a session
// shares one cluster hash tag, and every multi-key write is one atomic Lua
// script (lua/*.lua) that validates and reads everything before its first
// write. WithCache adds an owner-side cache; WithDurability waits for
// replicas on critical writes.
//
// # Ownership
//
// Every store is built in one of two explicit modes. WithLease makes Open
// wait for the session's lease (package lock) and Close release it; every
// write script then checks the lease token atomically with the write, so a
// worker that lost its lease can never write again (lock.ErrLeaseLost).
// Unfenced is for single-process use and tools: its writes are refused while
// any worker holds the lease (lock.ErrHeld). Reads are never fenced.
//
// The store never closes the client it was given; the caller owns it.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// LayoutVersion is the data layout this code writes and reads. Open refuses
// a session stored with a different layout (storage.ErrLayoutVersion).
const LayoutVersion = 2

// DefaultBatchSize is how many peers one UpdatePeers script call carries.
const DefaultBatchSize = 1000

// authKeyRaw marks an auth key stored as plain bytes. The envelope leaves room
// for an encrypted form later; a value with another marker is refused.
const authKeyRaw = "raw:"

// Store is one session in Redis. It implements storage.Storage and is safe
// for concurrent use.
type Store struct {
	storage.Accessors

	rdb    redis.UniversalClient
	name   string
	prefix string
	keys   keys
	clock  storage.Clock
	batch  int
	create bool
	open   atomic.Bool

	durReplicas int           // WithDurability
	durTimeout  time.Duration // WithDurability

	cacheSize int         // WithCache
	cache     *ownerCache // nil without WithCache

	fenced    bool         // WithLease
	unfenced  bool         // Unfenced
	leaseOpts lock.Options // WithLease
	lease     atomic.Pointer[lock.Lease]
}

var (
	_ storage.Storage      = (*Store)(nil)
	_ storage.PeerScanner  = (*Store)(nil)
	_ storage.PeerImporter = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store) error

// WithPrefix sets the key prefix (default "tgsession"), e.g. one per tenant.
// It must not be empty or contain '{' or '}'.
func WithPrefix(prefix string) Option {
	return func(s *Store) error {
		if err := validPrefix(prefix); err != nil {
			return err
		}
		s.prefix = prefix
		return nil
	}
}

// WithClock sets the clock used for last_update_on, username expiry and
// Save. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Store) error {
		s.clock = now
		return nil
	}
}

// WithBatchSize sets how many peers one UpdatePeers script call carries
// (default 1000). Larger batches are split; each part is atomic on its own.
func WithBatchSize(n int) Option {
	return func(s *Store) error {
		if n < 1 {
			return fmt.Errorf("redisstore: batch size %d must be positive", n)
		}
		s.batch = n
		return nil
	}
}

// OpenExisting makes Open fail with storage.ErrSessionNotFound instead of
// creating a missing session (for tools that inspect or export).
func OpenExisting() Option {
	return func(s *Store) error {
		s.create = false
		return nil
	}
}

// WithLease makes the store own its session exclusively: Open waits (as long
// as its context allows) for the session's lease, renews it in the
// background, and Close releases it; every write is fenced by the lease
// token. Use Lease().Lost() to learn the moment ownership is lost.
func WithLease(opts lock.Options) Option {
	return func(s *Store) error {
		s.fenced, s.leaseOpts = true, opts
		return nil
	}
}

// WithDurability makes the store's critical writes (any write of the auth
// key or dc_id: SetAuthKey, SetDCID, SetSession, ImportSessionString) wait
// until replicas replicas confirm them (Redis WAIT on the same connection,
// on every topology), up to timeout. A write confirmed by fewer returns an
// error wrapping storage.ErrNotDurable: it was applied on the primary but a
// failover now could lose it. Combine with lock.Options.WaitReplicas for the
// lease. Other writes (the peer cache) are not waited for.
func WithDurability(replicas int, timeout time.Duration) Option {
	return func(s *Store) error {
		if replicas < 1 || timeout <= 0 {
			return fmt.Errorf("redisstore: durability needs at least 1 replica and a positive timeout (got %d, %v)", replicas, timeout)
		}
		s.durReplicas, s.durTimeout = replicas, timeout
		return nil
	}
}

// WithCache lets a store that owns its session (WithLease) serve lookups and
// the session fields from process memory: holding the lease it is the only
// writer, so its own writes are all that can change the data. The cache
// keeps at most maxPeers peers (least recently used out), is invalidated by
// this store's writes, and is dropped (and bypassed) whenever the lease is
// not valid: lost, expired by the owner's own deadline, or released. After an
// operator's force-release the owner learns of it at its next renewal, so it
// may serve its cache for up to RenewEvery longer.
func WithCache(maxPeers int) Option {
	return func(s *Store) error {
		if maxPeers < 1 {
			return fmt.Errorf("redisstore: cache size %d must be positive", maxPeers)
		}
		s.cacheSize = maxPeers
		return nil
	}
}

// Unfenced opens the store without a lease, for single-process use and
// operator tools. Its writes are refused (lock.ErrHeld) while a worker holds
// the session's lease.
func Unfenced() Option {
	return func(s *Store) error {
		s.unfenced = true
		return nil
	}
}

// New returns a store for the session called name. Any name is allowed,
// including "" and names with '{', '}' or ':': it is escaped into the hash
// tag. New does not contact Redis; call Open.
func New(client redis.UniversalClient, name string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client: pass a go-redis client (redis.NewClient, NewFailoverClient or NewClusterClient)")
	}
	s := &Store{
		rdb:    client,
		name:   name,
		prefix: DefaultPrefix,
		batch:  DefaultBatchSize,
		create: true,
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.fenced == s.unfenced {
		return nil, errors.New("redisstore: choose one ownership mode: WithLease(lock.Options{}) for workers, or Unfenced() for single-process use and tools")
	}
	if s.cacheSize > 0 {
		if !s.fenced {
			return nil, errors.New("redisstore: WithCache needs WithLease: only the session's owner can trust its memory")
		}
		s.cache = newOwnerCache(s.cacheSize)
	}
	s.keys = newKeys(s.prefix, name)
	s.Accessors = storage.Accessors{IO: s}
	return s, nil
}

// LeaseKey returns the key of the session's lease (for lock.Inspect and
// lock.ForceRelease).
func (s *Store) LeaseKey() string { return s.keys.lease }

// Name returns the session name.
func (s *Store) Name() string { return s.name }

// String names the store without any secret.
func (s *Store) String() string { return fmt.Sprintf("redisstore(%s)", s.label()) }

func (s *Store) label() string {
	n := s.name
	if len(n) > 64 {
		n = n[:64] + "..."
	}
	return fmt.Sprintf("%s/%q", s.prefix, n)
}

func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	redisutil.ReloadOnFailover(s.rdb, err)
	switch {
	case redis.HasErrorPrefix(err, "NOSESSION"):
		err = storage.ErrSessionNotFound
	case redis.HasErrorPrefix(err, "LAYOUT"):
		err = fmt.Errorf("%w (%s)", storage.ErrLayoutVersion, strings.TrimPrefix(err.Error(), "LAYOUT "))
	case redis.HasErrorPrefix(err, "LEASELOST"):
		err = lock.ErrLeaseLost
	case redis.HasErrorPrefix(err, "LEASEHELD"):
		err = fmt.Errorf("%w (a store opened Unfenced cannot write while a worker owns the session; stop it, or release its lease)", lock.ErrHeld)
	case redis.HasErrorPrefix(err, "BADARG"):
		err = fmt.Errorf("%w: %s", storage.ErrInvalid, strings.TrimPrefix(err.Error(), "BADARG "))
	}
	return fmt.Errorf("redisstore: %s %s: %w", op, s.label(), err)
}

func (s *Store) checkOpen(op string) error {
	if !s.open.Load() {
		return s.fail(op, storage.ErrClosed)
	}
	return nil
}

// Open creates the session if it is missing (unless OpenExisting was given),
// checks its layout version and registers its name under the prefix.
// It finishes a Delete that was interrupted before creating anew. With
// WithLease it first waits for the lease (until ctx is done) and gives it
// back if opening fails.
func (s *Store) Open(ctx context.Context) error {
	if s.fenced {
		if l := s.lease.Load(); l == nil || l.Valid() != nil {
			l, err := lock.Acquire(ctx, s.rdb, s.keys.lease, s.leaseOpts)
			if err != nil {
				return s.fail("open", err)
			}
			if s.cache != nil {
				s.cache.clear() // another owner may have written since
			}
			s.lease.Store(l)
		}
		if err := s.open1(ctx); err != nil {
			s.releaseLease()
			return err
		}
		return nil
	}
	return s.open1(ctx)
}

func (s *Store) open1(ctx context.Context) error {
	token, err := s.token("open")
	if err != nil {
		return err
	}
	create := "0"
	if s.create {
		create = "1"
		// Register first: a crash in between leaves a name without a
		// session (listing tools skip it), never a session without a name.
		if err := s.rdb.SAdd(ctx, registryKey(s.prefix), s.name).Err(); err != nil {
			return s.fail("open", err)
		}
	}
	for range 3 {
		res, err := scriptOpen.Run(ctx, s.rdb, []string{s.keys.session, s.keys.peers, s.keys.lease}, LayoutVersion, create, token).StringSlice()
		if err != nil {
			return s.fail("open", err)
		}
		if len(res) != 2 {
			return s.fail("open", fmt.Errorf("unexpected reply %q", res))
		}
		switch res[0] {
		case "created":
		case "exists":
			if v, err := strconv.Atoi(res[1]); err != nil || v != LayoutVersion {
				return s.fail("open", fmt.Errorf("%w (stored layout %q, this code knows %d)", storage.ErrLayoutVersion, res[1], LayoutVersion))
			}
		case "missing":
			return s.fail("open", storage.ErrSessionNotFound)
		case "dirty":
			if err := s.deletePeers(ctx, token); err != nil {
				return err
			}
			continue
		default:
			return s.fail("open", fmt.Errorf("unexpected reply %q", res))
		}
		s.open.Store(true)
		return nil
	}
	return s.fail("open", errors.New("session keeps being deleted concurrently; retry"))
}

// Close marks the store closed and, with WithLease, releases the lease so a
// waiting worker takes over at once. It does not close the Redis client.
func (s *Store) Close() error {
	s.open.Store(false)
	if s.cache != nil {
		s.cache.clear()
	}
	return s.releaseLease()
}

func (s *Store) releaseLease() error {
	l := s.lease.Swap(nil)
	if l == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Release(ctx); err != nil && !errors.Is(err, lock.ErrLeaseLost) && !errors.Is(err, lock.ErrReleased) {
		return s.fail("close", err)
	}
	return nil
}

// Lease returns the lease the store holds (nil when Unfenced or closed).
// Its Lost channel fires the moment this worker can no longer be sure it
// owns the session.
func (s *Store) Lease() *lock.Lease { return s.lease.Load() }

// ownCache returns the cache if it may be used now: the store caches and
// holds a valid lease. Otherwise the cache is dropped and nil returned.
func (s *Store) ownCache() *ownerCache {
	if s.cache == nil {
		return nil
	}
	if l := s.lease.Load(); l != nil && l.Valid() == nil && s.open.Load() {
		return s.cache
	}
	s.cache.clear()
	return nil
}

// token returns the lease token for a fenced write, or "" when Unfenced. A
// lease this worker no longer trusts fails here, without a round trip.
func (s *Store) token(op string) (string, error) {
	if !s.fenced {
		return "", nil
	}
	l := s.lease.Load()
	if l == nil {
		return "", s.fail(op, lock.ErrLeaseLost)
	}
	if err := l.Valid(); err != nil {
		return "", s.fail(op, err)
	}
	return l.Token(), nil
}

// Save stamps date with the store's clock.
func (s *Store) Save(ctx context.Context) error {
	return s.SetDate(ctx, s.clock.Now().Unix())
}

// Delete removes the session, every cached peer and both indexes in one
// atomic script (UNLINK frees the peer hash in the background, so the server's
// work does not grow with the cache), then removes the name from the registry.
// It works on a closed store (Hydrogram deletes after close) and is a no-op
// for a session that does not exist. With WithLease and no lease held (after
// Close), it takes the lease for the duration of the Delete if nobody owns
// the session, and fails with lock.ErrHeld if somebody does; a store whose
// lease was lost gets lock.ErrLeaseLost.
func (s *Store) Delete(ctx context.Context) error {
	var token string
	if s.fenced && s.lease.Load() == nil {
		tmp, err := lock.TryAcquire(ctx, s.rdb, s.keys.lease, s.leaseOpts)
		if err != nil {
			return s.fail("delete", err)
		}
		defer tmp.Release(context.WithoutCancel(ctx))
		token = tmp.Token()
	} else {
		var err error
		if token, err = s.token("delete"); err != nil {
			return err
		}
	}
	if s.cache != nil {
		s.cache.clear()
		defer s.cache.clear()
	}
	if err := s.deletePeers(ctx, token); err != nil {
		return err
	}
	if err := s.rdb.SRem(ctx, registryKey(s.prefix), s.name).Err(); err != nil {
		return s.fail("delete", err)
	}
	return nil
}

func (s *Store) deletePeers(ctx context.Context, token string) error {
	k := []string{s.keys.session, s.keys.peers, s.keys.usernames, s.keys.phones, s.keys.lease}
	return s.fail("delete", scriptDelete.Run(ctx, s.rdb, k, token).Err())
}

// PeerCount returns how many peers the session caches (one HLEN).
func (s *Store) PeerCount(ctx context.Context) (int64, error) {
	if err := s.checkOpen("count peers"); err != nil {
		return 0, err
	}
	n, err := s.rdb.HLen(ctx, s.keys.peers).Result()
	return n, s.fail("count peers", err)
}

// Session reads every field in one round trip (HGETALL).
func (s *Store) Session(ctx context.Context) (storage.Session, error) {
	if err := s.checkOpen("read session"); err != nil {
		return storage.Session{}, err
	}
	c := s.ownCache()
	var gen uint64
	if c != nil {
		if sess, ok := c.sessionFields(); ok {
			return sess, nil
		}
		gen = c.generation()
	}
	m, err := s.rdb.HGetAll(ctx, s.keys.session).Result()
	if err != nil {
		return storage.Session{}, s.fail("read session", err)
	}
	if len(m) == 0 {
		return storage.Session{}, s.fail("read session", storage.ErrSessionNotFound)
	}
	sess, err := decodeSession(m)
	if err == nil && c != nil {
		c.fillSession(gen, sess)
	}
	return sess, s.fail("read session", err)
}

// SetFields validates, then writes the fields of v named by which in one
// atomic script call. A NULL value removes the field.
func (s *Store) SetFields(ctx context.Context, v storage.Session, which storage.Field) error {
	if err := s.checkOpen("write session"); err != nil {
		return err
	}
	if err := v.Validate(which); err != nil {
		return s.fail("write session", err)
	}
	token, err := s.token("write session")
	if err != nil {
		return err
	}
	return s.setFields(ctx, token, v, which)
}

func (s *Store) setFields(ctx context.Context, token string, v storage.Session, which storage.Field) error {
	if s.cache != nil {
		s.cache.invalidateSession()
		defer s.cache.invalidateSession() // also after: a read racing the write must not refill
	}
	args := append([]any{LayoutVersion, token}, encodeSession(v, which)...)
	keys := []string{s.keys.session, s.keys.lease}
	if s.durReplicas > 0 && which&(storage.FieldAuthKey|storage.FieldDCID) != 0 {
		return s.durable(ctx, "write session", scriptSetFields, keys, args...)
	}
	return s.fail("write session", scriptSetFields.Run(ctx, s.rdb, keys, args...).Err())
}

// durable runs a script and WAIT on one connection to the keys' primary.
func (s *Store) durable(ctx context.Context, op string, script *redis.Script, keys []string, args ...any) error {
	run := func(eval bool) (int, error) {
		return redisutil.Do(ctx, s.rdb, keys[0], s.durReplicas, s.durTimeout, func(p redis.Pipeliner) {
			if eval {
				script.Eval(ctx, p, keys, args...)
			} else {
				script.EvalSha(ctx, p, keys, args...)
			}
		})
	}
	n, err := run(false)
	if redis.HasErrorPrefix(err, "NOSCRIPT") { // a restarted or promoted server
		n, err = run(true)
	}
	if err != nil {
		return s.fail(op, err)
	}
	if n < s.durReplicas {
		return s.fail(op, fmt.Errorf("%w: %d of %d replicas confirmed within %v", storage.ErrNotDurable, n, s.durReplicas, s.durTimeout))
	}
	return nil
}

// UpdatePeers validates and normalizes the whole batch, then writes it with
// one script call per WithBatchSize peers. An empty batch makes no round trip.
func (s *Store) UpdatePeers(ctx context.Context, peers []storage.Peer) error {
	if err := s.checkOpen("update peers"); err != nil {
		return err
	}
	if len(peers) == 0 {
		return nil
	}
	norm, err := storage.NormalizePeers(peers)
	if err != nil {
		return s.fail("update peers", err)
	}
	now := s.clock.Now().Unix()
	if now < 0 {
		return s.fail("update peers", fmt.Errorf("%w: clock reads %d, before 1970", storage.ErrInvalid, now))
	}
	for i := range norm {
		norm[i].LastUpdateOn = now
	}
	token, err := s.token("update peers")
	if err != nil {
		return err
	}
	return s.updatePeers(ctx, token, norm)
}

// ImportPeers writes peers like UpdatePeers but keeps each peer's
// LastUpdateOn (for copying a session between stores); a username held by
// several peers goes to the one with the latest LastUpdateOn.
func (s *Store) ImportPeers(ctx context.Context, peers []storage.Peer) error {
	if err := s.checkOpen("import peers"); err != nil {
		return err
	}
	if len(peers) == 0 {
		return nil
	}
	norm, err := storage.NormalizePeers(peers)
	if err != nil {
		return s.fail("import peers", err)
	}
	for _, p := range norm {
		if p.LastUpdateOn < 0 {
			return s.fail("import peers", fmt.Errorf("%w: peer %d: last_update_on %d is before 1970", storage.ErrInvalid, p.ID, p.LastUpdateOn))
		}
	}
	token, err := s.token("import peers")
	if err != nil {
		return err
	}
	return s.updatePeers(ctx, token, norm)
}

func (s *Store) updatePeers(ctx context.Context, token string, norm []storage.Peer) error {
	if s.cache != nil {
		s.cache.invalidatePeers(norm)
		defer s.cache.invalidatePeers(norm) // also after: a read racing the write must not refill
	}
	k := []string{s.keys.session, s.keys.peers, s.keys.usernames, s.keys.phones, s.keys.lease}
	for len(norm) > 0 {
		chunk := norm[:min(s.batch, len(norm))]
		norm = norm[len(chunk):]
		if err := scriptUpdatePeers.Run(ctx, s.rdb, k, peerArgs(token, chunk)...).Err(); err != nil {
			return s.fail("update peers", err)
		}
	}
	return nil
}

// peerArgs encodes a batch for update_peers.lua: one argument per peer,
// "id|type|access_hash|usernames|phone|min|last_update_on".
func peerArgs(token string, peers []storage.Peer) []any {
	args := make([]any, 0, 2+len(peers))
	args = append(args, strconv.Itoa(LayoutVersion), token)
	var b []byte
	for _, p := range peers {
		b = strconv.AppendInt(b[:0], p.ID, 10)
		b = append(b, '|')
		b = append(b, p.Type...)
		b = append(b, '|')
		if p.AccessHash.Valid {
			b = strconv.AppendInt(b, p.AccessHash.V, 10)
		}
		b = append(b, '|')
		for i, u := range p.Usernames {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, u...)
		}
		b = append(b, '|')
		b = append(b, p.PhoneNumber...)
		b = append(b, '|')
		if p.Min {
			b = append(b, '1')
		}
		b = append(b, '|')
		b = strconv.AppendInt(b, p.LastUpdateOn, 10)
		args = append(args, string(b))
	}
	return args
}

// PeerByID returns the cached peer with that Bot-API id (one HGET).
func (s *Store) PeerByID(ctx context.Context, id int64) (storage.Peer, error) {
	if err := s.checkOpen("peer by id"); err != nil {
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
		return storage.Peer{}, s.fail("peer by id", err)
	}
	p, err := decodeRow(id, row)
	if err == nil && c != nil {
		c.fill(gen, p, "", "")
	}
	return p, s.fail("peer by id", err)
}

// PeerByUsername returns the current holder of a username, ignoring case and
// a leading '@' (one script call). A holder written more than
// storage.UsernameTTL ago is reported as storage.ErrUsernameExpired.
func (s *Store) PeerByUsername(ctx context.Context, username string) (storage.Peer, error) {
	if err := s.checkOpen("peer by username"); err != nil {
		return storage.Peer{}, err
	}
	n := storage.NormalizeUsername(username)
	if !storage.ValidLookupUsername(n) {
		return storage.Peer{}, storage.NotFoundByUsername(username)
	}
	c := s.ownCache()
	var gen uint64
	p, ok, err := storage.Peer{}, false, error(nil)
	if c != nil {
		p, ok = c.byIndex(false, n)
		gen = c.generation()
	}
	if !ok {
		p, ok, err = s.peerByIndex(ctx, s.keys.usernames, n)
		if ok && c != nil {
			c.fill(gen, p, n, "")
		}
	}
	switch {
	case err != nil:
		return p, s.fail("peer by username", err)
	case !ok:
		return p, storage.NotFoundByUsername(username)
	case storage.UsernameExpired(s.clock.Now().Unix(), p.LastUpdateOn):
		return storage.Peer{}, storage.ExpiredUsername(username)
	}
	return p, nil
}

// PeerByPhoneNumber returns the current holder of a phone number, ignoring
// '+', spaces, dashes and parentheses (one script call).
func (s *Store) PeerByPhoneNumber(ctx context.Context, phone string) (storage.Peer, error) {
	if err := s.checkOpen("peer by phone number"); err != nil {
		return storage.Peer{}, err
	}
	n := storage.NormalizePhoneNumber(phone)
	if !storage.ValidLookupPhoneNumber(n) {
		return storage.Peer{}, storage.NotFoundByPhoneNumber(phone)
	}
	c := s.ownCache()
	var gen uint64
	p, ok, err := storage.Peer{}, false, error(nil)
	if c != nil {
		p, ok = c.byIndex(true, n)
		gen = c.generation()
	}
	if !ok {
		p, ok, err = s.peerByIndex(ctx, s.keys.phones, n)
		if ok && c != nil {
			c.fill(gen, p, "", n)
		}
	}
	switch {
	case err != nil:
		return p, s.fail("peer by phone number", err)
	case !ok:
		return p, storage.NotFoundByPhoneNumber(phone)
	}
	return p, nil
}

func (s *Store) peerByIndex(ctx context.Context, index, key string) (storage.Peer, bool, error) {
	res, err := scriptPeerByIndex.Run(ctx, s.rdb, []string{index, s.keys.peers}, key).Slice()
	if errors.Is(err, redis.Nil) {
		return storage.Peer{}, false, nil
	}
	if err != nil {
		return storage.Peer{}, false, err
	}
	idStr, _ := res[0].(string)
	row, ok := res[1].(string)
	if len(res) != 2 || !ok {
		return storage.Peer{}, false, nil // index entry without a row: a miss
	}
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil {
		return storage.Peer{}, false, fmt.Errorf("corrupt index entry %q", idStr)
	}
	p, err := decodeRow(id, row)
	return p, err == nil, err
}

// ScanPeers returns about count cached peers (one HSCAN of the peers hash)
// and the next cursor.
func (s *Store) ScanPeers(ctx context.Context, cursor string, count int) ([]storage.Peer, string, error) {
	if err := s.checkOpen("scan peers"); err != nil {
		return nil, "", err
	}
	var cur uint64
	if cursor != "" {
		var err error
		if cur, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", s.fail("scan peers", fmt.Errorf("%w: bad cursor %q", storage.ErrInvalid, cursor))
		}
	}
	kv, next, err := s.rdb.HScan(ctx, s.keys.peers, cur, "", int64(max(count, 1))).Result()
	if err != nil {
		return nil, "", s.fail("scan peers", err)
	}
	peers := make([]storage.Peer, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		id, err := strconv.ParseInt(kv[i], 10, 64)
		if err != nil {
			return nil, "", s.fail("scan peers", fmt.Errorf("corrupt peer id %q", kv[i]))
		}
		p, err := decodeRow(id, kv[i+1])
		if err != nil {
			return nil, "", s.fail("scan peers", err)
		}
		peers = append(peers, p)
	}
	nextCursor := ""
	if next != 0 {
		nextCursor = strconv.FormatUint(next, 10)
	}
	return peers, nextCursor, nil
}

// ListSessions returns the names registered under a prefix (default
// "tgsession"), reading the registry set with SSCAN; it never scans the
// keyspace. A name may outlive its session briefly if a process died between
// registering and creating it.
func ListSessions(ctx context.Context, client redis.UniversalClient, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	var names []string
	var cursor uint64
	for {
		page, next, err := client.SScan(ctx, registryKey(prefix), cursor, "", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: list sessions under %q: %w", prefix, err)
		}
		names = append(names, page...)
		if cursor = next; cursor == 0 {
			return names, nil
		}
	}
}
