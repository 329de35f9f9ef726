package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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

// TestAcquireStopsOnPermanentErrors: errors that retrying cannot cure end
// Acquire at once (well within its context), naming what is wrong; the
// transient kind is retried and logged.
func TestAcquireStopsOnPermanentErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Require(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	user := redistest.NewACLUser(t, srv, "+@all", "-msetnx")
	hashKey := "perm-" + redistest.TempName(t) + ":lease"
	if err := admin.HSet(ctx, hashKey, "not", "a lease").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Del(ctx, hashKey)
	tests := []struct {
		name string
		opts redis.Options
		key  string
		want string
	}{
		{"ACL without msetnx", redis.Options{Username: user, Password: "pw"}, "perm-" + redistest.TempName(t) + ":lease", "MSETNX"},
		{"wrong password", redis.Options{Username: user, Password: "wrong"}, "perm-" + redistest.TempName(t) + ":lease", "WRONGPASS"},
		{"lease key of another type", redis.Options{}, hashKey, "WRONGTYPE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Addr = srv.Addr
			c := redis.NewClient(&o)
			defer c.Close()
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := Acquire(wctx, c, tc.key, Options{TTL: time.Second, PollInterval: 100 * time.Millisecond})
			took := time.Since(start)
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "retrying cannot help") {
				t.Errorf("Acquire = %v; want a permanent error naming %s", err, tc.want)
			}
			if wctx.Err() != nil {
				t.Errorf("Acquire retried until its context ended (%v)", took)
			}
		})
	}
}

// TestAcquireLogsTransientErrors: a server that is down is retried while
// the context lasts, and every retry goes to the logger.
func TestAcquireLogsTransientErrors(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	// go-redis spends ~0.4-0.8 s retrying a refused dial per command (its
	// dialer retries): a context of a few seconds sees several attempts.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := Acquire(ctx, c, "down:lease", Options{PollInterval: 50 * time.Millisecond, Logger: logger})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire against a down server = %v; want the context's deadline", err)
	}
	if n := strings.Count(buf.String(), "acquiring failed, retrying"); n < 2 {
		t.Errorf("%d retries logged; want several:\n%s", n, buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
