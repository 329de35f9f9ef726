package lock

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
)

// TestManagerHoldsManyLeases: 200 leases on one Manager cost a bounded
// number of goroutines (not two per lease), stay held over several TTLs
// (renewed in one pipeline per tick), and Release, a force release and Close
// behave as for a lease of its own.
func TestManagerHoldsManyLeases(t *testing.T) {
	srv := redistest.Require(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	prefix := "mgr-" + redistest.TempName(t)
	before := runtime.NumGoroutine()
	m, err := NewManager(c, Options{TTL: 600 * time.Millisecond, WorkerID: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	leases := make([]*Lease, n)
	for i := range leases {
		if leases[i], err = m.TryAcquire(ctx, fmt.Sprintf("%s:{%d}:lease", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
	grown := runtime.NumGoroutine() - before
	t.Logf("%d managed leases: %d more goroutines (a lease of its own runs 2)", n, grown)
	if grown > 10 {
		t.Errorf("%d goroutines for %d leases; want a bounded number", grown, n)
	}
	if _, err := m.TryAcquire(ctx, leases[0].Key()); !errors.Is(err, ErrHeld) {
		t.Errorf("a second TryAcquire of a held key: %v; want ErrHeld", err)
	}
	time.Sleep(2 * time.Second) // more than 3 TTLs: only renewals keep them
	for i, l := range leases {
		if err := l.Valid(); err != nil {
			t.Fatalf("lease %d after 3 TTLs: %v", i, err)
		}
		if ttl := c.PTTL(ctx, l.Key()).Val(); ttl <= 0 {
			t.Fatalf("lease %d: PTTL %v", i, ttl)
		}
	}

	// Release: the key goes, waiters hear it, the manager forgets it.
	sub := c.Subscribe(ctx, Channel(leases[1].Key()))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leases[1].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.ReceiveMessage(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, leases[1].Key()).Val(); n != 0 || !errors.Is(leases[1].Valid(), ErrReleased) {
		t.Errorf("released lease: key exists %d, Valid %v", n, leases[1].Valid())
	}

	// Force-released behind the manager's back: the next renewal ends it.
	info, err := Inspect(ctx, c, leases[2].Key())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ForceRelease(ctx, c, leases[2].Key(), info); !ok || err != nil {
		t.Fatal(ok, err)
	}
	select {
	case <-leases[2].Lost():
	case <-time.After(2 * time.Second):
		t.Fatal("a force-released managed lease was not lost")
	}
	if got := m.Len(); got != n-2 {
		t.Errorf("Len = %d; want %d", got, n-2)
	}

	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i, l := range leases[3:] {
		if c.Exists(ctx, l.Key()).Val() != 0 || !errors.Is(l.Valid(), ErrReleased) {
			t.Fatalf("lease %d after Close: still held", i+3)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if after := runtime.NumGoroutine() - before; after > 2 {
		t.Errorf("%d goroutines left after Close", after)
	}
}

// TestManagerLostUnderStall: a manager whose connection to Redis stalls (a
// partition) loses every lease at its deadline, before a standby can take
// any of them over, with default go-redis options.
func TestManagerLostUnderStall(t *testing.T) {
	srv := redistest.Require(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer direct.Close()
	proxy := redistest.NewProxy(t, srv.Addr)
	via := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	defer via.Close()
	ctx := context.Background()
	prefix := "mgrstall-" + redistest.TempName(t)
	m, err := NewManager(via, Options{TTL: time.Second, RenewEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	const n = 50
	leases := make([]*Lease, n)
	for i := range leases {
		if leases[i], err = m.TryAcquire(ctx, fmt.Sprintf("%s:{%d}:lease", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // a renewal went through
	proxy.Stall()
	defer proxy.Heal()
	standby, err := NewManager(direct, Options{TTL: time.Second, WorkerID: "standby"})
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close(ctx)
	var worst time.Duration = time.Hour
	for i, l := range leases {
		var got *Lease
		for got == nil {
			got, err = standby.TryAcquire(ctx, l.Key())
			if errors.Is(err, ErrHeld) {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		taken := time.Now()
		select {
		case <-l.Lost():
		default:
			t.Fatalf("lease %d: the standby took it over before its owner's Lost fired", i)
		}
		worst = min(worst, taken.Sub(l.Deadline()))
	}
	t.Logf("%d leases, owner stalled: every Lost fired before the standby's takeover; smallest margin %v", n, worst.Round(time.Millisecond))
}

// TestManagerRenewsAfterScriptFlush: a server that lost its scripts (a
// restart, a promoted replica) gets the script's body in the same tick:
// no renewal round is lost.
func TestManagerRenewsAfterScriptFlush(t *testing.T) {
	redistest.Require(t)
	srv, err := redistest.Start() // its own: SCRIPT FLUSH must not touch other tests' server
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	m, err := NewManager(c, Options{TTL: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	l, err := m.TryAcquire(ctx, "mgrflush-"+redistest.TempName(t)+":lease")
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := l.Valid(); err != nil {
		t.Errorf("after script flushes every 250 ms for 1 s (TTL 600 ms): %v", err)
	}
}
