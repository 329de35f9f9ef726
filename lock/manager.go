package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
)

// Manager holds many leases at a cost that does not grow with their number
// in goroutines: one goroutine renews every lease it holds (one pipeline of
// refreshes per shard per RenewEvery, each followed by one WAIT on the same
// connection), one enforces every owner's deadline on its own timer, and one
// listens on a single pub/sub connection for revocations. A worker that owns
// hundreds of sessions uses one Manager; TryAcquire and Acquire run a
// manager of one lease each.
//
// A renewal that finds the lease gone (expired, taken over, revoked) ends it
// at once; a renewal that cannot reach the primary, is refused by a replica,
// or that the replicas do not confirm in time leaves the deadline where it
// was, and the deadline timer ends the lease on time, whatever is blocked.
type Manager struct {
	client redis.UniversalClient
	opts   Options
	solo   bool // renews one lease and stops when it ends

	mu       sync.Mutex
	leases   map[*Lease]struct{}
	byKey    map[string]*Lease
	closed   bool
	replicas map[string]int // per primary address: online replicas last seen (automatic WaitReplicas)
	subDrop  []string       // channels to unsubscribe from
	sub      *redis.PubSub  // the revocation channels of the leases held
	msgs     chan (<-chan *redis.Message)
	msgsOnce sync.Once

	wake     chan struct{} // a lease was added: recompute the earliest deadline
	subWake  chan struct{} // subDrop changed
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	exited   chan struct{} // closed when every goroutine returned
}

// NewManager starts a manager for leases with opts (the same options as
// TryAcquire: TTL, RenewEvery, SafetyMargin, WorkerID, Logger, WaitReplicas,
// WaitTimeout). Close stops it.
func NewManager(client redis.UniversalClient, opts Options) (*Manager, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return newManager(client, o, false), nil
}

func newManager(client redis.UniversalClient, o Options, solo bool) *Manager {
	m := &Manager{client: client, opts: o, solo: solo, leases: map[*Lease]struct{}{}, byKey: map[string]*Lease{},
		replicas: map[string]int{}, wake: make(chan struct{}, 1), subWake: make(chan struct{}, 1),
		stop: make(chan struct{}), exited: make(chan struct{}), msgs: make(chan (<-chan *redis.Message), 1)}
	m.sub = client.Subscribe(context.Background()) // connects on the first lease
	m.wg.Add(3)
	go m.renewLoop()
	go m.watchLoop()
	go m.subLoop()
	go func() {
		m.wg.Wait()
		close(m.exited)
	}()
	return m
}

var errClosed = errors.New("lock: the manager is closed")

// TryAcquire takes the lease on key if nobody holds it (ErrHeld otherwise)
// and keeps it renewed until it is released or lost.
func (m *Manager) TryAcquire(ctx context.Context, key string) (*Lease, error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	l, err := m.obtain(ctx, key)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed || (m.solo && len(m.leases) > 0) {
		m.mu.Unlock()
		l.end(ErrReleased)
		_ = releaseScript.Run(context.WithoutCancel(ctx), m.client, []string{key}, l.value).Err()
		return nil, errClosed
	}
	m.leases[l] = struct{}{}
	m.byKey[key] = l
	m.mu.Unlock()
	// Listen for a revocation from now on. A lease of its own waits for
	// Redis to confirm the subscription (one round trip, so a revocation
	// right after the acquisition is heard); a Manager of many does not
	// wait. A revocation missed either way is found at the next renewal
	// (refresh.lua answers -1), and a failed SUBSCRIBE is sent again by
	// go-redis when it reconnects.
	_ = m.sub.Subscribe(ctx, Channel(key))
	if m.solo {
		wctx, cancel := context.WithTimeout(ctx, m.opts.RenewEvery)
		_, _ = m.sub.Receive(wctx)
		cancel()
	}
	m.startListening()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return l, nil
}

