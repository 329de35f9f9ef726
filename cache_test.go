package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/internal/redisutil"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

func TestCacheNeedsLease(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := New(c, "x", Options{Mode: Unfenced, CacheSize: 10}); err == nil {
		t.Error("CacheSize on an Unfenced store was accepted")
	}
	if _, err := New(c, "x", Options{Mode: Leased, CacheSize: -1}); err == nil {
		t.Error("CacheSize -1 was accepted")
	}
}

// TestCacheServesOwnerAndIsDroppedWithTheLease: the owner's lookups come from
// memory (0 commands); once its lease is lost and another owner writes, the
// old owner no longer serves its cache: it reads the new owner's data.
func TestCacheServesOwnerAndIsDroppedWithTheLease(t *testing.T) {
	// A real server: the lease must expire in real time (miniredis needs FastForward).
	for _, b := range []backend{realBackend()} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			srv := b.client(t)
			hook := &redisutil.Counter{}
			c := srv.(*redis.Client)
			c.AddHook(hook)
			prefix := "cache-" + redistest.TempName(t)
			o := lock.Options{TTL: 300 * time.Millisecond, RenewEvery: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond}
			a, _ := New(c, "acct", Options{Mode: Leased, Prefix: prefix, Lease: o, CacheSize: 1000})
			if err := a.Open(ctx); err != nil {
				t.Fatal(err)
			}
			old := storage.Peer{ID: 7, AccessHash: storage.Some[int64](1), Type: storage.PeerUser, Usernames: []string{"seven"}, PhoneNumber: "77"}
			if err := a.UpdatePeers(ctx, []storage.Peer{old}); err != nil {
				t.Fatal(err)
			}
			if err := a.SetAPIID(ctx, storage.Some[int64](1)); err != nil {
				t.Fatal(err)
			}
			// First lookups fill the cache; the second round costs nothing.
			lookups := func() (storage.Peer, storage.Peer, storage.Peer, storage.Session) {
				p1, err1 := a.PeerByID(ctx, 7)
				p2, err2 := a.PeerByUsername(ctx, "seven")
				p3, err3 := a.PeerByPhoneNumber(ctx, "77")
				s, err4 := a.Session(ctx)
				if err := errors.Join(err1, err2, err3, err4); err != nil {
					t.Fatal(err)
				}
				return p1, p2, p3, s
			}
			lookups()
			before := hook.Commands()
			p1, p2, p3, s := lookups()
			if n := hook.Commands() - before; n != 0 {
				t.Errorf("cached lookups sent %d commands; want 0", n)
			}
			if p1.AccessHash != storage.Some[int64](1) || p2.ID != 7 || p3.ID != 7 || s.APIID != storage.Some[int64](1) {
				t.Fatalf("cached values wrong: %+v %+v %+v %v", p1, p2, p3, s)
			}
			// The owner's own write is seen at once.
			old.AccessHash = storage.Some[int64](2)
			if err := a.UpdatePeers(ctx, []storage.Peer{old}); err != nil {
				t.Fatal(err)
			}
			if p, _ := a.PeerByID(ctx, 7); p.AccessHash != storage.Some[int64](2) {
				t.Errorf("after its own write the owner reads %v; want 2", p.AccessHash)
			}

			// A is frozen; its lease expires; B takes over and writes.
			a.Lease().Abandon()
			bs, _ := New(c, "acct", Options{Mode: Leased, Prefix: prefix, Lease: o})
			if err := bs.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer bs.Close()
			if err := bs.UpdatePeers(ctx, []storage.Peer{{ID: 7, AccessHash: storage.Some[int64](99), Type: storage.PeerUser, Usernames: []string{"seven"}, PhoneNumber: "77"}}); err != nil {
				t.Fatal(err)
			}
			if err := bs.SetAPIID(ctx, storage.Some[int64](99)); err != nil {
				t.Fatal(err)
			}
			p1, p2, p3, s = lookups()
			for what, got := range map[string]storage.Null[int64]{"id": p1.AccessHash, "username": p2.AccessHash, "phone": p3.AccessHash, "api_id": s.APIID} {
				if got != storage.Some[int64](99) {
					t.Errorf("deposed owner's %s lookup = %v; want the new owner's 99 (the cache must not be served)", what, got)
				}
			}
			if err := a.SetAPIID(ctx, storage.Some[int64](5)); !errors.Is(err, lock.ErrLeaseLost) {
				t.Errorf("deposed owner's write: %v", err)
			}
		})
	}
}

