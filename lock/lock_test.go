package lock

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func setup(t *testing.T) (*miniredis.Miniredis, redis.UniversalClient) {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { c.Close() })
	return m, c
}

// waitClosed waits for ch with a generous bound (a hang, not a timing check).
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not signalled", what)
	}
}

func TestAcquireInspectRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c := setup(t)
	a, err := TryAcquire(ctx, c, "s:{x}:lease", Options{WorkerID: "worker-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryAcquire(ctx, c, "s:{x}:lease", Options{WorkerID: "worker-b"}); !errors.Is(err, ErrHeld) {
		t.Fatalf("second TryAcquire: %v; want ErrHeld", err)
	}
	info, err := Inspect(ctx, c, "s:{x}:lease")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if !info.Held || info.Owner.WorkerID != "worker-a" || info.Owner.PID != os.Getpid() || info.Owner.Host != host ||
		info.Owner.Since.IsZero() || info.TTL <= 0 || info.TTL > DefaultTTL {
		t.Errorf("Inspect = %+v", info)
	}
	if info.Owner != a.Owner() {
		t.Errorf("Inspect owner %v != lease owner %v", info.Owner, a.Owner())
	}
	if err := a.Valid(); err != nil {
		t.Errorf("Valid = %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Valid(); !errors.Is(err, ErrReleased) {
		t.Errorf("Valid after Release = %v; want ErrReleased", err)
	}
	if err := a.Release(ctx); !errors.Is(err, ErrReleased) {
		t.Errorf("second Release = %v; want ErrReleased", err)
	}
	select {
	case <-a.Lost():
		t.Error("Lost fired on a voluntary Release")
	default:
	}
	waitClosed(t, a.Context().Done(), "Context after Release")
	if info, _ := Inspect(ctx, c, "s:{x}:lease"); info.Held {
		t.Errorf("Inspect after Release = %+v", info)
	}
	b, err := TryAcquire(ctx, c, "s:{x}:lease", Options{})
	if err != nil {
		t.Fatalf("TryAcquire after Release: %v", err)
	}
	if b.Token() == a.Token() || len(b.Token()) < 16 {
		t.Errorf("tokens: %q then %q; want distinct random tokens", a.Token(), b.Token())
	}
	_ = b.Release(ctx)
}

// TestRenewKeepsTheLease: time moves on in Redis (FastForward) by more than
// the TTL in total, and the lease survives because it is renewed.
func TestRenewKeepsTheLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, c := setup(t)
	opts := Options{TTL: 600 * time.Millisecond, RenewEvery: 50 * time.Millisecond}
	l, err := TryAcquire(ctx, c, "renew", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	for i := 0; i < 12; i++ {
		m.FastForward(200 * time.Millisecond) // 2.4 s of server time in all
		time.Sleep(100 * time.Millisecond)    // at least one renewal in between
		if !m.Exists("renew") {
			t.Fatalf("lease expired after %d steps: not renewed", i+1)
		}
	}
	if err := l.Valid(); err != nil {
		t.Errorf("Valid = %v", err)
	}
}

// TestLostWhenTakenOver: the lease expires in Redis, another worker takes it,
// and the first owner's next renewal fires Lost.
func TestLostWhenTakenOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, c := setup(t)
	a, err := TryAcquire(ctx, c, "k", Options{TTL: 10 * time.Second, RenewEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.FastForward(11 * time.Second)
	b, err := TryAcquire(ctx, c, "k", Options{TTL: 10 * time.Second})
	if err != nil {
		t.Fatalf("B after expiry: %v", err)
	}
	defer b.Release(ctx)
	waitClosed(t, a.Lost(), "A.Lost after takeover")
	if err := a.Valid(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("A.Valid = %v; want ErrLeaseLost", err)
	}
	if err := a.Release(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("A.Release = %v; want ErrLeaseLost", err)
	}
	if err := b.Valid(); err != nil {
		t.Errorf("B.Valid = %v (A's Release must not touch B's lease)", err)
	}
	if info, _ := Inspect(ctx, c, "k"); !info.Held || info.Owner != b.Owner() {
		t.Errorf("owner after A's Release: %+v; want B", info)
	}
}

// TestLostAtOwnDeadline: Redis stops answering; the owner gives up at its own
// deadline (before Redis's TTL), without any reply telling it so.
func TestLostAtOwnDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, c := setup(t)
	l, err := TryAcquire(ctx, c, "k", Options{TTL: 400 * time.Millisecond, RenewEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.SetError("LOADING server is unreachable in this test")
	waitClosed(t, l.Lost(), "Lost at the owner's deadline")
	if d := l.Deadline(); time.Now().Before(d) {
		t.Errorf("Lost fired before the deadline %v", d)
	}
	if err := l.Valid(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Valid = %v", err)
	}
	if l.opts.TTL-l.opts.SafetyMargin >= l.opts.TTL {
		t.Error("the owner's horizon must be shorter than the TTL")
	}
}

func TestForceRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c := setup(t)
	a, err := TryAcquire(ctx, c, "k", Options{TTL: time.Minute, RenewEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// A standby that would poll only once a minute: it must be woken.
	got := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		b, err := Acquire(wctx, c, "k", Options{TTL: time.Minute, PollInterval: time.Minute})
		if err == nil {
			defer b.Release(ctx)
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the standby subscribe (not required for correctness)
	info, err := Inspect(ctx, c, "k")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := ForceRelease(ctx, c, "k", info)
	if err != nil || !ok {
		t.Fatalf("ForceRelease = %v, %v", ok, err)
	}
	if err := <-got; err != nil {
		t.Fatalf("standby after force-release: %v", err)
	}
	waitClosed(t, a.Lost(), "A.Lost after force-release")
	none, _ := Inspect(ctx, c, "nobody")
	if ok, _ := ForceRelease(ctx, c, "nobody", none); ok {
		t.Error("ForceRelease of a missing lease reported true")
	}
}

// TestForceReleaseComparesTheLease: an operator shown owner A whose lease
// changes hands before the release does not remove B's lease; junk in the
// key is reported and only Clear removes it.
func TestForceReleaseComparesTheLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, c := setup(t)
	a, err := TryAcquire(ctx, c, "k", Options{TTL: time.Second, WorkerID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	shown, err := Inspect(ctx, c, "k")
	if err != nil || shown.Owner.WorkerID != "a" {
		t.Fatalf("Inspect = %+v, %v", shown, err)
	}
	// A's lease ends; B takes the session while the operator reads the prompt.
	a.Abandon()
	m.FastForward(2 * time.Second)
	b, err := TryAcquire(ctx, c, "k", Options{TTL: time.Minute, WorkerID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(ctx)
	if ok, err := ForceRelease(ctx, c, "k", shown); ok || err != nil {
		t.Errorf("ForceRelease of the lease shown (A's) after B took over = %v, %v; want false, nil", ok, err)
	}
	if err := b.Valid(); err != nil {
		t.Errorf("B's lease after the refused release: %v", err)
	}
	if info, _ := Inspect(ctx, c, "k"); info.Owner.WorkerID != "b" {
		t.Errorf("lease after the refused release: %+v; want B's", info)
	}

	// Junk in a lease key: Inspect says so, ForceRelease leaves it, Clear removes it.
	if err := c.Set(ctx, "junk", "x|{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(ctx, c, "junk")
	if err == nil || !info.Held {
		t.Errorf("Inspect of junk = %+v, %v; want held and an error", info, err)
	}
	if ok, err := Clear(ctx, c, "junk"); !ok || err != nil {
		t.Errorf("Clear = %v, %v", ok, err)
	}
	if n, _ := c.Exists(ctx, "junk").Result(); n != 0 {
		t.Error("Clear left the key")
	}
}

// TestAcquireWakesOnRelease: a waiter whose poll interval and the lease TTL
// are a minute still gets the lease within its 20 s context, so the release
// announcement woke it.
func TestAcquireWakesOnRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c := setup(t)
	a, err := TryAcquire(ctx, c, "k", Options{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lease, 1)
	errs := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		b, err := Acquire(wctx, c, "k", Options{TTL: time.Minute, PollInterval: time.Minute})
		if err != nil {
			errs <- err
			return
		}
		got <- b
	}()
	time.Sleep(50 * time.Millisecond)
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		_ = b.Release(ctx)
	case err := <-errs:
		t.Fatalf("waiter: %v", err)
	}
}

// TestAcquireAfterCrash: the owner stops renewing without releasing; a waiter
// takes over once Redis expires the lease.
func TestAcquireAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, c := setup(t)
	a, err := TryAcquire(ctx, c, "k", Options{TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a.Abandon()
	if err := a.Valid(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Valid after Abandon = %v", err)
	}
	got := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		b, err := Acquire(wctx, c, "k", Options{TTL: 5 * time.Second, PollInterval: 20 * time.Millisecond})
		if err == nil {
			_ = b.Release(ctx)
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if !m.Exists("k") {
		t.Fatal("an abandoned lease must stay until its TTL runs out")
	}
	m.FastForward(6 * time.Second)
	if err := <-got; err != nil {
		t.Fatalf("standby after expiry: %v", err)
	}
}

func TestAcquireGivesUpWithContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c := setup(t)
	a, err := TryAcquire(ctx, c, "k", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(ctx)
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := Acquire(wctx, c, "k", Options{PollInterval: 10 * time.Millisecond}); !errors.Is(err, ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire = %v; want ErrHeld and DeadlineExceeded", err)
	}
}

func TestOptionsValidated(t *testing.T) {
	t.Parallel()
	bad := []Options{
		{TTL: time.Millisecond},
		{TTL: time.Second, SafetyMargin: time.Second},
		{TTL: time.Second, SafetyMargin: -1},
		{TTL: time.Second, RenewEvery: 950 * time.Millisecond},
		{PollInterval: -time.Second},
	}
	for _, o := range bad {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o, err := Options{}.withDefaults()
	if err != nil || o.TTL != 15*time.Second || o.RenewEvery != 5*time.Second || o.SafetyMargin != 1500*time.Millisecond || o.WorkerID == "" {
		t.Errorf("defaults = %+v, %v", o, err)
	}
}
