// Package redisstore keeps Telegram MTProto sessions (Hydrogram's storage
// contract, package storage, whose documentation is the one statement of the
// semantics) in Redis through any go-redis v9 UniversalClient: a single
// server, Sentinel or Cluster.
//
// The data layout (keys, hashes, the peer row format, the layout version) is
// described once, in keys.go. Every key of a session shares one cluster hash
// tag, and every multi-key write is one atomic Lua script (lua/*.lua, one
// typed call each in scripts.go) that validates and reads everything before
// its first write. Options.CacheSize adds an owner-side cache;
// Options.Durability waits for replicas on critical writes.
//
// The files follow the store's seams: options.go (Options, Mode), store.go
// (New, errors), lifecycle.go (Open, Close, Delete, the lease), session.go
// (the session fields), peers.go (the peer cache), codec.go (values <->
// stored strings), scripts.go (the Lua calls), cache.go (the owner cache).
//
// # Ownership
//
// Every store is built in one of two explicit modes (Options.Mode). Leased
// makes Open wait for the session's lease (package lock) and Close release
// it; every write script then checks the lease token atomically with the
// write, so a worker that lost its lease can never write again
// (lock.ErrLeaseLost). Unfenced is for single-process use and tools: its
// writes are refused while any worker holds the lease (lock.ErrHeld). Reads
// are never fenced.
//
// The store never closes the client it was given; the caller owns it.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// ErrSessionLost reports a session whose data is gone although it was known
// to exist: its name is registered, or this store opened it before. A
// FLUSHALL/FLUSHDB, a restart without persistence (no RDB/AOF), an eviction
// (check maxmemory-policy) or a deletion by hand took it. Open does not
// recreate it blank unless Options.RecreateLost is set; restore it from a
// backup or an export (tgsession import), or open with RecreateLost to log
// in afresh. A fenced write that finds the session and its lease gone
// returns an error wrapping both ErrSessionLost and lock.ErrLeaseLost.
var ErrSessionLost = errors.New("session data is gone (a FLUSHALL/FLUSHDB, a restart without persistence, an eviction or a deletion by hand): restore it with tgsession import, or open with Options.RecreateLost to start it afresh")

// ErrChanged reports a read-modify-write (Reseal, tgsession rekey) refused
// because the data changed between its read and its write (an import, a
// login, another rekey): nothing was written. Read again and retry.
var ErrChanged = errors.New("the session changed since it was read (an import, a login or another rekey wrote it); nothing was written: read it again and retry")

// ErrOutcomeUnknown reports a write whose request may have reached Redis but
// whose reply did not come back (a connection reset, a timeout, a canceled
// context): it may or may not have been applied. The wrapping error says
// whether this worker still holds its lease. Read the data back to find out;
// a retry of the same call is safe (writes are whole-row replaces). The
// store's own scripts recognize a client's retry of a write they already
// applied (write ids), so ErrLeaseLost always means "not applied".
var ErrOutcomeUnknown = errors.New("the write may or may not have been applied: the connection failed after it was sent")

// Store is one session in Redis. It implements storage.Storage and is safe
// for concurrent use.
type Store struct {
	storage.Accessors

	rdb   redis.UniversalClient
	name  string
	opts  Options // defaults applied
	keys  keys
	clock storage.Clock
	cache *ownerCache // nil without Options.CacheSize
	open  atomic.Bool
	seen  atomic.Bool                // Open found or created the session once: its absence now is a loss
	lease atomic.Pointer[lock.Lease] // Leased only; nil when not held

	evictionChecked atomic.Bool // Leased: the server's eviction policy was found safe
}

var (
	_ storage.Storage      = (*Store)(nil)
	_ storage.PeerScanner  = (*Store)(nil)
	_ storage.PeerImporter = (*Store)(nil)
)

// New returns a store for the session called name. Any name is allowed,
// including "" and names with '{', '}' or ':': it is escaped into the hash
// tag. New does not contact Redis; call Open.
func New(client redis.UniversalClient, name string, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client: pass a go-redis client (redis.NewClient, NewFailoverClient or NewClusterClient)")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{rdb: client, name: name, opts: o, keys: newKeys(o.Prefix, name), clock: o.Clock}
	if o.CacheSize > 0 {
		s.cache = newOwnerCache(o.CacheSize)
	}
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
	return fmt.Sprintf("%s/%q", s.opts.Prefix, n)
}

// fail wraps err from operation op: it maps the scripts' error replies to
// the sentinel errors, asks a ClusterClient to reload its slot map after a
// failover error, and names the store.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	redisutil.ReloadOnFailover(s.rdb, err)
	switch {
	case redis.HasErrorPrefix(err, "NOSESSION") && s.seen.Load():
		err = fmt.Errorf("%w: %w", ErrSessionLost, storage.ErrSessionNotFound)
	case redis.HasErrorPrefix(err, "NOSESSION"):
		err = storage.ErrSessionNotFound
	case redis.HasErrorPrefix(err, "LAYOUT"):
		err = layoutError(strings.TrimPrefix(err.Error(), "LAYOUT "))
	case redis.HasErrorPrefix(err, "LEASELOST"):
		// Redis refused a write fenced with this store's lease token: the
		// lease is gone there. End it now, so that Lost has fired and the
		// lease's Context is cancelled before the caller sees the error.
		// (Were the token an older lease's, racing a re-Open, the newer
		// lease ends too: availability, never safety.)
		err = fmt.Errorf("%w (Redis refused a write fenced with this worker's lease token)", lock.ErrLeaseLost)
		if s.gone() {
			err = fmt.Errorf("%w; the lease went with it: %w", ErrSessionLost, err)
		}
		if l := s.lease.Load(); l != nil {
			l.Lose(err)
		}
	case redis.HasErrorPrefix(err, "LEASEHELD"):
		err = fmt.Errorf("%w (a store opened Unfenced cannot write while a worker owns the session; stop it, or release its lease)", lock.ErrHeld)
	case redis.HasErrorPrefix(err, "CHANGED"):
		err = ErrChanged
	case redis.HasErrorPrefix(err, "BADARG"):
		err = fmt.Errorf("%w: %s", storage.ErrInvalid, strings.TrimPrefix(err.Error(), "BADARG "))
	case errors.Is(err, lock.ErrNotDurable) && !errors.Is(err, storage.ErrNotDurable):
		err = fmt.Errorf("%w: %w", storage.ErrNotDurable, err)
	}
	return fmt.Errorf("redisstore: %s %s: %w", op, s.label(), err)
}

// failWrite is fail for a write: an error that is not Redis's reply (the
// request may have been applied) becomes ErrOutcomeUnknown, with the lease's
// state.
func (s *Store) failWrite(op string, err error) error {
	if err == nil {
		return nil
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		state := "no lease"
		if s.opts.Mode == Leased {
			state = "this worker's lease is still valid"
			if l := s.lease.Load(); l == nil || l.Valid() != nil {
				state = "this worker's lease is lost"
			}
		}
		err = fmt.Errorf("%w (%s): %w", ErrOutcomeUnknown, state, err)
	}
	return s.fail(op, err)
}

// gone reports, after a fenced write was refused, whether the session's
// data is gone too (a flush or a restart without persistence took both),
// so the caller hears that rather than "another worker may own it".
func (s *Store) gone() bool {
	if !s.seen.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := s.rdb.Exists(ctx, s.keys.session).Result()
	return err == nil && n == 0
}

func (s *Store) checkOpen(op string) error {
	if !s.open.Load() {
		return s.fail(op, storage.ErrClosed)
	}
	return nil
}