// obtain takes the lease on key (obtain.lua) and, when replicas must
// confirm it, waits for them (refresh.lua + WAIT on the same connection).
// The owner's deadline counts from the moment the attempt was sent.
func (m *Manager) obtain(ctx context.Context, key string) (*Lease, error) {
	o := m.opts
	host, _ := os.Hostname()
	owner := Owner{Host: host, PID: os.Getpid(), WorkerID: o.WorkerID, Since: time.Now().UTC().Truncate(time.Millisecond)}
	meta, err := json.Marshal(owner)
	if err != nil {
		return nil, err
	}
	token := newToken()
	value := token + sep + string(meta)
	target, addr, err := redisutil.Primary(ctx, m.client, key)
	if err != nil {
		return nil, explain(ctx, m.client, key, fmt.Errorf("lock: acquire %s: %w", key, err))
	}
	ttl := o.TTL.Milliseconds()
	var (
		sent time.Time
		got  *redis.Cmd
		info *redis.StringCmd
		perr error
	)
	for range 2 { // again in the plain form if the server cannot compile the shebang
		pipe := target.Pipeline()
		got = obtainScript.For(m.client).Eval(ctx, pipe, []string{key}, value, ttl)
		if o.WaitReplicas == 0 {
			info = pipe.Info(ctx, "replication")
		}
		sent = time.Now()
		_, perr = pipe.Exec(ctx)
		if !redisutil.Rejected(m.client, got.Err()) {
			break
		}
	}
	n, err := got.Int()
	if got.Err() == nil && got.Val() == nil && perr != nil {
		err = perr // the pipeline failed before any reply (a connection error, AUTH)
	}
	if err != nil {
		return nil, explain(ctx, m.client, key, fmt.Errorf("lock: acquire %s: %w", key, err))
	}
	if n != 1 {
		return nil, ErrHeld
	}
	need := m.need(addr, info)
	if need > 0 {
		var ours *redis.Cmd
		confirmed, err := redisutil.Do(ctx, m.client, key, need, o.WaitTimeout, func(p redis.Pipeliner) {
			ours = refreshScript.For(m.client).Eval(ctx, p, []string{key}, value, ttl)
		})
		switch {
		case err != nil:
			err = fmt.Errorf("lock: confirm %s on replicas: %w", key, err)
		case ours.Val() != int64(1):
			err = fmt.Errorf("lock: %s: %w: it was gone right after it was taken", key, ErrLeaseLost)
		case confirmed < need:
			err = fmt.Errorf("%w: lease %s: %d of %d replicas confirmed within %v", ErrNotDurable, key, confirmed, need, o.WaitTimeout)
		}
		if err != nil {
			_ = releaseScript.Run(context.WithoutCancel(ctx), m.client, []string{key}, value).Err()
			return nil, err
		}
	}
	l := &Lease{
		key: key, client: m.client, value: value, token: token, opts: o, owner: owner, m: m, sent: sent,
		deadline: sent.Add(o.TTL - o.SafetyMargin),
		lost:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if m.solo {
		l.done = m.exited
	} else {
		close(l.done) // no renewal goroutine of its own to wait for
	}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	if o.Logger != nil && o.Logger.Enabled(ctx, slog.LevelDebug) {
		o.Logger.Debug("lock: acquired", "key", key, "worker", o.WorkerID, "token", token[:8], "replicas", need)
	}
	return l, nil
}

// need returns how many replicas must confirm a write on the primary at
// addr: Options.WaitReplicas if set, else (automatic) one if the primary's
// INFO replication (info, when read) or the last one seen reports an online
// replica, or if any primary reached through this client ever did
// (redisutil.Replicated): a topology with replicas never trusts a primary's
// lone word, which a failover promoting a replica over it would discard.
func (m *Manager) need(addr string, info *redis.StringCmd) int {
	switch {
	case m.opts.WaitReplicas > 0:
		return m.opts.WaitReplicas
	case m.opts.WaitReplicas == NoReplicas:
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if info != nil {
		if text, err := info.Result(); err == nil {
			m.replicas[addr] = onlineReplicas(text)
			redisutil.NoteReplicas(m.client, m.replicas[addr])
		} else if m.opts.Logger != nil && redis.HasErrorPrefix(err, "NOPERM") {
			m.opts.Logger.Warn("lock: cannot read INFO replication; renewals are confirmed by replicas only when it can be read", "err", err)
		}
	}
	if redisutil.Replicated(m.client) {
		return 1
	}
	return min(m.replicas[addr], 1)
}

// onlineReplicas counts the "slaveN:...state=online..." lines of INFO
// replication.
func onlineReplicas(info string) int {
	n := 0
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "state=online") {
			n++
		}
	}
	return n
}

