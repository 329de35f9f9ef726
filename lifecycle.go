package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// Open creates the session if it is missing (unless Options.OpenExisting),
// checks its layout version and registers its name under the prefix. It
// finishes a Delete that was interrupted before creating anew. A Leased store
// first waits for the lease (until ctx is done; with Options.LeaseManager it
// does not wait and fails with lock.ErrHeld) and gives it back if opening
// fails.
func (s *Store) Open(ctx context.Context) error {
	if s.opts.Mode != Leased {
		return s.openSession(ctx)
	}
	if err := s.checkEviction(ctx); err != nil {
		return err
	}
	if l := s.lease.Load(); l == nil || l.Valid() != nil {
		var l *lock.Lease
		var err error
		if m := s.opts.LeaseManager; m != nil {
			l, err = m.TryAcquire(ctx, s.keys.lease)
		} else {
			l, err = lock.Acquire(ctx, s.rdb, s.keys.lease, s.opts.Lease)
		}
		if err != nil {
			return s.fail("open", err)
		}
		if s.cache != nil {
			s.cache.clear() // another owner may have written since
		}
		s.lease.Store(l)
	}
	if err := s.openSession(ctx); err != nil {
		_ = s.releaseLease()
		return err
	}
	s.resealOnOpen(ctx)
	return nil
}

// resealOnOpen re-seals the auth key with the keyring's current key when
// another key (or none) sealed it, so that rotating the keyring needs no
// tgsession rekey for the sessions workers own. It never fails Open: a
// session it cannot re-seal now is re-sealed by its next auth-key write.
func (s *Store) resealOnOpen(ctx context.Context) {
	if s.opts.Keys == nil {
		return
	}
	if _, err := s.Reseal(ctx); err != nil && s.opts.Logger != nil {
		s.opts.Logger.Warn("redisstore: could not re-seal the auth key with the keyring's current key; its next write will", "store", s.String(), "err", err)
	}
}

// openSession registers the name and runs open.lua. It creates the session
// only if it may (Options.Create for a Leased store; an Unfenced one unless
// OpenExisting) and the name was not registered before and this store never
// saw it (or Options.RecreateLost): a known session without data is a lost
// one (ErrSessionLost), not a new one. Peers left without a session hash
// ("dirty") are removed first.
func (s *Store) openSession(ctx context.Context) error {
	token, err := s.token("open")
	if err != nil {
		return err
	}
	mayCreate := !s.opts.OpenExisting && (s.opts.Mode == Unfenced || s.opts.Create)
	if s.seen.Load() && !s.opts.RecreateLost {
		mayCreate = false // this store knew it: its absence is a loss, and registering it again would hide that
	}
	create := false
	if mayCreate {
		// Register first: a crash in between leaves a name without a
		// session (Open then reports it lost), never a session without a
		// name.
		added, err := s.rdb.SAdd(ctx, registryKey(s.opts.Prefix), s.name).Result()
		if err != nil {
			return s.fail("open", err)
		}
		create = (added == 1 && !s.seen.Load()) || s.opts.RecreateLost
	}
	for range 3 {
		res, err := openCall(s.keys, create, token).run(ctx, s.rdb).StringSlice()
		if err != nil {
			return s.fail("open", err)
		}
		if len(res) != 2 {
			return s.fail("open", fmt.Errorf("unexpected reply %q", res))
		}
		switch res[0] {
		case "created":
		case "exists":
			if res[1] != fmt.Sprint(LayoutVersion) {
				return s.fail("open", layoutError(res[1]))
			}
		case "missing":
			return s.fail("open", s.missing(ctx, mayCreate))
		case "dirty":
			if err := s.deleteSession(ctx, token); err != nil {
				return err
			}
			continue
		default:
			return s.fail("open", fmt.Errorf("unexpected reply %q", res))
		}
		s.seen.Store(true)
		s.open.Store(true)
		return nil
	}
	return s.fail("open", errors.New("session keeps being deleted concurrently; retry"))
}

// missing says why Open found no session: lost (known to this store, or
// registered), not found (never created here: the registry lists others),
// or either (nothing at all is registered under the prefix).
func (s *Store) missing(ctx context.Context, registered bool) error {
	if s.seen.Load() {
		return fmt.Errorf("%w (this store had opened it)", ErrSessionLost)
	}
	if !registered {
		pipe := s.rdb.Pipeline()
		member := pipe.SIsMember(ctx, registryKey(s.opts.Prefix), s.name)
		others := pipe.SCard(ctx, registryKey(s.opts.Prefix))
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		registered = member.Val()
		if !registered && others.Val() == 0 {
			return fmt.Errorf("%w, and no session at all is registered under prefix %q: it was never created (open with Options.Create for a first login, or import it), or it was lost with everything else (%w)",
				storage.ErrSessionNotFound, s.opts.Prefix, ErrSessionLost)
		}
	}
	if registered {
		return fmt.Errorf("%w (the name is registered)", ErrSessionLost)
	}
	if s.opts.Mode == Leased && !s.opts.OpenExisting {
		return fmt.Errorf("%w: create it with Options.Create (a first login) or import it (tgsession import)", storage.ErrSessionNotFound)
	}
	return storage.ErrSessionNotFound
}

