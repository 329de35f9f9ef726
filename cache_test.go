package redisstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
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
	"github.com/tgsession/redisstore/storage/storagetest"
)

func TestCacheNeedsLease(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := New(c, "x", Options{Mode: Unfenced, CacheSize: 10}); err == nil {
		t.Error("CacheSize on an Unfenced store was accepted")
	}
	if _, err := New(c, "x", Options{Mode: Leased, Create: true, CacheSize: -1}); err == nil {
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
			a, _ := New(c, "acct", Options{Mode: Leased, Create: true, Prefix: prefix, Lease: o, CacheSize: 1000})
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
			bs, _ := New(c, "acct", Options{Mode: Leased, Create: true, Prefix: prefix, Lease: o})
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
	s, err := New(c, "rt", Options{Mode: Leased, Create: true, Lease: lock.Options{TTL: time.Minute}, CacheSize: 10})
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
	// The peer was written through: only the session costs a round trip.
	for round, want := range []int64{1, 0} {
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

// TestCachedStreamRoundTrips counts the round trips of a bot's update stream
// served by the owner cache: an update writes only what changed (or what is
// older than the refresh window), and the lookup after it is served from
// memory.
func TestCachedStreamRoundTrips(t *testing.T) {
	t.Parallel()
	a := storage.Peer{ID: 1, Type: storage.PeerUser, AccessHash: storage.Some[int64](11), Usernames: []string{"alice"}, PhoneNumber: "1555"}
	ch := storage.Peer{ID: storage.ChannelID(5), Type: storage.PeerChannel, AccessHash: storage.Some[int64](55), Usernames: []string{"news"}}
	changed := a
	changed.AccessHash = storage.Some[int64](12)
	minA := changed
	minA.AccessHash, minA.Min = storage.Some[int64](0), true
	type step struct {
		name    string
		advance time.Duration
		update  []storage.Peer
		want    int64 // commands for UpdatePeers + PeerByID of update[0]
	}
	tests := []struct {
		name    string
		refresh time.Duration
		steps   []step
	}{
		{"refresh window", 0, []step{
			{"new peers", 0, []storage.Peer{a, ch}, 1},
			{"the same again", time.Minute, []storage.Peer{a, ch}, 0},
			{"a changed access hash", time.Minute, []storage.Peer{changed, ch}, 1},
			{"a min peer that keeps the known hash", time.Minute, []storage.Peer{minA}, 0},
			{"just inside the window", DefaultRefreshWindow - 3*time.Minute - time.Second, []storage.Peer{changed, ch}, 0},
			{"older than the window", 2 * time.Second, []storage.Peer{changed, ch}, 1},
			{"refreshed", time.Second, []storage.Peer{changed, ch}, 0},
		}},
		{"no elision", -1, []step{
			{"new peers", 0, []storage.Peer{a, ch}, 1},
			{"the same again", time.Minute, []storage.Peer{a, ch}, 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			m := miniredis.RunT(t)
			c := redis.NewClient(&redis.Options{Addr: m.Addr()})
			defer c.Close()
			for _, sc := range allScripts {
				if err := sc.Load(ctx, c).Err(); err != nil {
					t.Fatal(err)
				}
			}
			hook := &redisutil.Counter{}
			c.AddHook(hook)
			clock := storagetest.NewClock(1795631487)
			s, _ := New(c, "stream", Options{Mode: Leased, Create: true, Lease: lock.Options{TTL: time.Hour}, CacheSize: 10,
				Clock: clock.Now, RefreshWindow: tc.refresh})
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, st := range tc.steps {
				clock.Add(st.advance)
				before := hook.Commands()
				if err := s.UpdatePeers(ctx, st.update); err != nil {
					t.Fatal(err)
				}
				got, err := s.PeerByID(ctx, st.update[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				if n := hook.Commands() - before; n != st.want {
					t.Errorf("%s: %d commands; want %d", st.name, n, st.want)
				}
				if got.AccessHash.V != changed.AccessHash.V && st.update[0].ID == a.ID && st.name != "new peers" && st.name != "the same again" {
					t.Errorf("%s: PeerByID = %+v; want access hash %d", st.name, got, changed.AccessHash.V)
				}
			}
		})
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
	s, err := New(c, "flap", Options{Mode: Leased, Create: true, Prefix: "flap-" + redistest.TempName(t), Lease: o, CacheSize: 100})
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

// TestCacheEqualsRedis drives an owner with a small write-through cache
// through thousands of random writes (UpdatePeers and ImportPeers of peers
// that share usernames and phones, min peers, dropped names), lookups that
// fill the cache, and clock steps across the refresh window; after every
// operation every cached row and index entry must equal what Redis holds,
// and every lookup must answer as an uncached reader does.
func TestCacheEqualsRedis(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{miniBackend(), realBackend()} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= 3; seed++ {
				checkCacheEqualsRedis(t, b.client(t), seed, 1500)
			}
		})
	}
}

func checkCacheEqualsRedis(t *testing.T, c redis.UniversalClient, seed uint64, ops int) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 99))
	clock := storagetest.NewClock(1795631487)
	prefix, name := "cacheq-"+redistest.TempName(t), "s"
	owner, _ := New(c, name, Options{Mode: Leased, Create: true, Prefix: prefix, CacheSize: 20, Clock: clock.Now})
	if err := owner.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	reader, _ := New(c, name, Options{Mode: Unfenced, Prefix: prefix, OpenExisting: true, Clock: clock.Now})
	if err := reader.Open(ctx); err != nil {
		t.Fatal(err)
	}

	var ids []int64
	for i := int64(1); i <= 30; i++ {
		ids = append(ids, i, -i/3-1, storage.ChannelID(i/3+1))
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	names := make([]string, 25)
	for i := range names {
		names[i] = fmt.Sprintf("name%02d", i)
	}
	phones := make([]string, 12)
	for i := range phones {
		phones[i] = fmt.Sprintf("1555000%04d", i)
	}
	randPeer := func() storage.Peer {
		id := ids[r.IntN(len(ids))]
		kind, _ := storage.KindOfID(id)
		p := storage.Peer{ID: id}
		switch kind {
		case storage.IDUser:
			p.Type = []storage.PeerType{storage.PeerUser, storage.PeerBot}[r.IntN(2)]
			if r.IntN(3) == 0 {
				p.PhoneNumber = phones[r.IntN(len(phones))]
			}
		case storage.IDChat:
			p.Type = storage.PeerGroup
		default:
			p.Type = []storage.PeerType{storage.PeerChannel, storage.PeerSupergroup}[r.IntN(2)]
		}
		if r.IntN(10) > 0 {
			p.AccessHash = storage.Some(int64(r.IntN(4)) - 2)
		}
		p.Min = r.IntN(5) == 0
		for range r.IntN(3) {
			if n := names[r.IntN(len(names))]; !slices.Contains(p.Usernames, n) {
				p.Usernames = append(p.Usernames, n)
			}
		}
		return p
	}
	var elided, through int
	for op := 0; op < ops; op++ {
		switch k := r.IntN(10); {
		case k < 5: // an update, often of peers seen before and unchanged
			batch := make([]storage.Peer, 1+r.IntN(4))
			for i := range batch {
				batch[i] = randPeer()
				if cp, ok := owner.cache.peer(batch[i].ID); ok && r.IntN(2) == 0 {
					batch[i] = cp // resend exactly what is stored
				}
			}
			norm, _ := storage.NormalizePeers(batch)
			before := len(norm)
			for i := range norm {
				norm[i].LastUpdateOn = clock.Now().Unix()
			}
			if n := len(owner.elide(slices.Clone(norm), clock.Now().Unix())); n < before {
				elided += before - n
			}
			if err := owner.UpdatePeers(ctx, batch); err != nil {
				t.Fatal(err)
			}
			through++
		case k < 6: // an import with times around now
			batch := make([]storage.Peer, 1+r.IntN(4))
			for i := range batch {
				batch[i] = randPeer()
				batch[i].LastUpdateOn = clock.Now().Unix() + int64(r.IntN(7200)) - 3600
			}
			if err := owner.ImportPeers(ctx, batch); err != nil {
				t.Fatal(err)
			}
		case k < 9: // lookups fill the cache
			_, _ = owner.PeerByID(ctx, ids[r.IntN(len(ids))])
			_, _ = owner.PeerByUsername(ctx, names[r.IntN(len(names))])
			_, _ = owner.PeerByPhoneNumber(ctx, phones[r.IntN(len(phones))])
		default:
			clock.Add(time.Duration(r.IntN(1500)) * time.Second)
		}
		if err := cacheMatchesRedis(ctx, c, owner); err != nil {
			t.Fatalf("seed %d, operation %d: %v", seed, op, err)
		}
		if op%50 == 49 {
			if err := sameAnswers(ctx, owner, reader, ids, names, phones); err != nil {
				t.Fatalf("seed %d, operation %d: %v", seed, op, err)
			}
		}
	}
	if elided == 0 || through == 0 {
		t.Fatalf("seed %d: %d peers elided, %d updates: the test did not exercise both paths", seed, elided, through)
	}
	t.Logf("seed %d: %d operations, %d updates, %d peers elided; cache equal to Redis after each", seed, ops, through, elided)
}

// cacheMatchesRedis compares every cached row and index entry with Redis.
func cacheMatchesRedis(ctx context.Context, c redis.UniversalClient, s *Store) error {
	oc := s.cache
	oc.mu.Lock()
	var peers []storage.Peer
	for _, e := range oc.byID {
		peers = append(peers, clonePeer(e.Value.(*cached).peer))
	}
	byName, byPhone := maps.Clone(oc.byName), maps.Clone(oc.byPhone)
	oc.mu.Unlock()
	for _, p := range peers {
		row, err := c.HGet(ctx, s.keys.peers, strconv.FormatInt(p.ID, 10)).Result()
		if err != nil {
			return fmt.Errorf("cached peer %d: Redis: %v", p.ID, err)
		}
		got, err := decodeRow(p.ID, row)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, p) {
			return fmt.Errorf("peer %d: cache %+v, Redis %+v", p.ID, p, got)
		}
	}
	for _, idx := range []struct {
		key string
		m   map[string]int64
	}{{s.keys.usernames, byName}, {s.keys.phones, byPhone}} {
		for k, id := range idx.m {
			v, err := c.HGet(ctx, idx.key, k).Result()
			if err != nil || v != strconv.FormatInt(id, 10) {
				return fmt.Errorf("index %s[%s]: cache %d, Redis %q (%v)", idx.key, k, id, v, err)
			}
		}
	}
	return nil
}

// sameAnswers asks both stores every lookup and compares the answers.
func sameAnswers(ctx context.Context, a, b *Store, ids []int64, names, phones []string) error {
	type answer struct {
		p   storage.Peer
		err string
	}
	ask := func(p storage.Peer, err error) answer {
		if err != nil {
			return answer{err: err.Error()}
		}
		return answer{p: p}
	}
	for _, id := range ids {
		if x, y := ask(a.PeerByID(ctx, id)), ask(b.PeerByID(ctx, id)); !reflect.DeepEqual(x, y) {
			return fmt.Errorf("PeerByID(%d): owner %+v, reader %+v", id, x, y)
		}
	}
	for _, n := range names {
		if x, y := ask(a.PeerByUsername(ctx, n)), ask(b.PeerByUsername(ctx, n)); !reflect.DeepEqual(x, y) {
			return fmt.Errorf("PeerByUsername(%s): owner %+v, reader %+v", n, x, y)
		}
	}
	for _, ph := range phones {
		if x, y := ask(a.PeerByPhoneNumber(ctx, ph)), ask(b.PeerByPhoneNumber(ctx, ph)); !reflect.DeepEqual(x, y) {
			return fmt.Errorf("PeerByPhoneNumber(%s): owner %+v, reader %+v", ph, x, y)
		}
	}
	return nil
}