// Len returns how many leases the manager holds.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// forget drops an ended lease (called by Lease.end); a manager of one lease
// stops.
func (m *Manager) forget(l *Lease) {
	m.mu.Lock()
	if _, ok := m.leases[l]; ok {
		delete(m.leases, l)
		delete(m.byKey, l.key)
		m.subDrop = append(m.subDrop, Channel(l.key))
	}
	stop := m.solo
	m.mu.Unlock()
	if stop {
		m.shutdown()
		return
	}
	select {
	case m.subWake <- struct{}{}:
	default:
	}
}

// shutdown stops the goroutines (without releasing anything).
func (m *Manager) shutdown() {
	m.stopOnce.Do(func() { close(m.stop) })
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
	m.shutdown()
	<-m.exited
	return errors.Join(errs...)
}

// renewLoop renews every held lease each RenewEvery: one pipeline per
// primary, shards in parallel.
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
		ctx, cancel := context.WithDeadline(context.Background(), earliest)
		groups := map[string][]*Lease{}
		targets := map[string]redisutil.Pipeliner{}
		for _, l := range leases {
			target, addr, err := redisutil.Primary(ctx, m.client, l.key)
			if err != nil {
				m.renewFailed(l, err)
				continue
			}
			groups[addr] = append(groups[addr], l)
			targets[addr] = target
		}
		var wg sync.WaitGroup
		for addr, g := range groups {
			wg.Go(func() { m.renewOn(ctx, targets[addr], addr, g) })
		}
		wg.Wait()
		cancel()
	}
}

// renewOn renews leases whose keys live on one primary: refresh.lua per
// lease, INFO replication when the replica count is automatic, and WAIT when
// replicas must confirm, in one pipeline on one connection. A server without
// the script (restarted, promoted) gets the pipeline again with EVAL.
func (m *Manager) renewOn(ctx context.Context, target redisutil.Pipeliner, addr string, leases []*Lease) {
	need := m.need(addr, nil)
	var (
		cmds []*redis.Cmd
		info *redis.StringCmd
		wait *redis.Cmd
		sent time.Time
	)
	eval := false
	for range 3 { // EVALSHA; EVAL after NOSCRIPT; the plain form if the shebang does not compile
		script := refreshScript.For(m.client)
		pipe := target.Pipeline()
		cmds = make([]*redis.Cmd, len(leases))
		for i, l := range leases {
			args := []any{l.value, m.opts.TTL.Milliseconds()}
			if eval {
				cmds[i] = script.Eval(ctx, pipe, []string{l.key}, args...)
			} else {
				cmds[i] = script.EvalSha(ctx, pipe, []string{l.key}, args...)
			}
		}
		if m.opts.WaitReplicas == 0 {
			info = pipe.Info(ctx, "replication")
		}
		if need > 0 {
			wait = pipe.Do(ctx, "WAIT", need, m.opts.WaitTimeout.Milliseconds())
		}
		sent = time.Now()
		_, _ = pipe.Exec(ctx)
		again := false
		for _, c := range cmds {
			if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") || redisutil.Rejected(m.client, c.Err()) {
				again = true
			}
		}
		if !again {
			break
		}
		eval = true
	}
	if m.opts.WaitReplicas == 0 {
		m.need(addr, info)
	}
	confirmed := need == 0
	if wait != nil {
		n, err := wait.Int()
		confirmed = err == nil && n >= need
	}
	for i, l := range leases {
		n, err := cmds[i].Int()
		switch {
		case err == nil && n == 1:
			l.renewed(sent, confirmed)
			if confirmed && m.opts.Logger != nil && m.opts.Logger.Enabled(context.Background(), slog.LevelDebug) {
				m.opts.Logger.Debug("lock: renewed", "key", l.key, "worker", m.opts.WorkerID, "token", l.token[:8], "replicas", need,
					"deadline_in", time.Until(l.Deadline()))
			}
			if !confirmed && m.opts.Logger != nil {
				m.opts.Logger.Warn("lock: renewal not confirmed by replicas; the deadline stays", "key", l.key, "replicas", need,
					"wait_err", wait.Err(), "deadline_in", time.Until(l.Deadline()))
			}
		case err == nil && n == -1:
			m.revoked(l.key) // the revocation message was missed
		case err == nil:
			l.end(fmt.Errorf("%w: the lease was gone or taken over at renewal", ErrLeaseLost))
		default:
			m.renewFailed(l, err)
		}
	}
}

