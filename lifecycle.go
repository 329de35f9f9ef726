package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// Open creates the session if it is missing (unless Options.OpenExisting),
// checks its layout version and registers its name under the prefix. It
// finishes a Delete that was interrupted before creating anew. A Leased store
// first waits for the lease (until ctx is done) and gives it back if opening
// fails.
func (s *Store) Open(ctx context.Context) error {
	if s.opts.Mode != Leased {
		return s.openSession(ctx)
	}
	if l := s.lease.Load(); l == nil || l.Valid() != nil {
		l, err := lock.Acquire(ctx, s.rdb, s.keys.lease, s.opts.Lease)
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
	return nil
}

// openSession registers the name and runs open.lua, finishing an
// interrupted Delete ("dirty") first.
func (s *Store) openSession(ctx context.Context) error {
	token, err := s.token("open")
	if err != nil {
		return err
	}
	create := !s.opts.OpenExisting
	if create {
		// Register first: a crash in between leaves a name without a
		// session (listing tools skip it), never a session without a name.
		if err := s.rdb.SAdd(ctx, registryKey(s.opts.Prefix), s.name).Err(); err != nil {
			return s.fail("open", err)
		}
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
			return s.fail("open", storage.ErrSessionNotFound)
		case "dirty":
			if err := s.deleteSession(ctx, token); err != nil {
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
	if err := s.rdb.SRem(ctx, registryKey(s.opts.Prefix), s.name).Err(); err != nil {
		return s.fail("delete", err)
	}
	return nil
}

// deleteSession removes the session's keys (but the lease) in one script.
func (s *Store) deleteSession(ctx context.Context, token string) error {
	return s.fail("delete", deleteCall(s.keys, token).run(ctx, s.rdb).Err())
}

// ListSessions returns the names registered under a prefix (DefaultPrefix
// when empty), reading the registry set with SSCAN; it never scans the
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
