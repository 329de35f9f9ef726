package lock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
)

// TestMain stops the shared real server (partition tests) at the end.
func TestMain(m *testing.M) { redistest.Main(m) }

// TestLostBeforeTakeoverUnderStall: an owner whose connection to Redis
// stalls (a partition: bytes held, not dropped) must see Lost before a
// standby's Acquire returns, with go-redis's default options, whose socket
// reads ignore context deadlines. 20 handovers, each with its own proxy.
func TestLostBeforeTakeoverUnderStall(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer direct.Close()
	const handovers = 20
	opts := Options{TTL: time.Second, RenewEvery: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond}
	margins := make([]time.Duration, handovers)
	var wg sync.WaitGroup
	for i := range handovers {
		wg.Go(func() {
			margins[i] = stalledHandover(t, direct, srv.Addr, fmt.Sprintf("stall-%s-%d:lease", redistest.TempName(t), i), opts)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	slices.Sort(margins)
	before := 0
	for _, m := range margins {
		if m > 0 {
			before++
		}
	}
	t.Logf("stalled handovers: Lost before the standby's Acquire returned in %d/%d; margin min %v, median %v, max %v",
		before, handovers, margins[0].Round(time.Millisecond), margins[handovers/2].Round(time.Millisecond), margins[handovers-1].Round(time.Millisecond))
	if before != handovers {
		t.Errorf("Lost came after the takeover in %d of %d handovers (margins %v)", handovers-before, handovers, margins)
	}
}

// stalledHandover: the owner talks to Redis through a proxy (default go-redis
// options); the proxy stalls just after a renewal was sent; a standby waits
// directly. It returns how long before the standby's Acquire returned the
// owner's Lost fired (negative: after).
func stalledHandover(t *testing.T, direct redis.UniversalClient, addr, key string, opts Options) time.Duration {
	ctx := context.Background()
	proxy := redistest.NewProxy(t, addr)
	owner := redis.NewClient(&redis.Options{Addr: proxy.Addr}) // the README's options: defaults
	defer owner.Close()
	l, err := TryAcquire(ctx, owner, key, opts)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer proxy.Heal()
	time.Sleep(opts.RenewEvery + opts.RenewEvery/2) // mid-way between renewals
	proxy.Stall()
	var lostAt time.Time
	lostDone := make(chan struct{})
	go func() {
		<-l.Lost()
		lostAt = time.Now()
		close(lostDone)
	}()
	o := opts
	o.WorkerID = "standby"
	standby, err := Acquire(ctx, direct, key, o)
	acquiredAt := time.Now()
	if err != nil {
		t.Error(err)
		return 0
	}
	defer standby.Release(ctx)
	select {
	case <-lostDone:
	case <-time.After(10 * time.Second):
		t.Errorf("%s: the stalled owner's Lost never fired", key)
		return 0
	}
	if err := l.Valid(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("%s: stalled owner's Valid = %v after takeover", key, err)
	}
	return acquiredAt.Sub(lostAt)
}