// unsafePolicy reports a maxmemory setting under which Redis may evict the
// store's keys: any limit with a policy other than noeviction (volatile-*
// policies evict the lease, which has a TTL; allkeys-* evict anything).
func unsafePolicy(maxmemory, policy string) bool {
	return maxmemory != "" && maxmemory != "0" && policy != "noeviction"
}

// checkEviction refuses, once per store, a server that may evict the
// session's keys (INFO memory, or CONFIG GET, on every primary), unless
// Options.AllowEviction. If the server answers neither (an ACL, or a server
// without them), it warns once through Options.Logger and goes on; a network
// error fails Open, to be checked again on the next.
func (s *Store) checkEviction(ctx context.Context) error {
	if s.opts.AllowEviction || s.evictionChecked.Load() {
		return nil
	}
	check := func(ctx context.Context, c redis.UniversalClient) error {
		maxmemory, policy, err := evictionSettings(ctx, c)
		if err != nil {
			return err
		}
		if unsafePolicy(maxmemory, policy) {
			return fmt.Errorf("%w: the server has maxmemory %s bytes with maxmemory-policy %s, which can evict session keys (the auth key) and leases: set maxmemory-policy noeviction (or maxmemory 0), or open with Options.AllowEviction",
				errEvictionPolicy, maxmemory, policy)
		}
		return nil
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return check(ctx, c) })
	} else {
		err = check(ctx, s.rdb)
	}
	var replied redis.Error
	switch {
	case errors.Is(err, errEvictionPolicy):
		return s.fail("open", err)
	case errors.As(err, &replied):
		if s.opts.Logger != nil {
			s.opts.Logger.Warn("redisstore: cannot check maxmemory-policy (the server refused INFO and CONFIG GET); make sure it is noeviction", "store", s.String(), "err", err)
		}
	case err != nil:
		return s.fail("open", fmt.Errorf("check maxmemory-policy: %w", err))
	}
	s.evictionChecked.Store(true)
	return nil
}

var errEvictionPolicy = errors.New("eviction can lose sessions")

// evictionSettings reads maxmemory and maxmemory-policy with INFO memory, or
// CONFIG GET if INFO is refused.
func evictionSettings(ctx context.Context, c redis.UniversalClient) (maxmemory, policy string, err error) {
	info, err := c.Info(ctx, "memory").Result()
	if err == nil && redisutil.InfoField(info, "maxmemory_policy") != "" {
		return redisutil.InfoField(info, "maxmemory"), redisutil.InfoField(info, "maxmemory_policy"), nil
	}
	var replied redis.Error
	if err != nil && !errors.As(err, &replied) {
		return "", "", err
	}
	cfg, cerr := c.ConfigGet(ctx, "maxmemory*").Result()
	if cerr != nil {
		return "", "", errors.Join(err, cerr)
	}
	if _, ok := cfg["maxmemory-policy"]; !ok {
		return "", "", errors.Join(err, noPolicy{})
	}
	return cfg["maxmemory"], cfg["maxmemory-policy"], nil
}

// noPolicy is a server's answer without a maxmemory-policy; it counts as a
// reply (redis.Error), not a network failure.
type noPolicy struct{}

func (noPolicy) Error() string { return "CONFIG GET returned no maxmemory-policy" }
func (noPolicy) RedisError()   {}

// Close marks the store closed and, when Leased, releases the lease so a
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
	if s.opts.Mode != Leased {
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

// Delete removes the session, every cached peer and both indexes in one
// atomic script (UNLINK frees the peer hash in the background, so the server's
// work does not grow with the cache), then removes the name from the registry.
// It works on a closed store (Hydrogram deletes after close) and is a no-op
// for a session that does not exist. A Leased store that holds no lease
// (after Close) takes the lease for the duration of the Delete if nobody owns
// the session, and fails with lock.ErrHeld if somebody does; a store whose
// lease was lost gets lock.ErrLeaseLost.
func (s *Store) Delete(ctx context.Context) error {
	var token string
	if s.opts.Mode == Leased && s.lease.Load() == nil {
		tmp, err := lock.TryAcquire(ctx, s.rdb, s.keys.lease, s.opts.Lease)
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
	if err := s.deleteSession(ctx, token); err != nil {
		return err
	}
	s.seen.Store(false) // deleted on purpose: a later Open may create it anew
	if err := s.rdb.SRem(ctx, registryKey(s.opts.Prefix), s.name).Err(); err != nil {
		return s.fail("delete", err)
	}
	return nil
}

// deleteSession removes the session's keys (but the lease) in one script,
// with the staged keys of any Replace begun (a crashed import's).
func (s *Store) deleteSession(ctx context.Context, token string) error {
	var stages []string
	for cursor := uint64(0); ; { // SSCAN: the README's ACLs grant it (the set is small)
		page, next, err := s.rdb.SScan(ctx, s.keys.stages, cursor, "", 100).Result()
		if err != nil {
			return s.fail("delete", err)
		}
		stages = append(stages, page...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	return s.failWrite("delete", deleteCall(s.keys, token, stages).run(ctx, s.rdb).Err())
}

// ListSessions returns the names registered under a prefix (DefaultPrefix
// when empty), reading the registry set with SSCAN; it never scans the
// keyspace. A name whose session data is gone (ErrSessionLost) is listed too.
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
