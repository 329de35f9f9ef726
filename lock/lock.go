// Package lock gives one worker at a time exclusive ownership of a Telegram
// session: a lease in Redis, renewed in the background, with owner metadata
// anyone can read, an operator revocation the owner hears, a "lost" signal,
// and prompt handover to waiting workers.
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
//	deadline = (send time of the last confirmed renewal) + TTL - SafetyMargin
//
// measured on Go's monotonic clock, and enforced by a timer of its own, so a
// renewal blocked in a socket read cannot delay it. When the deadline passes
// without a confirmed renewal, or Redis answers that the lease is gone,
// taken or revoked (a renewal, or a fenced write: Lose), Lost() fires and
// Valid() starts failing: the owner considers itself deposed BEFORE Redis can
// let anyone else acquire. SafetyMargin (default TTL/10) absorbs clock-rate
// differences between hosts and the time between checking Valid and the
// write reaching Redis.
//
// # Failover: confirmed renewals
//
// Redis replicates asynchronously: a promoted replica holds the lease as the
// last write that reached it left it. A renewal counts ("confirmed") only
// when Redis's WAIT, sent on the same connection right behind it, reports
// that enough replicas hold it (per shard on a Cluster, one WAIT per
// pipeline): then the replica that is promoted holds an expiry no earlier
// than the owner's deadline. A renewal the replicas did not confirm within
// WaitTimeout leaves the deadline where it was. How many replicas must
// confirm is Options.WaitReplicas; by default (0) one, whenever the key's
// primary reports an online replica (INFO replication, read with every
// renewal round) or any primary reached through the same client ever did,
// and none on a server that never showed a replica. The memory matters: a
// primary that reports no replica in a topology that has them is either one
// whose replica is down or one about to be demoted. Measured on Sentinel: a
// new primary, busy with a full sync, missed its pings; the Sentinels
// promoted the replica that was still syncing, and the lease a worker took
// on the old primary in the meantime (trusted, as the primary reported no
// replica) vanished with the demotion, 370 ms before that worker learned
// it. The cost: an owner whose replicas lag (or are all down) longer than
// TTL - SafetyMargin gives its sessions up rather than risk a second owner
// after a failover; with one replica per primary that includes the time
// after a failover until the old primary is back as a replica, so run two.
//
// Every lease script carries Redis 7's "#!lua" shebang, so a read-only
// replica refuses it (READONLY, retried) instead of answering from stale or
// empty data: a renewal that reaches a replica is never taken for "gone".
//
// The deadline alone cannot stop a write that was already on its way when the
// process froze. So every write the session store makes is fenced: its Lua
// script checks, atomically with the write, that the lease key still holds
// this owner's token, and refuses otherwise (LEASELOST). The store then ends
// the lease at once (Lose) before returning ErrLeaseLost. A deposed owner
// that wakes up can therefore never write, whatever its clock says.
//
// # Handover and revocation
//
// Release deletes the lease and publishes on a channel next to it; waiting
// workers (Acquire) subscribe to that channel and try again at once, so a
// graceful handover takes a round trip or two. When an owner dies without
// releasing, waiters sleep until the lease's remaining TTL runs out (capped
// at PollInterval) and take over right after Redis expires it.
//
// An operator's Revoke (ForceRelease, tgsession unlock) does not delete the
// lease: it marks it revoked, keeping its TTL, and tells the owner on the
// same channel. The owner ends its lease (Lost) and then deletes the revoked
// key, which wakes the waiters; an owner that never hears of it is refused at
// its next renewal or write, and the key expires no earlier than the owner's
// own deadline. Either way no waiter can acquire while the old owner still
// trusts its lease (Chubby's lock delay).
package lock

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
)

// Errors. Test with errors.Is.
var (
	// ErrLeaseLost reports that this worker no longer owns the session (its
	// lease expired, was taken over or revoked). Stop using the session;
	// open it again to wait for ownership. The lease's Context carries the
	// reason (context.Cause).
	ErrLeaseLost = errors.New("lock: lease lost: another worker may own the session now; stop using it and open it again")
	// ErrHeld reports that another worker owns the lease.
	ErrHeld = errors.New("lock: session is owned by another worker")
	// ErrReleased reports a call on a lease that was released.
	ErrReleased = errors.New("lock: lease was released")
	// ErrNotDurable reports a lease, or its renewals, that fewer replicas
	// than required confirmed in time: an acquisition is released again and
	// fails; a lease whose renewals go unconfirmed until its deadline is lost
	// with a cause wrapping both ErrLeaseLost and ErrNotDurable. Check the
	// replicas (lag, links), or retry.
	ErrNotDurable = errors.New("lock: lease not confirmed by enough replicas")
	// ErrRevoked is wrapped, with ErrLeaseLost, in the cause of a lease an
	// operator revoked (Revoke, tgsession unlock).
	ErrRevoked = errors.New("lock: lease revoked by an operator")
)

