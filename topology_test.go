package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// TestClusterOneSlot: on a real cluster (which refuses CROSSSLOT, unlike
// miniredis), every operation of the store works for hostile session names,
// so every script's keys are in one slot; and the same check fails for a
// script whose keys span two sessions, so the test can fail.
func TestClusterOneSlot(t *testing.T) {
	ctx := context.Background()
	c := clusterBackend().client(t)
	prefix := "slot-" + redistest.TempName(t)
	for _, name := range hostileNames {
		for _, opts := range []Options{{Mode: Unfenced}, {Mode: Leased, Create: true, Lease: lock.Options{TTL: 5 * time.Second}}} {
			opts.Prefix, opts.Durability = prefix, Durability{Replicas: 1, Timeout: time.Second}
			s, err := New(c, name, opts)
			if err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				what string
				err  error
			}{
				{"Open", s.Open(ctx)},
				{"SetSession (durable)", s.SetSession(ctx, storage.Session{DCID: storage.Some(2), AuthKey: make(storage.AuthKey, 256)})},
				{"UpdatePeers", s.UpdatePeers(ctx, []storage.Peer{{ID: 1, Type: storage.PeerUser, Usernames: []string{"a"}, PhoneNumber: "1"}, {ID: 2, Type: storage.PeerUser, Usernames: []string{"a"}}})},
				{"PeerByUsername", func() error { _, err := s.PeerByUsername(ctx, "a"); return err }()},
				{"PeerByPhoneNumber", func() error { _, err := s.PeerByPhoneNumber(ctx, "1"); return err }()},
				{"Save", s.Save(ctx)},
				{"Delete", s.Delete(ctx)},
				{"Close", s.Close()},
			}
			for _, st := range steps {
				if st.err != nil {
					t.Errorf("name %.20q: %s: %v", name, st.what, st.err)
				}
			}
		}
	}
	// Negative control: keys of two sessions in one script.
	a, b := newKeys(prefix, "alpha"), newKeys(prefix, "beta")
	if slot(a.session) == slot(b.session) {
		t.Fatal("control names share a slot; pick others")
	}
	err := scriptSetFields.Run(ctx, c, []string{a.session, b.lease, a.applied}, LayoutVersion, "", "", "dc_id", "1").Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("two-session script on a real cluster = %v; want CROSSSLOT", err)
	}
	m := miniredis.RunT(t)
	mc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer mc.Close()
	if err := scriptSetFields.Run(ctx, mc, []string{a.session, b.lease, a.applied}, LayoutVersion, "", "", "dc_id", "1").Err(); err != nil && strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("miniredis refused CROSSSLOT too; the control shows nothing")
	}
}

