package lock

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
)

// startPair starts a primary and a replica of it, private to one test.
func startPair(t *testing.T) (primary, replica *redistest.Server) {
	t.Helper()
	redistest.Require(t) // skips, or fails in CI, without redis-server
	var err error
	if primary, err = redistest.Start("--repl-diskless-sync-delay", "0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(primary.Stop)
	if replica, err = redistest.Start("--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(replica.Stop)
	if err := redistest.WaitReplicaSynced(context.Background(), replica.Addr, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	// And the primary says so (its INFO is what a lease reads).
	c := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer c.Close()
	for deadline := time.Now().Add(15 * time.Second); onlineReplicas(c.Info(context.Background(), "replication").Val()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the primary does not report its replica online")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return primary, replica
}

// TestRenewalOnReplicaIsRefused: the address a lease's client talks to is
// taken over by an empty replica (a killed primary restarted as a replica,
// issue 23 cause 7). The replica refuses the renewals (READONLY) instead of
// answering "not held", so the lease is not ended by a renewal but lives on
// to its deadline, and is lost then with the replica's refusal as the cause.
func TestRenewalOnReplicaIsRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	_, emptyReplica := startPair(t)
	proxy := redistest.NewProxy(t, srv.Addr)
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	defer c.Close()
	var logs syncBuffer
	ttl := 2 * time.Second
	l, err := TryAcquire(context.Background(), c, "replica-"+redistest.TempName(t)+":lease",
		Options{TTL: ttl, WaitReplicas: NoReplicas, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abandon()
	proxy.Retarget(emptyReplica.Addr)
	retargeted := time.Now()
	<-l.Lost()
	lostAfter := time.Since(retargeted)
	cause := context.Cause(l.Context())
	t.Logf("renewals refused by the replica; lost %v after the switch: %v", lostAfter.Round(time.Millisecond), cause)
	if !strings.Contains(logs.String(), "READONLY") {
		t.Errorf("no renewal was refused with READONLY; log:\n%s", logs.String())
	}
	if !errors.Is(cause, ErrLeaseLost) || strings.Contains(cause.Error(), "gone, taken over") {
		t.Errorf("cause = %v; want the deadline with READONLY, never 'gone'", cause)
	}
	// The deadline, not a renewal's "0", ended it: at least one renewal
	// period passed (an unflagged script answers 0 at the first renewal).
	if lostAfter < l.opts.RenewEvery {
		t.Errorf("lost %v after the switch: a renewal on the replica was taken as 'gone'", lostAfter)
	}
}

// TestUnconfirmedRenewalsKeepTheDeadline: the replica stops (SIGSTOP); the
// primary applies every renewal but WAIT times out, so the owner's deadline
// never moves again and the lease is lost at that deadline, with a cause
// wrapping ErrNotDurable, although the primary still holds it: the promoted
// replica (which has only what it had at the stop) would expire it no
// earlier than that deadline.
func TestUnconfirmedRenewalsKeepTheDeadline(t *testing.T) {
	t.Parallel()
	primary, replica := startPair(t)
	c := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer c.Close()
	ttl := 2 * time.Second
	key := "unconfirmed-" + redistest.TempName(t) + ":lease"
	// Acquire, not TryAcquire: on a loaded machine the replica may not
	// confirm the acquisition in time, and Acquire tries again.
	actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Acquire(actx, c, key, Options{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abandon()
	time.Sleep(2 * l.opts.RenewEvery) // confirmed renewals move the deadline
	replica.Pause()
	defer replica.Resume()
	stopped := time.Now()
	// A renewal round under way at the stop may still be confirmed; none
	// that starts after it. Every round ends within WaitTimeout of its
	// start, and one starts every RenewEvery.
	time.Sleep(l.opts.RenewEvery + l.opts.WaitTimeout)
	frozen := l.Deadline()
	if !frozen.After(stopped) {
		t.Fatalf("lease deadline %v before the stop", frozen.Sub(stopped))
	}
	for {
		select {
		case <-l.Lost():
		case <-time.After(10 * time.Millisecond):
			if d := l.Deadline(); !d.Equal(frozen) {
				t.Fatalf("deadline moved by %v while the replica was stopped", d.Sub(frozen))
			}
			continue
		}
		break
	}
	lostAt := time.Now()
	cause := context.Cause(l.Context())
	if !errors.Is(cause, ErrNotDurable) || !errors.Is(cause, ErrLeaseLost) {
		t.Errorf("cause = %v; want ErrLeaseLost and ErrNotDurable", cause)
	}
	if lostAt.Before(frozen) {
		t.Errorf("lost %v before its deadline", frozen.Sub(lostAt))
	}
	pttl := c.PTTL(context.Background(), key).Val()
	t.Logf("replica stopped: lost %v after the stop, %v after its deadline; the primary still holds it (PTTL %v)",
		lostAt.Sub(stopped).Round(time.Millisecond), lostAt.Sub(frozen).Round(time.Millisecond), pttl)
	if pttl <= 0 {
		t.Errorf("the primary no longer holds the lease (PTTL %v): the renewals were not applied there", pttl)
	}
}

// TestRevokeWithWaitingStandby: an operator revokes a lease while a standby
// waits. The owner hears it, ends its lease (Lost), then acknowledges; the
// standby acquires after that, long before the lease's TTL. An owner that
// cannot hear (its connections stalled) keeps the key until it expires, so
// the standby still acquires only after the owner's own deadline passed.
func TestRevokeWithWaitingStandby(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { direct.Close() })
	for _, stalled := range []bool{false, true} {
		t.Run(map[bool]string{false: "owner hears", true: "owner stalled"}[stalled], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			proxy := redistest.NewProxy(t, srv.Addr)
			oc := redis.NewClient(&redis.Options{Addr: proxy.Addr})
			defer oc.Close()
			ttl := 3 * time.Second
			key := "revoke-" + redistest.TempName(t) + ":lease"
			owner, err := TryAcquire(ctx, oc, key, Options{TTL: ttl, WorkerID: "owner"})
			if err != nil {
				t.Fatal(err)
			}
			defer owner.Abandon()
			acquired := make(chan time.Time, 1)
			go func() {
				wctx, cancel := context.WithTimeout(ctx, 4*ttl)
				defer cancel()
				b, err := Acquire(wctx, direct, key, Options{TTL: ttl, WorkerID: "standby", PollInterval: ttl})
				if err != nil {
					t.Error(err)
					close(acquired)
					return
				}
				acquired <- time.Now()
				_ = b.Release(ctx)
			}()
			time.Sleep(100 * time.Millisecond) // the standby waits
			if stalled {
				proxy.Stall()
				defer proxy.Heal()
			}
			info, err := Inspect(ctx, direct, key)
			if err != nil {
				t.Fatal(err)
			}
			revoked := time.Now()
			delay, ok, err := Revoke(ctx, direct, key, info)
			if err != nil || !ok || delay <= 0 || delay > ttl {
				t.Fatalf("Revoke = %v, %v, %v", delay, ok, err)
			}
			var lostAt time.Time
			select {
			case <-owner.Lost():
				lostAt = time.Now()
			case <-time.After(2 * ttl):
				t.Fatal("the owner never lost its lease")
			}
			at, ok := <-acquired
			if !ok {
				return
			}
			t.Logf("lock delay %v; owner lost %v after the revoke, standby acquired %v after it (margin %v); cause: %v",
				delay, lostAt.Sub(revoked).Round(time.Millisecond), at.Sub(revoked).Round(time.Millisecond),
				at.Sub(lostAt).Round(time.Millisecond), context.Cause(owner.Context()))
			if !at.After(lostAt) {
				t.Errorf("the standby acquired %v before the owner stopped trusting its lease", lostAt.Sub(at))
			}
			if !stalled {
				if !errors.Is(context.Cause(owner.Context()), ErrRevoked) {
					t.Errorf("owner's cause = %v; want ErrRevoked", context.Cause(owner.Context()))
				}
				if at.Sub(revoked) >= delay {
					t.Errorf("the standby waited the whole delay (%v): the owner's acknowledgement did not free the lease", at.Sub(revoked))
				}
			}
		})
	}
}

// TestLonePrimaryIsNotTrusted: a client that has seen its primary with a
// replica keeps asking for a confirmation after the replica went away (here
// it was promoted: REPLICAOF NO ONE, as a Sentinel does over a primary that
// missed its pings), because the primary may be about to be demoted and
// lose what it accepts alone. An acquisition there fails with ErrNotDurable
// (and is released), and the lease held before is lost at its deadline with
// a cause wrapping ErrNotDurable, although the lone primary applied every
// renewal. A fresh client that never saw a replica trusts the same primary.
func TestLonePrimaryIsNotTrusted(t *testing.T) {
	t.Parallel()
	primary, replica := startPair(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer c.Close()
	ttl := 2 * time.Second
	base := "lone-" + redistest.TempName(t)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	held, err := Acquire(actx, c, base+":held", Options{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Abandon()
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer rc.Close()
	if err := rc.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	detached := time.Now()
	// The primary notices the replica's link closing at once.
	for deadline := time.Now().Add(10 * time.Second); ; {
		info := c.Info(ctx, "replication").Val()
		if onlineReplicas(info) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the primary still reports a replica: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = TryAcquire(ctx, c, base+":new", Options{TTL: ttl})
	if !errors.Is(err, ErrNotDurable) {
		t.Errorf("TryAcquire on a primary that lost its replica: %v; want ErrNotDurable", err)
	}
	if v := c.Get(ctx, base+":new").Val(); v != "" {
		t.Errorf("the unconfirmed acquisition was left behind: %q", v)
	}
	select {
	case <-held.Lost():
	case <-time.After(3 * ttl):
		t.Fatalf("the lease held before is still trusted %v after its replica left: the lone primary's renewals were trusted", 3*ttl)
	}
	cause := context.Cause(held.Context())
	t.Logf("held lease lost %v after the replica left: %v", time.Since(detached).Round(time.Millisecond), cause)
	if !errors.Is(cause, ErrNotDurable) {
		t.Errorf("cause = %v; want ErrNotDurable", cause)
	}
	if pttl := c.PTTL(ctx, base+":held").Val(); pttl <= 0 {
		t.Errorf("the primary does not hold the lease (PTTL %v): the renewals were not applied", pttl)
	}
	// A client of its own, that never saw a replica, trusts the primary.
	fresh := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer fresh.Close()
	l, err := TryAcquire(ctx, fresh, base+":fresh", Options{TTL: ttl})
	if err != nil {
		t.Fatalf("a fresh client on a server without replicas: %v", err)
	}
	_ = l.Release(ctx)
}