// Defaults for Options.
const (
	DefaultTTL          = 15 * time.Second
	DefaultPollInterval = time.Second
)

// NoReplicas as Options.WaitReplicas never waits for replicas: renewals are
// trusted on the primary's reply alone (a failover can then lose a renewal
// and let a second owner in while the first still trusts its lease).
const NoReplicas = -1

// Options configure a lease. The zero value uses the defaults.
type Options struct {
	TTL          time.Duration // lease time-to-live in Redis (default 15 s)
	RenewEvery   time.Duration // renewal period (default TTL/3)
	SafetyMargin time.Duration // owner deadline = last confirmed renewal sent + TTL - SafetyMargin (default TTL/10)
	PollInterval time.Duration // longest wait between attempts while waiting (default 1 s)
	WorkerID     string        // recorded in the metadata (default "<host>-<pid>")

	// Logger, if set, receives the transient errors Acquire retries, failed
	// and unconfirmed renewals (at level Warn); permanent errors are
	// returned, not logged. nil logs nothing.
	Logger *slog.Logger

	// WaitReplicas is how many replicas must confirm (Redis WAIT, up to
	// WaitTimeout) an acquisition and every renewal before the owner trusts
	// it. 0 (the default) means one whenever the lease key's primary reports
	// an online replica or a primary reached through the same client ever
	// did, and none otherwise; NoReplicas never waits. An
	// acquisition not confirmed in time is released and fails with an error
	// wrapping ErrNotDurable (Acquire keeps trying while its context lasts);
	// a renewal not confirmed in time leaves the owner's deadline where it
	// was.
	WaitReplicas int
	// WaitTimeout bounds each WAIT (default min(1 s, TTL/5)).
	WaitTimeout time.Duration
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
	if o.WaitTimeout == 0 {
		o.WaitTimeout = min(time.Second, o.TTL/5)
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
	case o.WaitReplicas < NoReplicas || o.WaitTimeout < 0:
		return o, fmt.Errorf("lock: WaitReplicas %d must be NoReplicas (-1), 0 (automatic) or a count, and WaitTimeout %v not negative", o.WaitReplicas, o.WaitTimeout)
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

// The stored value is a random token, '|', then the owner as JSON. The token
// is URL-safe base64, so it never contains '|', and fenced scripts compare
// token..'|' exactly (no prefix ambiguity). A revoked lease holds
// revokedPrefix + that value.
const (
	sep           = "|"
	revokedPrefix = "revoked:"
	revokedMsg    = "revoked"
)

// Channel returns the pub/sub channel on which releases of key are announced
// (and revocations, to the owner).
func Channel(key string) string { return key + ":released" }

// Lease is an acquired lease. Its methods are safe for concurrent use.
type Lease struct {
	key    string
	client redis.UniversalClient
	value  string // "<token>|<owner JSON>"
	token  string
	opts   Options
	owner  Owner
	sent   time.Time // monotonic: when the acquisition was sent (Acquired)
	m      *Manager  // renews it (a manager of its own for TryAcquire/Acquire)

	mu          sync.Mutex
	deadline    time.Time // monotonic: when this owner stops trusting the lease
	err         error     // set once: wraps ErrLeaseLost, or ErrReleased
	unconfirmed int       // renewals applied but not confirmed since the last confirmed one
	lastErr     error     // the last failed renewal's error

	lost   chan struct{}
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when nothing renews the lease any more
}

// TryAcquire takes the lease on key if nobody holds it, or returns ErrHeld.
// The lease is renewed by a manager of its own (two goroutines and a pub/sub
// connection) until it is released or lost.
func TryAcquire(ctx context.Context, client redis.UniversalClient, key string, opts Options) (*Lease, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return try(ctx, client, key, o)
}

func try(ctx context.Context, client redis.UniversalClient, key string, o Options) (*Lease, error) {
	m := newManager(client, o, true)
	l, err := m.TryAcquire(ctx, key)
	if err != nil {
		m.shutdown()
		return nil, err
	}
	return l, nil
}

// newToken returns 128 random bits, URL-safe base64 (no '|').
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
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
func (l *Lease) Token() string { return l.token }

// Acquired returns when (monotonic) the acquisition was sent: ownership
// began no earlier. Histories of ownership start here.
func (l *Lease) Acquired() time.Time { return l.sent }

// Owner returns the metadata this lease was acquired with.
func (l *Lease) Owner() Owner { return l.owner }

// Lost is closed the moment this owner can no longer be sure it holds the
// lease: its deadline passed without a confirmed renewal, or Redis answered
// that the lease is gone, taken or revoked. It is not closed by Release.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Context is canceled when the lease is lost or released; run the work that
// needs ownership under it. context.Cause tells why (an error wrapping
// ErrLeaseLost, or ErrReleased).
func (l *Lease) Context() context.Context { return l.ctx }

// Deadline returns the time (monotonic) after which this owner stops trusting
// the lease unless a confirmed renewal moves it first.
func (l *Lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// Valid returns nil while this owner may write: not lost, not released, and
// its deadline not passed. Otherwise an error wrapping ErrLeaseLost, or
// ErrReleased.
func (l *Lease) Valid() error {
	l.mu.Lock()
	err, deadline := l.err, l.deadline
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if !time.Now().Before(deadline) {
		l.expire()
		return l.Valid()
	}
	return nil
}

// Lose ends the lease at once as lost, for reason: Lost has fired and
// Context is cancelled when it returns. The session store calls it when
// Redis refuses a write fenced with this lease's token (LEASELOST): the lease
// is gone there, whatever the deadline says. It does nothing to a lease that
// has ended already.
func (l *Lease) Lose(reason error) {
	if reason == nil || !errors.Is(reason, ErrLeaseLost) {
		reason = fmt.Errorf("%w: %v", ErrLeaseLost, reason)
	}
	if l.end(reason) {
		// Refused because an operator revoked it? Then acknowledge, so a
		// waiting worker need not sit out the lock delay.
		go l.m.acknowledge(l)
	}
}

// expire ends the lease at its deadline, saying why no renewal moved it.
func (l *Lease) expire() {
	l.mu.Lock()
	unconfirmed, lastErr := l.unconfirmed, l.lastErr
	l.mu.Unlock()
	switch {
	case unconfirmed > 0:
		l.end(fmt.Errorf("%w: %w: %d renewal(s) since the last confirmed one were not confirmed by replicas within %v",
			ErrLeaseLost, ErrNotDurable, unconfirmed, l.opts.WaitTimeout))
	case lastErr != nil:
		l.end(fmt.Errorf("%w: no renewal succeeded before the owner's deadline (last error: %v)", ErrLeaseLost, lastErr))
	default:
		l.end(fmt.Errorf("%w: no renewal succeeded before the owner's deadline", ErrLeaseLost))
	}
}

// end records the lease's end once: err wraps ErrLeaseLost (Lost fires) or
// is ErrReleased. It reports whether this call ended it.
func (l *Lease) end(err error) bool {
	l.mu.Lock()
	first := l.err == nil
	if first {
		l.err = err
	}
	l.mu.Unlock()
	if first {
		l.m.forget(l) // before Lost fires: whoever sees Lost sees the manager without it
		if lg := l.opts.Logger; lg != nil && errors.Is(err, ErrLeaseLost) {
			lg.Warn("lock: lease lost", "key", l.key, "worker", l.opts.WorkerID, "token", l.token[:8], "err", err)
		}
		// Cancel first: whoever sees Lost finds Context done with its cause
		// (context.Cause set), never a nil cause in between.
		l.cancel(err)
		if errors.Is(err, ErrLeaseLost) {
			close(l.lost)
		}
	}
	return first
}

// renewed moves the deadline after a renewal sent at sent that Redis applied;
// confirmed says whether enough replicas confirmed it.
func (l *Lease) renewed(sent time.Time, confirmed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if !confirmed {
		l.unconfirmed++
		return
	}
	l.unconfirmed, l.lastErr = 0, nil
	if d := sent.Add(l.opts.TTL - l.opts.SafetyMargin); d.After(l.deadline) {
		l.deadline = d
	}
}

// failed records a renewal that did not reach Redis or was refused (READONLY).
func (l *Lease) failed(err error) {
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
}

// Release gives the lease up and announces it to waiting workers. Releasing
// a lease that was lost returns an error wrapping ErrLeaseLost (there was
// nothing to give up); releasing twice returns ErrReleased.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	prev := l.err
	l.mu.Unlock()
	l.end(ErrReleased)
	<-l.done
	if prev != nil {
		return prev
	}
	n, err := releaseScript.Run(ctx, l.client, []string{l.key}, l.value).Int()
	if err != nil {
		return fmt.Errorf("lock: release %s: %w", l.key, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: the lease had expired or was revoked when it was released", ErrLeaseLost)
	}
	return announce(ctx, l.client, l.key, "released")
}

// Abandon stops renewing without releasing, as a crashed process would: the
// lease stays in Redis until its TTL runs out, and this owner's Valid fails
// from now on. Tests use it to simulate a crash; a process may use it when it
// cannot reach Redis to release and is about to exit anyway.
func (l *Lease) Abandon() {
	l.end(fmt.Errorf("%w: abandoned", ErrLeaseLost))
	<-l.done
}

// Info is what Inspect reports about a lease.
type Info struct {
	Held    bool
	Revoked bool // an operator revoked it; the owner has not acknowledged yet
	Owner   Owner
	TTL     time.Duration // remaining time in Redis

	value string // the lease's stored value, which Revoke compares
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
	info := Info{Held: true, TTL: max(pttl.Val(), 0), value: v, Revoked: strings.HasPrefix(v, revokedPrefix)}
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

var (
	//go:embed lua/obtain.lua
	obtainSrc string
	//go:embed lua/refresh.lua
	refreshSrc string
	//go:embed lua/release.lua
	releaseSrc string
	//go:embed lua/revoke.lua
	revokeSrc string

	obtainScript  = redisutil.NewScript(obtainSrc)
	refreshScript = redisutil.NewScript(refreshSrc)
	releaseScript = redisutil.NewScript(releaseSrc)
	revokeScript  = redisutil.NewScript(revokeSrc)
)

// Revoke is an operator's force-release: if the lease on key is still the
// one info (from Inspect) describes, it is marked revoked and its owner told
// (on Channel(key)). The owner ends its lease (Lost) and then deletes the
// revoked key, which wakes waiting workers; if it never hears, it is refused
// at its next renewal or write, and the key expires by itself. No waiter can
// acquire before either, and delay is the longest that can take (the
// lease's remaining TTL, which is no earlier than the owner's own deadline).
// ok is false, and nothing changes, when the lease has ended or changed hands
// since Inspect: an operator who was shown owner A never revokes owner B's
// lease. Revoking a revoked lease reports its remaining delay.
func Revoke(ctx context.Context, client redis.UniversalClient, key string, info Info) (delay time.Duration, ok bool, err error) {
	if !info.Held {
		return 0, false, nil
	}
	if info.Revoked {
		ttl, err := client.PTTL(ctx, key).Result()
		if err != nil {
			return 0, false, fmt.Errorf("lock: revoke %s: %w", key, err)
		}
		return max(ttl, 0), ttl != -2, nil
	}
	ms, err := revokeScript.Run(ctx, client, []string{key}, info.value).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("lock: revoke %s: %w", key, err)
	}
	if ms < 0 {
		return 0, false, nil
	}
	return time.Duration(ms) * time.Millisecond, true, announce(ctx, client, key, revokedMsg)
}

// ForceRelease is Revoke without the delay: true when the lease info
// describes was revoked. The session passes to a waiting worker once its
// owner acknowledged, or at the latest when the lease's TTL runs out.
func ForceRelease(ctx context.Context, client redis.UniversalClient, key string, info Info) (bool, error) {
	_, ok, err := Revoke(ctx, client, key, info)
	return ok, err
}

// Clear deletes whatever the lease key holds, even a value this package did
// not write (junk), and wakes waiting workers. A live owner is not told and
// keeps trusting its lease until its next renewal: prefer Revoke, which
// waits for the owner and never removes a lease that changed hands.
func Clear(ctx context.Context, client redis.UniversalClient, key string) (bool, error) {
	n, err := client.Del(ctx, key).Result()
	if err != nil {
		return false, fmt.Errorf("lock: clear %s: %w", key, err)
	}
	return n == 1, announce(ctx, client, key, "released")
}

func announce(ctx context.Context, client redis.UniversalClient, key, what string) error {
	if err := client.Publish(ctx, Channel(key), what).Err(); err != nil {
		return fmt.Errorf("lock: %s %s but could not notify (waiters poll; an owner learns at its next renewal): %w", what, key, err)
	}
	return nil
}
