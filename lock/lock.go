// Package lock gives one worker at a time exclusive ownership of a Telegram
// session: a lease in Redis, built on github.com/bsm/redislock, renewed in the
// background, with owner metadata anyone can read, an operator force-release,
// a "lost" signal, and prompt handover to waiting workers.
//
// # Why
//
// Telegram revokes an auth key that two live clients use at once
// (AUTH_KEY_DUPLICATED, a new login is needed). A fleet that shares sessions
// through Redis must make sure exactly one running worker uses each session,
// and that a worker that was paused (GC, VM freeze, network partition) and
// lost its lease never writes again.
//
// # The discipline
//
// The lease is a Redis key with a TTL (default 15 s) holding a random token
// and the owner's metadata. The owner renews it every RenewEvery (default
// TTL/3). Redis expires the key TTL after the last renewal the SERVER
// applied; the owner cannot know exactly when that was, but it knows when it
// SENT the renewal, which was earlier. So the owner keeps its own deadline:
//
//	deadline = (send time of the last successful renewal) + TTL - SafetyMargin
//
// measured on Go's monotonic clock, and enforced by a timer of its own, so a
// renewal blocked in a socket read (go-redis applies context deadlines to
// reads only with ContextTimeoutEnabled) cannot delay it. When the deadline
// passes without a successful renewal, or a renewal finds the lease gone or
// taken, Lost() fires and Valid() starts failing: the owner considers itself deposed BEFORE
// Redis can let anyone else acquire. SafetyMargin (default TTL/10) absorbs
// clock-rate differences between hosts and the time between checking Valid
// and the write reaching Redis.
//
// The deadline alone cannot stop a write that was already on its way when the
// process froze. So every write the session store makes is fenced: its Lua
// script checks, atomically with the write, that the lease key still holds
// this owner's token, and refuses otherwise (ErrLeaseLost). A deposed owner
// that wakes up can therefore never write, whatever its clock says.
//
// # Handover
//
// Release deletes the lease and publishes on a channel next to it; waiting
// workers (Acquire) subscribe to that channel and try again at once, so a
// graceful handover takes a round trip or two. When an owner dies without
// releasing, waiters sleep until the lease's remaining TTL runs out (capped
// at PollInterval) and take over right after Redis expires it.
//
// Never set a redislock custom token (they are compared by prefix, so
// "worker-1" could take over "worker-12"): this package always uses
// redislock's random tokens and builds a fresh retry strategy per call.
package lock

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
)

// Errors. Test with errors.Is.
var (
	// ErrLeaseLost reports that this worker no longer owns the session (its
	// lease expired, was taken over or force-released). Stop using the
	// session; open it again to wait for ownership.
	ErrLeaseLost = errors.New("lock: lease lost: another worker may own the session now; stop using it and open it again")
	// ErrHeld reports that another worker owns the lease.
	ErrHeld = errors.New("lock: session is owned by another worker")
	// ErrReleased reports a call on a lease that was released.
	ErrReleased = errors.New("lock: lease was released")
	// ErrNotDurable reports a lease that fewer replicas than
	// Options.WaitReplicas confirmed in time: it was released again, since a
	// failover could lose it. Check the replicas, or retry.
	ErrNotDurable = errors.New("lock: lease not confirmed by enough replicas")
)

// Defaults for Options.
const (
	DefaultTTL          = 15 * time.Second
	DefaultPollInterval = time.Second
)

