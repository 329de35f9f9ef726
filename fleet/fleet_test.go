package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// ledger counts every acknowledged write per session, to check that no two
// owners ever wrote one session at the same time.
type ledger struct {
	mu    sync.Mutex
	acked map[string]int64
}

// counter is the handler of the tests: it continues the session's counter
// (its date field) from what it reads at start, one fenced write every
// 20 ms. Two owners writing at once would both continue from the same value
// and the final value would fall short of the acknowledged writes.
func (l *ledger) counter(ctx context.Context, st *redisstore.Store) error {
	v, err := st.Date(ctx)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
		if err := st.SetDate(ctx, v+1); err != nil {
			return nil // lease lost or stopping: a refused write is not acknowledged
		}
		v++
		l.mu.Lock()
		l.acked[st.Name()]++
		l.mu.Unlock()
	}
}

type running struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
}

// launch runs w until the returned running is cancelled.
func launch(ctx context.Context, w *Worker) *running {
	rctx, cancel := context.WithCancel(ctx)
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(rctx) }()
	return r
}

func start(t *testing.T, client redis.UniversalClient, prefix, id string, l *ledger) *running {
	t.Helper()
	w, err := New(client, Options{WorkerID: id, Capacity: 100, Prefix: prefix, Interval: 100 * time.Millisecond,
		Lease: lock.Options{TTL: time.Second}}, l.counter)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	return r
}