// TestDurability: critical writes wait for replicas on every topology and
// report clearly when fewer confirmed; the peer cache does not wait.
func TestDurability(t *testing.T) {
	tests := []struct {
		b         backend
		confirmed bool
	}{
		{miniBackend(), false}, // WAIT answers 0
		{realBackend(), false}, // no replica
		{sentinelBackend(), true},
		{clusterBackend(), true},
	}
	for _, tc := range tests {
		t.Run(tc.b.name, func(t *testing.T) {
			ctx := context.Background()
			c := tc.b.client(t)
			s := newStore(t, c, func(o *Options) { o.Durability = Durability{Replicas: 1, Timeout: 200 * time.Millisecond} })
			key := make(storage.AuthKey, 256)
			key[0] = 7
			for what, err := range map[string]error{
				"SetAuthKey": s.SetAuthKey(ctx, key),
				"SetDCID":    s.SetDCID(ctx, storage.Some(4)),
				"SetSession": s.SetSession(ctx, storage.Session{DCID: storage.Some(4), AuthKey: key}),
			} {
				if tc.confirmed && err != nil {
					t.Errorf("%s: %v; want confirmed", what, err)
				}
				if !tc.confirmed && !errors.Is(err, storage.ErrNotDurable) {
					t.Errorf("%s: %v; want ErrNotDurable", what, err)
				}
				if err != nil && !strings.Contains(err.Error(), "0 of 1 replicas confirmed") {
					t.Errorf("%s: %q does not say how many replicas confirmed", what, err)
				}
			}
			// Not confirmed still means applied on the primary.
			if got, err := s.AuthKey(ctx); err != nil || got[0] != 7 {
				t.Errorf("AuthKey after the write = %v, %v", got, err)
			}
			if err := s.UpdatePeers(ctx, []storage.Peer{{ID: 1, Type: storage.PeerUser}}); err != nil {
				t.Errorf("UpdatePeers (not critical) = %v", err)
			}
			if err := s.SetAPIID(ctx, storage.Some[int64](5)); err != nil {
				t.Errorf("SetAPIID (not critical) = %v", err)
			}

			// The lease can be confirmed the same way.
			leaseKey := newKeys("dur-"+redistest.TempName(t), "x").lease
			l, err := lock.TryAcquire(ctx, c, leaseKey, lock.Options{WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
			if tc.confirmed {
				if err != nil {
					t.Fatalf("durable lease: %v", err)
				}
				_ = l.Release(ctx)
			} else {
				if !errors.Is(err, lock.ErrNotDurable) {
					t.Errorf("durable lease without replicas: %v; want lock.ErrNotDurable", err)
				}
				if info, _ := lock.Inspect(ctx, c, leaseKey); info.Held {
					t.Errorf("an unconfirmed lease was kept")
				}
			}
		})
	}
}

// writer keeps writing through s until stop is closed and records when
// writes succeeded.
type writer struct {
	mu       sync.Mutex
	ok       []time.Time
	failures atomic.Int64
	lastErr  atomic.Value
}

func (w *writer) run(ctx context.Context, s *Store, stop <-chan struct{}) {
	for i := int64(1); ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.UpdatePeers(cctx, []storage.Peer{{ID: i, AccessHash: storage.Some(i), Type: storage.PeerUser}})
		cancel()
		if err != nil {
			w.failures.Add(1)
			w.lastErr.Store(fmt.Sprint(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.ok = append(w.ok, time.Now())
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// gapAfter returns the longest time without a successful write after t0, and
// whether writes succeeded again after t0.
func (w *writer) gapAfter(t0 time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	prev := t0
	for _, at := range w.ok {
		if at.Before(t0) {
			prev = at
			continue
		}
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return gap, len(w.ok) > 0 && w.ok[len(w.ok)-1].After(t0)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (w *writer) successesAfter(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, at := range w.ok {
		if at.After(t) {
			n++
		}
	}
	return n
}

// failover runs a writer on one store, calls kill, and waits until writes
// succeed steadily again; it returns the write gap.
func failover(t *testing.T, c redis.UniversalClient, name string, kill func()) time.Duration {
	t.Helper()
	ctx := context.Background()
	s, err := New(c, name, Options{Mode: Unfenced, Prefix: "failover"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	w := &writer{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { w.run(ctx, s, stop); close(done) }()
	time.Sleep(500 * time.Millisecond)
	kill()
	// t0 is when the primary is gone (kill returns once the process has
	// exited): a write acknowledged after it went through the new primary. A
	// write acknowledged while the old one was dying is not a recovery.
	t0 := time.Now()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := w.gapAfter(t0); ok && w.successesAfter(later(t0, time.Now().Add(-time.Second))) > 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	<-done
	gap, recovered := w.gapAfter(t0)
	if !recovered {
		t.Fatalf("writes never succeeded again after the kill (%d failures, last: %v)", w.failures.Load(), w.lastErr.Load())
	}
	// The same store object keeps working: no restart needed.
	if _, err := s.Session(ctx); err != nil {
		t.Errorf("store after failover: %v", err)
	}
	return gap
}

// TestSentinelFailover: kill -9 the primary under a writer; the store's calls
// fail for the gap and then succeed again without a restart. 3 runs; the gap
// is logged (median), not asserted.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 Sentinel topologies")
	}
	var gaps []time.Duration
	for run := 0; run < 3; run++ {
		topo := redistest.NewSentinel(t)
		c := topo.Client()
		gaps = append(gaps, failover(t, c, fmt.Sprintf("run%d", run), topo.Primary.Kill))
		if addr, err := topo.PrimaryAddr(context.Background()); err != nil || addr != topo.Replica.Addr {
			t.Errorf("run %d: primary after failover = %q, %v; want the replica %s", run, addr, err, topo.Replica.Addr)
		}
		c.Close()
		topo.Stop()
	}
	t.Logf("Sentinel failover (kill -9 primary, down-after 1000 ms): write gap median %v, all %v", median(gaps), gaps)
}

// TestClusterFailover: kill -9 the primary that owns the session's slot; with
// a ClusterClient on DEFAULT options (60 s state reload interval) the store's
// reload-on-error keeps the gap near the promotion time. 3 runs, logged.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 clusters")
	}
	ctx := context.Background()
	var gaps []time.Duration
	for run := 0; run < 3; run++ {
		topo := redistest.NewCluster(t, 3, 1)
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: topo.Addrs()}) // default options on purpose
		name := fmt.Sprintf("run%d", run)
		primary, replica, err := topo.PrimaryFor(ctx, newKeys("failover", name).session)
		if err != nil {
			t.Fatal(err)
		}
		gaps = append(gaps, failover(t, c, name, primary.Kill))
		if p, _, err := topo.PrimaryFor(ctx, newKeys("failover", name).session); err != nil || p != replica {
			t.Errorf("run %d: slot owner after failover = %v, %v; want the replica", run, p, err)
		}
		c.Close()
		topo.Stop()
	}
	t.Logf("Cluster failover (kill -9 primary, node-timeout 1000 ms, default ClusterOptions + store reload-on-error): write gap median %v, all %v", median(gaps), gaps)
}

// TestWaitSurvivesFailover: durable writes run while the replica is frozen
// (SIGSTOP) and the primary is killed; after the replica resumes and is
// promoted, every write the durability option reported as confirmed is there.
// Writes without the option are counted for comparison.
func TestWaitSurvivesFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Sentinel topology")
	}
	ctx := context.Background()
	topo := redistest.NewSentinel(t)
	c := topo.Client()
	defer c.Close()

	type result struct {
		name string
		key  byte
	}
	var (
		mu                         sync.Mutex
		confirmed, acked           []result
		notDurable, failed, seqNum atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		durable := g%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := seqNum.Add(1)
				name := fmt.Sprintf("w%d", n)
				opts := Options{Mode: Unfenced, Prefix: "wait"}
				if durable {
					opts.Durability = Durability{Replicas: 1, Timeout: 100 * time.Millisecond}
				}
				s, _ := New(c, name, opts)
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				err := s.Open(cctx)
				if err == nil {
					key := make(storage.AuthKey, 256)
					key[0] = byte(n)
					err = s.SetAuthKey(cctx, key)
				}
				cancel()
				r := result{name: name, key: byte(n)}
				switch {
				case err == nil && durable:
					mu.Lock()
					confirmed = append(confirmed, r)
					mu.Unlock()
				case err == nil:
					mu.Lock()
					acked = append(acked, r)
					mu.Unlock()
				case errors.Is(err, storage.ErrNotDurable):
					notDurable.Add(1)
				default:
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	topo.Replica.Pause()
	time.Sleep(time.Second)
	topo.Primary.Kill()
	topo.Replica.Resume()
	err := waitUntil(40*time.Second, func() bool {
		addr, err := topo.PrimaryAddr(ctx)
		return err == nil && addr == topo.Replica.Addr
	})
	time.Sleep(time.Second) // writers reconnect and go on (now with no replica: not durable)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal("Sentinel never promoted the replica")
	}

	check := func(rs []result) (lost int) {
		for _, r := range rs {
			s, _ := New(c, r.name, Options{Mode: Unfenced, Prefix: "wait", OpenExisting: true})
			var key storage.AuthKey
			err := s.Open(ctx)
			if err == nil {
				key, err = s.AuthKey(ctx)
			}
			if err != nil || len(key) != 256 || key[0] != r.key {
				lost++
			}
		}
		return lost
	}
	lostConfirmed, lostAcked := check(confirmed), check(acked)
	if lostConfirmed != 0 {
		t.Errorf("%d of %d writes reported confirmed were lost in the failover", lostConfirmed, len(confirmed))
	}
	if len(confirmed) == 0 {
		t.Error("no write was confirmed before the freeze: the test shows nothing")
	}
	t.Logf("WAIT 1/100ms through a frozen-replica failover: %d confirmed, %d lost; %d reported not durable; %d failed during the gap. Without the option: %d acknowledged, %d of them lost",
		len(confirmed), lostConfirmed, notDurable.Load(), failed.Load(), len(acked), lostAcked)
}

func waitUntil(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("timeout")
}