// Options configure a lease. The zero value uses the defaults.
type Options struct {
	TTL          time.Duration // lease time-to-live in Redis (default 15 s)
	RenewEvery   time.Duration // renewal period (default TTL/3)
	SafetyMargin time.Duration // owner deadline = last renewal sent + TTL - SafetyMargin (default TTL/10)
	PollInterval time.Duration // longest wait between attempts while waiting (default 1 s)
	WorkerID     string        // recorded in the metadata (default "<host>-<pid>")

	// Logger, if set, receives the transient errors Acquire retries and the
	// failed renewals (at level Warn); permanent errors are returned, not
	// logged. nil logs nothing.
	Logger *slog.Logger

	// WaitReplicas, when positive, makes acquiring wait (Redis WAIT, up to
	// WaitTimeout, default 1 s) until that many replicas hold the new lease,
	// so a failover right after cannot lose it. A lease not confirmed in time
	// is released and the attempt fails with an error wrapping
	// ErrNotDurable (Acquire keeps trying while its context lasts).
	WaitReplicas int
	WaitTimeout  time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.RenewEvery == 0 {
		o.RenewEvery = o.TTL / 3
	}
	if o.SafetyMargin == 0 {
		o.SafetyMargin = o.TTL / 10
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.WaitReplicas > 0 && o.WaitTimeout == 0 {
		o.WaitTimeout = time.Second
	}
	switch {
	case o.TTL < 10*time.Millisecond:
		return o, fmt.Errorf("lock: TTL %v is too short (at least 10ms; %v is the default)", o.TTL, DefaultTTL)
	case o.SafetyMargin <= 0 || o.SafetyMargin >= o.TTL:
		return o, fmt.Errorf("lock: SafetyMargin %v must be positive and below TTL %v", o.SafetyMargin, o.TTL)
	case o.RenewEvery <= 0 || o.RenewEvery >= o.TTL-o.SafetyMargin:
		return o, fmt.Errorf("lock: RenewEvery %v must be positive and below TTL - SafetyMargin (%v)", o.RenewEvery, o.TTL-o.SafetyMargin)
	case o.PollInterval <= 0:
		return o, fmt.Errorf("lock: PollInterval %v must be positive", o.PollInterval)
	case o.WaitReplicas < 0 || o.WaitTimeout < 0:
		return o, fmt.Errorf("lock: WaitReplicas %d and WaitTimeout %v must not be negative", o.WaitReplicas, o.WaitTimeout)
	}
	if o.WorkerID == "" {
		host, _ := os.Hostname()
		o.WorkerID = host + "-" + strconv.Itoa(os.Getpid())
	}
	return o, nil
}

// Owner is the metadata stored with a lease, readable by anyone (Inspect).
type Owner struct {
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	WorkerID string    `json:"worker"`
	Since    time.Time `json:"since"`
}

// String describes the owner for operators.
func (o Owner) String() string {
	return fmt.Sprintf("worker %s (host %s, pid %d) since %s", o.WorkerID, o.Host, o.PID, o.Since.UTC().Format(time.RFC3339))
}

// The stored value is redislock's token, '|', then the owner as JSON. The
// token is redislock's random URL-safe base64, so it never contains '|', and
// fenced scripts compare token..'|' exactly (no prefix ambiguity).
const sep = "|"

// Channel returns the pub/sub channel on which releases of key are announced.
func Channel(key string) string { return key + ":released" }

// Lease is an acquired lease. Its methods are safe for concurrent use.
type Lease struct {
	key    string
	client redis.UniversalClient
	lock   *redislock.Lock
	opts   Options
	owner  Owner

	mu       sync.Mutex
	deadline time.Time // monotonic: when this owner stops trusting the lease
	err      error     // set once: ErrLeaseLost or ErrReleased

	lost     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	managed *Manager // the Manager renewing it, or nil (its own goroutines)
}

// TryAcquire takes the lease on key if nobody holds it, or returns ErrHeld.
func TryAcquire(ctx context.Context, client redis.UniversalClient, key string, opts Options) (*Lease, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return try(ctx, client, key, o)
}

func try(ctx context.Context, client redis.UniversalClient, key string, o Options) (*Lease, error) {
	lk, owner, sent, err := obtain(ctx, client, key, o)
	if err != nil {
		return nil, err
	}
	l := newLease(client, key, lk, o, owner, sent)
	go l.renew()
	go l.watch()
	return l, nil
}

// obtain takes the lease on key without starting its renewal: try for a
// lease of its own, Manager.TryAcquire for a managed one.
func obtain(ctx context.Context, client redis.UniversalClient, key string, o Options) (*redislock.Lock, Owner, time.Time, error) {
	host, _ := os.Hostname()
	owner := Owner{Host: host, PID: os.Getpid(), WorkerID: o.WorkerID, Since: time.Now().UTC().Truncate(time.Millisecond)}
	meta, err := json.Marshal(owner)
	if err != nil {
		return nil, owner, time.Time{}, err
	}
	sent := time.Now()
	// No Token option (prefix-compared in redislock) and a fresh (nil =
	// no-retry) strategy per call: this package does its own waiting.
	lk, err := redislock.New(client).Obtain(ctx, key, o.TTL, &redislock.Options{Metadata: sep + string(meta)})
	if errors.Is(err, redislock.ErrNotObtained) {
		return nil, owner, sent, ErrHeld
	}
	if err != nil {
		return nil, owner, sent, explain(ctx, client, key, fmt.Errorf("lock: acquire %s: %w", key, err))
	}
	if o.WaitReplicas > 0 {
		if err := confirm(ctx, client, key, lk, o); err != nil {
			_ = lk.Release(context.WithoutCancel(ctx))
			return nil, owner, sent, err
		}
	}
	return lk, owner, sent, nil
}

// newLease is an obtained lease whose deadline counts from sent.
func newLease(client redis.UniversalClient, key string, lk *redislock.Lock, o Options, owner Owner, sent time.Time) *Lease {
	l := &Lease{
		key: key, client: client, lock: lk, opts: o, owner: owner,
		deadline: sent.Add(o.TTL - o.SafetyMargin),
		lost:     make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

//go:embed lua/confirm.lua
var confirmSrc string

var confirmScript = redis.NewScript(confirmSrc)

// confirm waits until o.WaitReplicas replicas hold the lease just obtained.
func confirm(ctx context.Context, client redis.UniversalClient, key string, lk *redislock.Lock, o Options) error {
	var ours *redis.Cmd
	n, err := redisutil.Do(ctx, client, key, o.WaitReplicas, o.WaitTimeout, func(p redis.Pipeliner) {
		ours = confirmScript.Eval(ctx, p, []string{key}, lk.Token()+lk.Metadata(), o.TTL.Milliseconds())
	})
	switch {
	case err != nil:
		return fmt.Errorf("lock: confirm %s on replicas: %w", key, err)
	case ours.Val() != int64(1):
		return fmt.Errorf("lock: %s: %w", key, ErrLeaseLost)
	case n < o.WaitReplicas:
		return fmt.Errorf("%w: lease %s: %d of %d replicas confirmed within %v", ErrNotDurable, key, n, o.WaitReplicas, o.WaitTimeout)
	}
	return nil
}

// Acquire waits until it holds the lease on key or ctx is done. Waiting
// workers learn of a release at once (pub/sub) and of an expiry when the
// lease's TTL runs out (they poll at most every PollInterval). Transient
// Redis errors are retried while ctx lasts.
func Acquire(ctx context.Context, client redis.UniversalClient, key string, opts Options) (*Lease, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	// Subscribe, and wait until Redis confirms it, before the first attempt,
	// so that no release goes unnoticed. If pub/sub is unavailable the wait
	// still ends: by the lease's TTL or PollInterval.
	sub := client.Subscribe(ctx, Channel(key))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("lock: waiting for %s: %w", key, ctx.Err())
	}
	released := sub.Channel()
	var lastErr error
	seenHeld := false
	for {
		l, err := try(ctx, client, key, o)
		if err == nil {
			return l, nil
		}
		if permanent(err) {
			return nil, err // explained by try
		}
		wait := o.PollInterval
		if errors.Is(err, ErrHeld) {
			seenHeld = true
			if ttl, terr := client.PTTL(ctx, key).Result(); terr == nil && ttl > 0 && ttl < wait {
				wait = ttl + time.Millisecond
			} else if terr == nil && ttl <= 0 && ttl != -1 {
				wait = time.Millisecond // gone already
			}
		} else {
			if ctx.Err() == nil { // not the deadline striking during the attempt
				lastErr = err
			}
			redisutil.ReloadOnFailover(client, err)
			if o.Logger != nil {
				o.Logger.Warn("lock: acquiring failed, retrying", "key", key, "err", err, "retry_in", wait)
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			if lastErr != nil {
				return nil, fmt.Errorf("lock: waiting for %s: %w (last error: %v)", key, ctx.Err(), lastErr)
			}
			if !seenHeld { // the deadline struck during the first attempt
				return nil, fmt.Errorf("lock: waiting for %s: %w", key, ctx.Err())
			}
			return nil, fmt.Errorf("lock: waiting for %s: %w: %w", key, ErrHeld, ctx.Err())
		case <-released:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// permanent reports an error that retrying cannot cure: an ACL denial, a
// failed authentication, or a lease key holding another type of value.
func permanent(err error) bool {
	for _, prefix := range []string{"NOPERM", "NOAUTH", "WRONGPASS", "WRONGTYPE"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return aclDeniedInScript(err)
}

// aclDeniedInScript reports Redis's error for a command an ACL denies inside
// a Lua script, which does not name the command.
func aclDeniedInScript(err error) bool {
	return err != nil && strings.Contains(err.Error(), "can't run this command")
}

//go:embed lua/acl_probe.lua
var aclProbeSrc string

var aclProbeScript = redis.NewScript(aclProbeSrc)

// explain adds what to do to a permanent error of acquiring (see permanent);
// for an ACL denial inside the lease's scripts it finds out which commands
// are denied. Other errors are returned as they are.
func explain(ctx context.Context, client redis.UniversalClient, key string, err error) error {
	if !permanent(err) {
		return err
	}
	if aclDeniedInScript(err) {
		if denied, perr := aclProbeScript.Run(ctx, client, []string{key + ":aclprobe"}).StringSlice(); perr == nil && len(denied) > 0 {
			return fmt.Errorf("%w: the Redis user may not run %s, which the lease runs inside Lua scripts: grant it in the user's ACL; retrying cannot help",
				err, strings.ToUpper(strings.Join(denied, ", ")))
		}
	}
	return fmt.Errorf("%w: a permanent error: fix the Redis user's ACL or credentials, or the key; retrying cannot help", err)
}

// Key returns the lease's Redis key.
func (l *Lease) Key() string { return l.key }

// Token returns the lease's token: fenced writes carry it.
func (l *Lease) Token() string { return l.lock.Token() }

// Owner returns the metadata this lease was acquired with.
func (l *Lease) Owner() Owner { return l.owner }

// Lost is closed the moment this owner can no longer be sure it holds the
// lease: its deadline passed without a renewal, or a renewal found the lease
// gone or taken. It is not closed by Release.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Context is canceled when the lease is lost or released; run the work that
// needs ownership under it.
func (l *Lease) Context() context.Context { return l.ctx }

// Deadline returns the time (monotonic) after which this owner stops trusting
// the lease unless a renewal succeeds first.
func (l *Lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// Valid returns nil while this owner may write: not lost, not released, and
// its deadline not passed. Otherwise ErrLeaseLost or ErrReleased.
func (l *Lease) Valid() error {
	l.mu.Lock()
	err, deadline := l.err, l.deadline
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if !time.Now().Before(deadline) {
		l.end(ErrLeaseLost)
		return ErrLeaseLost
	}
	return nil
}

// end records the lease's end once; a loss also closes Lost.
func (l *Lease) end(err error) {
	l.mu.Lock()
	first := l.err == nil
	if first {
		l.err = err
	}
	l.mu.Unlock()
	if first {
		if l.managed != nil {
			l.managed.forget(l) // before Lost fires: whoever sees Lost sees the manager without it
		}
		if errors.Is(err, ErrLeaseLost) {
			close(l.lost)
		}
		l.cancel()
		l.stopOnce.Do(func() { close(l.stop) })
	}
}

// watch enforces the owner's deadline on its own timer, independent of any
// Redis call in flight: a renewal or a write blocked in a socket read (go-redis
// applies a context deadline to reads only with ContextTimeoutEnabled) cannot
// delay Lost. It sleeps until the current deadline, and ends the lease if no
// renewal moved the deadline meanwhile.
func (l *Lease) watch() {
	for {
		t := time.NewTimer(time.Until(l.Deadline()))
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if !time.Now().Before(l.Deadline()) {
			l.end(ErrLeaseLost)
			return
		}
	}
}

// renew refreshes the lease every RenewEvery until the lease ends. A renewal
// may block (a partition) past the deadline; watch ends the lease on time
// regardless, and a late success no longer revives it.
func (l *Lease) renew() {
	defer close(l.done)
	tick := time.NewTicker(l.opts.RenewEvery)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		deadline := l.Deadline()
		if !time.Now().Before(deadline) {
			l.end(ErrLeaseLost)
			return
		}
		sent := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := l.lock.Refresh(ctx, l.opts.TTL, nil)
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			if l.err == nil {
				l.deadline = sent.Add(l.opts.TTL - l.opts.SafetyMargin)
			}
			l.mu.Unlock()
		case errors.Is(err, redislock.ErrNotObtained):
			l.end(ErrLeaseLost) // taken over, expired or force-released
			return
		default:
			// Transient: try again at the next tick (after refreshing a
			// cluster's slot map if a failover is under way); the deadline
			// timer ends the lease if no renewal succeeds in time.
			redisutil.ReloadOnFailover(l.client, err)
			if l.opts.Logger != nil {
				l.opts.Logger.Warn("lock: renewal failed", "key", l.key, "err", err, "deadline_in", time.Until(deadline))
			}
		}
	}
}

// Release gives the lease up and announces it to waiting workers. Releasing
// a lease that was lost returns ErrLeaseLost (there was nothing to give up);
// releasing twice returns ErrReleased.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	prev := l.err
	l.mu.Unlock()
	l.end(ErrReleased)
	<-l.done
	if prev != nil {
		return prev
	}
	if err := l.lock.Release(ctx); err != nil {
		if errors.Is(err, redislock.ErrLockNotHeld) {
			return ErrLeaseLost
		}
		return fmt.Errorf("lock: release %s: %w", l.key, err)
	}
	return announce(ctx, l.client, l.key)
}

// Info is what Inspect reports about a lease.
type Info struct {
	Held  bool
	Owner Owner
	TTL   time.Duration // remaining time in Redis

	value string // the lease's stored value, which ForceRelease compares
}

// Inspect reads who holds the lease on key, for operators and tools. A lease
// whose metadata cannot be read is reported as held, with an error; only
// Clear removes it.
func Inspect(ctx context.Context, client redis.UniversalClient, key string) (Info, error) {
	pipe := client.Pipeline()
	get := pipe.Get(ctx, key)
	pttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Info{}, fmt.Errorf("lock: inspect %s: %w", key, err)
	}
	v, err := get.Result()
	if errors.Is(err, redis.Nil) {
		return Info{}, nil
	}
	info := Info{Held: true, TTL: max(pttl.Val(), 0), value: v}
	if _, meta, ok := strings.Cut(v, sep); ok {
		if err := json.Unmarshal([]byte(meta), &info.Owner); err != nil {
			return info, fmt.Errorf("lock: %s holds unreadable metadata (not a lease this package wrote; lock.Clear removes it): %w", key, err)
		}
	}
	return info, nil
}

// ParseOwner reads the owner from a lease key's value (for tools that read
// many leases in one pipeline); ok is false for a value this package did
// not write.
func ParseOwner(value string) (Owner, bool) {
	var o Owner
	_, meta, ok := strings.Cut(value, sep)
	if !ok || json.Unmarshal([]byte(meta), &o) != nil {
		return Owner{}, false
	}
	return o, true
}

//go:embed lua/release_if.lua
var releaseIfSrc string

var releaseIfScript = redis.NewScript(releaseIfSrc)

// ForceRelease deletes the lease on key if it is still the one info (from
// Inspect) describes, and wakes waiting workers. It returns false, deleting
// nothing, when the lease has ended or changed hands since: an operator who
// was shown owner A never removes owner B's lease. The deposed owner's fenced
// writes are refused from then on and it sees Lost at its next renewal. For
// operators: use it only when the owner is known to be gone, or to stop a
// stuck one.
func ForceRelease(ctx context.Context, client redis.UniversalClient, key string, info Info) (bool, error) {
	if !info.Held {
		return false, nil
	}
	n, err := releaseIfScript.Run(ctx, client, []string{key}, info.value).Int()
	if err != nil {
		return false, fmt.Errorf("lock: force-release %s: %w", key, err)
	}
	if n == 0 {
		return false, nil
	}
	return true, announce(ctx, client, key)
}

// Clear deletes whatever the lease key holds, even a value this package did
// not write (junk), and wakes waiting workers. Prefer ForceRelease, which
// never removes a lease that changed hands.
func Clear(ctx context.Context, client redis.UniversalClient, key string) (bool, error) {
	n, err := client.Del(ctx, key).Result()
	if err != nil {
		return false, fmt.Errorf("lock: clear %s: %w", key, err)
	}
	return n == 1, announce(ctx, client, key)
}

func announce(ctx context.Context, client redis.UniversalClient, key string) error {
	if err := client.Publish(ctx, Channel(key), "released").Err(); err != nil {
		return fmt.Errorf("lock: released %s but could not notify waiters (they will poll): %w", key, err)
	}
	return nil
}

// Abandon stops renewing without releasing, as a crashed process would: the
// lease stays in Redis until its TTL runs out, and this owner's Valid fails
// from now on. Tests use it to simulate a crash; a process may use it when it
// cannot reach Redis to release and is about to exit anyway.
func (l *Lease) Abandon() {
	l.end(ErrLeaseLost)
	<-l.done
}