// TestCachedRoundTrips: with the cache, a repeated lookup sends nothing.
func TestCachedRoundTrips(t *testing.T) {
	ctx := context.Background()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	for _, sc := range allScripts { // so EVALSHA never falls back to EVAL here
		if err := sc.Load(ctx, c).Err(); err != nil {
			t.Fatal(err)
		}
	}
	hook := &redisutil.Counter{}
	c.AddHook(hook)
	s, err := New(c, "rt", Options{Mode: Leased, Lease: lock.Options{TTL: time.Minute}, CacheSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.UpdatePeers(ctx, []storage.Peer{{ID: 1, Type: storage.PeerUser, Usernames: []string{"one"}, PhoneNumber: "1"}}); err != nil {
		t.Fatal(err)
	}
	for round, want := range []int64{4, 0} {
		before := hook.Commands()
		_, e1 := s.PeerByID(ctx, 1)
		_, e2 := s.PeerByUsername(ctx, "one")
		_, e3 := s.PeerByPhoneNumber(ctx, "1")
		_, e4 := s.Session(ctx)
		if err := errors.Join(e1, e2, e3, e4); err != nil {
			t.Fatal(err)
		}
		if got := hook.Commands() - before; got > want {
			t.Errorf("round %d: %d commands for four lookups; want at most %d", round, got, want)
		}
	}
}

// TestCacheLookupsWhileLeaseFlaps hammers username and phone lookups (served
// from the owner cache) while the lease is lost and regained, so the cache is
// cleared under the readers' feet. Run with -race: the index maps must only
// be read under the cache's mutex.
func TestCacheLookupsWhileLeaseFlaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := realBackend().client(t)
	o := lock.Options{TTL: 200 * time.Millisecond, RenewEvery: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond}
	s, err := New(c, "flap", Options{Mode: Leased, Prefix: "flap-" + redistest.TempName(t), Lease: o, CacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Delete(ctx); _ = s.Close() }()
	var peers []storage.Peer
	for i := int64(1); i <= 20; i++ {
		peers = append(peers, storage.Peer{ID: i, AccessHash: storage.Some(i), Type: storage.PeerUser,
			Usernames: []string{fmt.Sprintf("flap_%d", i)}, PhoneNumber: fmt.Sprintf("1555%d", i)})
	}
	if err := s.UpdatePeers(ctx, peers); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var served atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := int64(1 + i%20)
				p1, err1 := s.PeerByUsername(ctx, fmt.Sprintf("flap_%d", id))
				p2, err2 := s.PeerByPhoneNumber(ctx, fmt.Sprintf("1555%d", id))
				if err1 == nil && err2 == nil {
					if p1.ID != id || p2.ID != id {
						t.Errorf("lookup %d returned peers %d and %d", id, p1.ID, p2.ID)
						return
					}
					served.Add(1)
				}
			}
		}()
	}
	// Lose the lease (an operator's force-release, noticed at the next
	// renewal) and take it back, several times.
	flaps := 0
	for range 5 {
		l := s.Lease()
		info, err := lock.Inspect(ctx, c, s.LeaseKey())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lock.ForceRelease(ctx, c, s.LeaseKey(), info); err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("the lease was not reported lost after a force-release")
		}
		if err := s.Open(ctx); err != nil {
			t.Fatal(err)
		}
		flaps++
		time.Sleep(20 * time.Millisecond) // let the readers refill the cache
	}
	close(stop)
	wg.Wait()
	if flaps != 5 || served.Load() == 0 {
		t.Errorf("%d flaps, %d lookups served; want 5 and some", flaps, served.Load())
	}
}