// waitOwned waits until the workers own every one of n sessions (each once)
// and cond holds, and returns how long that took.
func waitOwned(t *testing.T, n int, within time.Duration, ws []*running, cond func(loads []int) bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		seen := map[string]int{}
		loads := make([]int, len(ws))
		for i, r := range ws {
			for _, s := range r.w.Owned() {
				seen[s]++
				loads[i]++
			}
		}
		doubled := false
		for _, c := range seen {
			doubled = doubled || c > 1
		}
		if doubled {
			t.Fatalf("a session is owned by two workers at once: %v", seen)
		}
		if len(seen) == n && cond(loads) {
			return time.Since(begin)
		}
		if time.Since(begin) > within {
			t.Fatalf("after %v: %d of %d sessions owned, loads %v", within, len(seen), n, loads)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func within(loads []int, lo, hi int) bool {
	for _, l := range loads {
		if l < lo || l > hi {
			return false
		}
	}
	return true
}

// TestFleetOnRealRedis: 40 sessions, 3 workers: balanced; one worker cut
// off from Redis (a stalled proxy: a partition, as a dead host) is replaced
// within the lease TTL + 2 s; a 4th worker gets its share by graceful
// handover; a stop hands everything back; and no session was ever written
// by two owners at once.
func TestFleetOnRealRedis(t *testing.T) {
	srv := redistest.Require(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer direct.Close()
	ctx := context.Background()
	prefix := "fleet-" + redistest.TempName(t)
	const n = 40
	for i := range n {
		st, err := redisstore.New(direct, fmt.Sprintf("acct-%02d", i), redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l := &ledger{acked: map[string]int64{}}
	proxy := redistest.NewProxy(t, srv.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	defer viaProxy.Close()
	ws := []*running{start(t, viaProxy, prefix, "w0", l), start(t, direct, prefix, "w1", l), start(t, direct, prefix, "w2", l)}
	took := waitOwned(t, n, 10*time.Second, ws, func(loads []int) bool { return within(loads, 12, 15) })
	t.Logf("3 workers: all %d sessions owned and balanced in %v: %v %v %v", n, took.Round(time.Millisecond), len(ws[0].w.Owned()), len(ws[1].w.Owned()), len(ws[2].w.Owned()))
	time.Sleep(300 * time.Millisecond)

	proxy.Stall() // w0 loses Redis: no heartbeats, no renewals
	lost := len(ws[0].w.Owned())
	took = waitOwned(t, n, 3*time.Second+time.Second, ws[1:], func(loads []int) bool { return within(loads, 17, 23) })
	t.Logf("w0 cut off with %d sessions: w1 and w2 own all %d again in %v (lease TTL 1s), loads %d %d", lost, n, took.Round(time.Millisecond),
		len(ws[1].w.Owned()), len(ws[2].w.Owned()))
	if took > 3*time.Second {
		t.Errorf("takeover took %v; want within lease TTL + 2 s", took)
	}
	before := map[string]string{}
	for _, r := range ws[1:] {
		for _, s := range r.w.Owned() {
			before[s] = r.w.opts.WorkerID
		}
	}
	w3 := start(t, direct, prefix, "w3", l)
	live := []*running{ws[1], ws[2], w3}
	took = waitOwned(t, n, 5*time.Second, live, func(loads []int) bool { return within(loads, 12, 15) })
	moved := 0
	for _, r := range live {
		for _, s := range r.w.Owned() {
			if before[s] != r.w.opts.WorkerID {
				moved++
			}
		}
	}
	t.Logf("w3 joins: its share (%d) in %v by graceful handover; %d sessions changed owner (limit %d)", len(w3.w.Owned()), took.Round(time.Millisecond), moved, 13*n/30)
	if moved > 13*n/30 {
		t.Errorf("%d sessions moved when a worker joined; want ≤ 1.3 × %d/3", moved, n)
	}
	// A session imported while the fleet runs is picked up; one removed from
	// the registry is stopped.
	extra, err := redisstore.New(direct, "acct-new", redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := extra.Open(ctx); err != nil {
		t.Fatal(err)
	}
	took = waitOwned(t, n+1, 3*time.Second, live, func([]int) bool { return true })
	t.Logf("a session registered while the fleet runs is owned after %v", took.Round(time.Millisecond))
	if err := direct.SRem(ctx, prefix+":sessions", "acct-new").Err(); err != nil {
		t.Fatal(err)
	}
	took = waitOwned(t, n, 3*time.Second, live, func([]int) bool { return true })
	t.Logf("a session removed from the registry is stopped after %v", took.Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	for _, r := range append(live, ws[0]) {
		r.cancel()
	}
	proxy.Heal()
	for _, r := range live {
		if err := <-r.done; err != nil {
			t.Errorf("worker stop: %v", err)
		}
	}
	<-ws[0].done
	// Fenced sequence check: every acknowledged write is in the final value.
	l.mu.Lock()
	defer l.mu.Unlock()
	var total int64
	for i := range n {
		name := fmt.Sprintf("acct-%02d", i)
		st, _ := redisstore.New(direct, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix, OpenExisting: true})
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
		v, err := st.Date(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != l.acked[name] {
			t.Errorf("%s: final value %d, acknowledged writes %d: two owners overlapped or a write was lost", name, v, l.acked[name])
		}
		total += v
	}
	t.Logf("fenced sequence check: %d acknowledged writes, all in the final values", total)
	if total == 0 {
		t.Error("no writes were made: the check checked nothing")
	}
	if members, _ := Members(ctx, direct, prefix); len(members) != 0 {
		t.Errorf("members after every worker stopped: %v", members)
	}
	_ = storage.ErrInvalid
}

// TestFleetAsACLWorker: two workers run as the worker user whose ACL the
// README documents (read from the README), under a prefix nested in
// "tgsession": they share the sessions and leave cleanly.
func TestFleetAsACLWorker(t *testing.T) {
	redistest.Require(t)
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	user := redistest.READMEACL(t, srv, "../README.md", "worker")
	ctx := context.Background()
	prefix := redisstore.DefaultPrefix + ":fleetacl"
	const n = 10
	for i := range n {
		st, err := redisstore.New(admin, fmt.Sprintf("acct-%02d", i), redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l := &ledger{acked: map[string]int64{}}
	var ws []*running
	for _, id := range []string{"acl-a", "acl-b"} {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: user, Password: "pw"})
		defer c.Close()
		ws = append(ws, start(t, c, prefix, id, l))
	}
	waitOwned(t, n, 10*time.Second, ws, func(loads []int) bool { return within(loads, 5, 5) })
	time.Sleep(200 * time.Millisecond)
	for _, r := range ws {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("worker as the ACL user: %v", err)
		}
	}
	if members, _ := Members(ctx, admin, prefix); len(members) != 0 {
		t.Errorf("members left: %v", members)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) == 0 {
		t.Error("no writes as the ACL user")
	}
}

// TestFleetStopsOnPermanentErrors: a worker whose ACL lacks a command it
// needs stops at once with an error naming it, instead of retrying forever.
func TestFleetStopsOnPermanentErrors(t *testing.T) {
	srv := redistest.Require(t)
	user := redistest.NewACLUser(t, srv, "+@all", "-zadd")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: user, Password: "pw"})
	defer c.Close()
	w, err := New(c, Options{WorkerID: "noperm", Prefix: "fleetperm-" + redistest.TempName(t), Interval: 100 * time.Millisecond},
		func(ctx context.Context, _ *redisstore.Store) error { <-ctx.Done(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := time.Now()
	err = w.Run(ctx)
	t.Logf("Run without ZADD returned after %v: %v", time.Since(begin).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "NOPERM") || ctx.Err() != nil {
		t.Errorf("Run: %v; want a NOPERM error well before the context ends", err)
	}
}