// renewFailed records a renewal that did not reach the primary or was
// refused (a replica answers READONLY): transient, the deadline decides.
func (m *Manager) renewFailed(l *Lease, err error) {
	l.failed(err)
	redisutil.ReloadOnFailover(m.client, err)
	if m.opts.Logger != nil {
		m.opts.Logger.Warn("lock: renewal failed", "key", l.key, "err", err, "deadline_in", time.Until(l.Deadline()))
	}
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
				l.expire()
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

// subLoop listens on one pub/sub connection to the channels of the leases
// held, for revocations: the owner ends the lease (Lost) first, then deletes
// the revoked key and announces the release, so a waiting worker takes over
// at once and never while this owner still trusts the lease. Subscribing is
// a shortcut, not what safety rests on: an owner that misses the message is
// refused at its next renewal or write, and the revoked key expires no
// earlier than its deadline.
func (m *Manager) subLoop() {
	defer m.wg.Done()
	defer m.sub.Close()
	var msgs <-chan *redis.Message
	for {
		select {
		case <-m.stop:
			return
		case msgs = <-m.msgs:
		case <-m.subWake:
			m.mu.Lock()
			var drop []string
			for _, ch := range m.subDrop {
				if _, held := m.byKey[strings.TrimSuffix(ch, ":released")]; !held { // not taken again since
					drop = append(drop, ch)
				}
			}
			m.subDrop = nil
			m.mu.Unlock()
			if len(drop) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), m.opts.TTL)
				_ = m.sub.Unsubscribe(ctx, drop...)
				cancel()
			}
		case msg, ok := <-msgs:
			if !ok {
				return
			}
			if msg.Payload == revokedMsg {
				m.revoked(strings.TrimSuffix(msg.Channel, ":released"))
			}
		}
	}
}

// startListening hands the subscription's message channel to subLoop once
// the first channel was subscribed (go-redis then has a connection to read).
func (m *Manager) startListening() {
	m.msgsOnce.Do(func() { m.msgs <- m.sub.Channel() })
}

// revoked ends the lease on key, if held, as revoked and acknowledges.
func (m *Manager) revoked(key string) {
	m.mu.Lock()
	l := m.byKey[key]
	m.mu.Unlock()
	if l == nil {
		return
	}
	l.end(fmt.Errorf("%w: %w", ErrLeaseLost, ErrRevoked))
	m.acknowledge(l)
}

// acknowledge deletes l's key if it holds l's value revoked (the owner has
// stopped trusting it) and wakes the waiting workers.
func (m *Manager) acknowledge(l *Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.TTL)
	defer cancel()
	if n, err := releaseScript.Run(ctx, m.client, []string{l.key}, revokedPrefix+l.value).Int(); err == nil && n == 1 {
		_ = announce(ctx, m.client, l.key, "released")
	}
}

// String describes the manager for logs.
func (m *Manager) String() string {
	return fmt.Sprintf("lock.Manager(%d leases, TTL %v)", m.Len(), m.opts.TTL)
}
