package lock

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
)

//go:embed lua/refresh.lua
var refreshSrc string

var refreshScript = redis.NewScript(refreshSrc)

// Manager holds many leases at a cost that does not grow with their number
// in goroutines: one goroutine renews every lease it holds (one pipeline of
// refreshes per RenewEvery, on the client's pooled connections) and one
// enforces every owner's deadline on its own timer, like a single lease's
// watch. A worker that owns hundreds of sessions uses one Manager instead of
// one Acquire (two goroutines) per session.
//
// The leases it hands out behave like TryAcquire's: Token, Lost, Context,
// Valid, Deadline and Release work the same, and so does fencing. A renewal
// that finds the lease gone (expired, taken over, force-released) ends it at
// once; a renewal that cannot reach Redis leaves the deadline where it was,
// and the deadline timer ends the lease on time, whatever is blocked.
type Manager struct {
	client redis.UniversalClient
	opts   Options

	mu     sync.Mutex
	leases map[*Lease]struct{}
	closed bool

	wake chan struct{} // a lease was added: recompute the earliest deadline
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewManager starts a manager for leases with opts (the same options as
// TryAcquire: TTL, RenewEvery, SafetyMargin, WorkerID, Logger, WaitReplicas).
// Close stops it.
func NewManager(client redis.UniversalClient, opts Options) (*Manager, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{client: client, opts: o, leases: map[*Lease]struct{}{}, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	m.wg.Add(2)
	go m.renewLoop()
	go m.watchLoop()
	return m, nil
}

// TryAcquire takes the lease on key if nobody holds it (ErrHeld otherwise)
// and keeps it renewed until it is released or lost.
func (m *Manager) TryAcquire(ctx context.Context, key string) (*Lease, error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, errors.New("lock: the manager is closed")
	}
	lk, owner, sent, err := obtain(ctx, m.client, key, m.opts)
	if err != nil {
		return nil, err
	}
	l := newLease(m.client, key, lk, m.opts, owner, sent)
	l.managed = m
	close(l.done) // no renewal goroutine of its own to wait for
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = l.Release(context.WithoutCancel(ctx))
		return nil, errors.New("lock: the manager is closed")
	}
	m.leases[l] = struct{}{}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return l, nil
}

// Len returns how many leases the manager holds.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// forget drops an ended lease (called by Lease.end).
func (m *Manager) forget(l *Lease) {
	m.mu.Lock()
	delete(m.leases, l)
	m.mu.Unlock()
}

// held returns the leases still held.
func (m *Manager) held() []*Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Lease, 0, len(m.leases))
	for l := range m.leases {
		out = append(out, l)
	}
	return out
}

// Close releases every lease it holds (announcing each, so waiting workers
// take over at once) and stops the manager.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	var errs []error
	for _, l := range m.held() {
		if err := l.Release(ctx); err != nil && !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrReleased) {
			errs = append(errs, err)
		}
	}
	close(m.stop)
	m.wg.Wait()
	return errors.Join(errs...)
}

// renewLoop refreshes every held lease each RenewEvery, in one pipeline.
func (m *Manager) renewLoop() {
	defer m.wg.Done()
	tick := time.NewTicker(m.opts.RenewEvery)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		leases := m.held()
		if len(leases) == 0 {
			continue
		}
		earliest := leases[0].Deadline()
		for _, l := range leases[1:] {
			if d := l.Deadline(); d.Before(earliest) {
				earliest = d
			}
		}
		sent := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), earliest)
		results := m.refresh(ctx, leases, false)
		// A server without the script (restarted, promoted, or new to this
		// worker): send those again with the script's body, in this tick.
		var again []*Lease
		for i, l := range leases {
			if redis.HasErrorPrefix(results[i].Err(), "NOSCRIPT") {
				again = append(again, l)
			}
		}
		if len(again) > 0 {
			retried := m.refresh(ctx, again, true)
			j := 0
			for i := range leases {
				if redis.HasErrorPrefix(results[i].Err(), "NOSCRIPT") {
					results[i] = retried[j]
					j++
				}
			}
		}
		cancel()
		for i, l := range leases {
			n, err := results[i].Int()
			switch {
			case err == nil && n == 1:
				l.mu.Lock()
				if l.err == nil {
					l.deadline = sent.Add(m.opts.TTL - m.opts.SafetyMargin)
				}
				l.mu.Unlock()
			case err == nil:
				l.end(ErrLeaseLost) // taken over, expired or force-released
			default:
				redisutil.ReloadOnFailover(m.client, err)
				if m.opts.Logger != nil {
					m.opts.Logger.Warn("lock: renewal failed", "key", l.key, "err", err, "deadline_in", time.Until(l.Deadline()))
				}
			}
		}
	}
}

// refresh sends one refresh per lease in one pipeline (EVAL with the
// script's body when eval, else EVALSHA) and returns the replies in order.
func (m *Manager) refresh(ctx context.Context, leases []*Lease, eval bool) []*redis.Cmd {
	pipe := m.client.Pipeline()
	cmds := make([]*redis.Cmd, len(leases))
	for i, l := range leases {
		args := []any{l.lock.Token() + l.lock.Metadata(), m.opts.TTL.Milliseconds()}
		if eval {
			cmds[i] = refreshScript.Eval(ctx, pipe, []string{l.key}, args...)
		} else {
			cmds[i] = refreshScript.EvalSha(ctx, pipe, []string{l.key}, args...)
		}
	}
	_, _ = pipe.Exec(ctx)
	return cmds
}

// watchLoop ends every lease whose deadline passed, on a timer set to the
// earliest deadline: a renewal blocked in a socket read cannot delay Lost.
func (m *Manager) watchLoop() {
	defer m.wg.Done()
	for {
		wait := time.Hour
		for _, l := range m.held() {
			d := time.Until(l.Deadline())
			if d <= 0 {
				l.end(ErrLeaseLost)
				continue
			}
			wait = min(wait, d)
		}
		t := time.NewTimer(wait)
		select {
		case <-m.stop:
			t.Stop()
			return
		case <-m.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// String describes the manager for logs.
func (m *Manager) String() string {
	return fmt.Sprintf("lock.Manager(%d leases, TTL %v)", m.Len(), m.opts.TTL)
}
