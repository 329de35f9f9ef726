// Package fleet spreads the sessions under a prefix over the live workers
// of a fleet: each worker joins with an id and a capacity, every worker
// computes the same assignment (weighted rendezvous hashing with bounded
// loads, Assign), acquires the sessions assigned to it, hands them back
// gracefully when they are assigned elsewhere, and takes over a dead
// worker's sessions as soon as their leases expire.
//
// A worker's cost does not grow with its sessions in connections or
// renewal goroutines: its leases live in one lock.Manager (one renewal
// goroutine, one deadline timer), and it listens on one pub/sub channel.
// The handler runs once per owned session, in a goroutine of its own.
//
// After a failover the promoted replica may lack the latest heartbeats, and
// every worker was cut off for a while: a worker whose view of the members
// lost data, or that could not read it for two intervals, keeps planning
// with the members it saw before for 2 × MemberTTL (unless they leave or
// come back), instead of taking every session and handing them back.
//
// Keys (all under the store's prefix P, outside any session's hash tag, each
// a single key, so they work on Redis Cluster):
//
//	P:fleet:members   sorted set: "<worker id>|<capacity>" scored by heartbeat expiry (unix ms)
//	P:fleet:events    pub/sub channel: a worker joined, left or released a session (classic
//	                  pub/sub reaches every node of a Cluster)
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// Handler works one owned session. ctx is cancelled when the lease is lost,
// the session is removed, the session moves to another worker, or the
// worker stops; the handler must then return. After it returns the fleet
// closes the store, which releases the lease so the next owner takes over
// at once.
type Handler func(ctx context.Context, st *redisstore.Store) error

// Options configure a worker.
type Options struct {
	// WorkerID names the worker (unique in the fleet; no '|'). Required.
	WorkerID string
	// Capacity is how many sessions the worker takes at most (default 100).
	Capacity int
	// Prefix is the sessions' key prefix (default redisstore.DefaultPrefix).
	Prefix string
	// Lease configures the sessions' leases (TTL: how soon a dead worker's
	// sessions are taken over).
	Lease lock.Options
	// Interval is how often the worker heartbeats, reads the registry and
	// reconciles (default 500 ms); events trigger a reconcile at once.
	Interval time.Duration
	// MemberTTL is how long a worker counts as live after its last
	// heartbeat (default: the lease TTL, and at least 3 × Interval). A worker
	// that cannot heartbeat for that long has lost its leases anyway; a
	// shorter one would make a worker stalled for a moment (a loaded host,
	// a GC) look dead and reshuffle the fleet, a longer one would delay the
	// takeover of a dead worker's sessions past their leases' expiry.
	MemberTTL time.Duration
	// Store adds options to each session's store (Mode, Prefix and the
	// lease are set by the fleet).
	Store redisstore.Options
	// Logger receives handler errors and failed reconciles (nil: none).
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.WorkerID == "" || strings.Contains(o.WorkerID, "|") {
		return o, fmt.Errorf("fleet: WorkerID %q must be set and contain no '|'", o.WorkerID)
	}
	if o.Capacity == 0 {
		o.Capacity = 100
	}
	if o.Capacity < 0 {
		return o, fmt.Errorf("fleet: Capacity %d must not be negative", o.Capacity)
	}
	if o.Prefix == "" {
		o.Prefix = redisstore.DefaultPrefix
	}
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.MemberTTL == 0 {
		ttl := o.Lease.TTL
		if ttl == 0 {
			ttl = lock.DefaultTTL
		}
		o.MemberTTL = max(3*o.Interval, ttl)
	}
	if o.Lease.WorkerID == "" {
		o.Lease.WorkerID = o.WorkerID
	}
	return o, nil
}

func membersKey(prefix string) string { return prefix + ":fleet:members" }

// EventsChannel is the fleet's pub/sub channel under prefix.
func EventsChannel(prefix string) string { return prefix + ":fleet:events" }

// Members returns the live workers under prefix (for tools: tgsession
// workers), sorted by id.
func Members(ctx context.Context, client redis.UniversalClient, prefix string) ([]Member, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	raw, err := client.ZRangeByScoreWithScores(ctx, membersKey(prefix), &redis.ZRangeBy{Min: now, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: read members: %w", err)
	}
	return parseMembers(raw), nil
}

// parseMembers reads "<id>|<capacity>" members, sorted by id; others are
// skipped.
func parseMembers(raw []redis.Z) []Member {
	var out []Member
	for _, z := range raw {
		r, _ := z.Member.(string)
		id, c, ok := strings.Cut(r, "|")
		n, err := strconv.Atoi(c)
		if !ok || err != nil {
			continue
		}
		out = append(out, Member{ID: id, Capacity: n})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// owned is a session this worker holds.
type owned struct {
	st     *redisstore.Store
	lease  *lock.Lease
	cancel context.CancelFunc
	done   chan struct{}
}

// Worker is one member of a fleet. Run it with Run.
type Worker struct {
	client  redis.UniversalClient
	opts    Options
	handler Handler
	leases  *lock.Manager

	mu    sync.Mutex
	owned map[string]*owned
	kick  chan struct{}

	// Membership as this worker last saw it, to notice a view that lost
	// data (a failover to a replica that missed heartbeats): see view.
	seen     map[string]int64     // member -> heartbeat expiry (unix ms) last read
	left     map[string]bool      // members that announced "leave" since the last reconcile
	lastRead time.Time            // the last successful read of the members
	ghosts   map[string]time.Time // members planned with although missing now, until when

	lostNames    map[string]bool    // sessions found lost (warned once each until they come back)
	sealedWith   string             // the keyring's current key id the owned sessions were re-sealed with
	repairedAt   time.Time          // when this worker last registered its sessions again (keepRegistered)
	backoff      map[string]backoff // sessions whose handler failed soon after it started
	lost         atomic.Int64
	reregistered atomic.Int64
}

// backoff holds a session back after its handler failed soon after it
// started: retaken after until, each failure in a row doubling the wait.
type backoff struct {
	failures int
	until    time.Time
}

// maxBackoff bounds how long a failing session is held back.
const maxBackoff = 30 * time.Second

// Stats counts what a worker repaired or could not: the same figures its
// warnings log.
type Stats struct {
	// LostSessions counts sessions this worker was assigned but found without
	// data (storage ErrSessionLost: a FLUSHALL, a restart without
	// persistence, an eviction): each is counted and warned about once, until
	// it is restored.
	LostSessions int64
	// Reregistered counts sessions this worker owned and registered again
	// after the registry lost every name while their data was still there
	// (the registry key deleted or flushed on its own); it kept them.
	// Sessions nobody owned need tgsession registry rebuild.
	Reregistered int64
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	return Stats{LostSessions: w.lost.Load(), Reregistered: w.reregistered.Load()}
}

// New returns a worker; Run starts it.
func New(client redis.UniversalClient, opts Options, handler Handler) (*Worker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if handler == nil {
		return nil, errors.New("fleet: a handler is required")
	}
	return &Worker{client: client, opts: o, handler: handler, owned: map[string]*owned{}, kick: make(chan struct{}, 1),
		left: map[string]bool{}, ghosts: map[string]time.Time{}, lostNames: map[string]bool{}, backoff: map[string]backoff{}}, nil
}

// Owned returns the names of the sessions the worker owns now, sorted: those
// whose lease is valid at this instant. A session whose lease was lost or
// released is not listed, even while its handler is still winding down, so
// no observer sees two owners of a session where the leases do not overlap.
func (w *Worker) Owned() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.owned))
	for n, o := range w.owned {
		if l := o.lease; l != nil && l.Valid() == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (w *Worker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run joins the fleet and works until ctx is done, then hands every session
// back gracefully (handlers stopped, leases released and announced) and
// leaves the fleet.
func (w *Worker) Run(ctx context.Context) error {
	m, err := lock.NewManager(w.client, w.opts.Lease)
	if err != nil {
		return err
	}
	w.leases = m
	sub := w.client.Subscribe(ctx, EventsChannel(w.opts.Prefix))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		_ = m.Close(context.Background())
		return fmt.Errorf("fleet: subscribe: %w", err)
	}
	events := sub.Channel()
	// Heartbeat and announce, then let the membership settle for one
	// interval before taking anything: workers started together then see
	// each other, instead of grabbing everything and handing it back.
	if err := w.heartbeat(ctx); err != nil {
		_ = m.Close(context.Background())
		return err
	}
	w.announce(ctx, "join")
	select {
	case <-ctx.Done():
		return w.leave()
	case <-time.After(w.opts.Interval):
	}
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	for {
		if err := w.reconcile(ctx); err != nil && ctx.Err() == nil {
			if permanent(err) { // retrying cannot help: stop and say why
				return errors.Join(fmt.Errorf("fleet: worker %s stops: %w", w.opts.WorkerID, err), w.leave())
			}
			if w.opts.Logger != nil {
				w.opts.Logger.Warn("fleet: reconcile", "worker", w.opts.WorkerID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return w.leave()
		case <-tick.C:
		case msg := <-events:
			w.note(msg)
			coalesce(events, w.kick, w.note)
		case <-w.kick:
			coalesce(events, w.kick, w.note)
		}
	}
}

// leave stops every handler, releases the leases, and leaves the fleet.
func (w *Worker) leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.mu.Lock()
	all := make([]*owned, 0, len(w.owned))
	for _, o := range w.owned {
		o.cancel()
		all = append(all, o)
	}
	w.mu.Unlock()
	for _, o := range all {
		<-o.done
	}
	member := w.opts.WorkerID + "|" + strconv.Itoa(w.opts.Capacity)
	err := w.client.ZRem(ctx, membersKey(w.opts.Prefix), member).Err()
	w.announce(ctx, "leave")
	return errors.Join(err, w.leases.Close(ctx))
}

func (w *Worker) announce(ctx context.Context, what string) {
	_ = w.client.Publish(ctx, EventsChannel(w.opts.Prefix), what+" "+w.opts.WorkerID).Err()
}

// reconcile heartbeats, reads the members and the registry, and moves this
// worker's sessions toward the plan. After a loss of data it plans with
// the members it saw before (view).
func (w *Worker) reconcile(ctx context.Context) error {
	if err := w.heartbeat(ctx); err != nil {
		return err
	}
	scored, err := w.client.ZRangeByScoreWithScores(ctx, membersKey(w.opts.Prefix),
		&redis.ZRangeBy{Min: strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return fmt.Errorf("fleet: read members: %w", err)
	}
	members := w.view(scored)
	if !slices.ContainsFunc(members, func(m Member) bool { return m.ID == w.opts.WorkerID }) {
		members = append(members, Member{ID: w.opts.WorkerID, Capacity: w.opts.Capacity})
	}
	w.resealIfRotated(ctx)
	sessions, err := redisstore.ListSessions(ctx, w.client, w.opts.Prefix)
	if err != nil {
		return err
	}
	if sessions, err = w.keepRegistered(ctx, sessions); err != nil {
		return err
	}
	plan := Assign(sessions, members)

	// Hand back what is no longer ours (moved or removed) — but not while
	// the registry is being repaired (for MemberTTL after this worker put
	// names back): the others have yet to put theirs back, and a plan made
	// from part of the names would move sessions for nothing.
	repairing := time.Since(w.repairedAt) < w.opts.MemberTTL
	w.mu.Lock()
	for name, o := range w.owned {
		if plan[name] != w.opts.WorkerID && !repairing {
			o.cancel()
		}
	}
	n := len(w.owned)
	w.mu.Unlock()

	// Take what is ours, within capacity.
	var errs []error
	for _, name := range sessions {
		if plan[name] != w.opts.WorkerID || n >= w.opts.Capacity || ctx.Err() != nil {
			continue
		}
		w.mu.Lock()
		_, have := w.owned[name]
		held := time.Now().Before(w.backoff[name].until)
		w.mu.Unlock()
		if have || held {
			continue
		}
		started, err := w.take(ctx, name)
		if err != nil {
			errs = append(errs, err)
		}
		if started {
			n++
		}
	}
	return errors.Join(errs...)
}

// resealIfRotated re-seals the auth key of every owned session when the
// keyring's current key changed (Options.Store.Keys, e.g. a keyring.File
// that re-reads its file): a live fleet rotates without releasing anything.
// Sessions taken later are re-sealed as they open.
func (w *Worker) resealIfRotated(ctx context.Context) {
	keys := w.opts.Store.Keys
	if keys == nil {
		return
	}
	id, _, err := keys.CurrentKey(ctx)
	if err != nil || id == w.sealedWith {
		return
	}
	w.mu.Lock()
	stores := make([]*redisstore.Store, 0, len(w.owned))
	for _, o := range w.owned {
		stores = append(stores, o.st)
	}
	w.mu.Unlock()
	failed := 0
	for _, st := range stores {
		if _, err := st.Reseal(ctx); err != nil && !errors.Is(err, lock.ErrLeaseLost) {
			failed++
			if w.opts.Logger != nil {
				w.opts.Logger.Warn("fleet: re-sealing an auth key with the keyring's new current key failed; trying again", "worker", w.opts.WorkerID,
					"session", storage.Excerpt(st.Name()), "key", id, "err", err)
			}
		}
	}
	if failed == 0 {
		w.sealedWith = id
		if w.opts.Logger != nil && len(stores) > 0 {
			w.opts.Logger.Info("fleet: re-sealed the owned sessions' auth keys with the keyring's current key", "worker", w.opts.WorkerID, "key", id, "sessions", len(stores))
		}
	}
}

// noteHandlerEnd holds a session back when its handler failed within a
// minute of starting (a bad session, a bug), so that it is not retaken
// every reconcile: the wait doubles from Interval up to maxBackoff with each
// failure in a row, and a handler that ran a minute, or stopped because its
// lease ended or the worker stops, clears it.
func (w *Worker) noteHandlerEnd(name string, began time.Time, err error, stopped bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil || stopped || time.Since(began) > time.Minute {
		delete(w.backoff, name)
		return
	}
	b := w.backoff[name]
	b.failures++
	wait := w.opts.Interval << min(b.failures, 16)
	b.until = time.Now().Add(min(wait, maxBackoff))
	w.backoff[name] = b
}

// noteLost counts and warns about a session whose data is gone, once until
// it is taken again.
func (w *Worker) noteLost(name string, err error) {
	w.mu.Lock()
	first := !w.lostNames[name]
	w.lostNames[name] = true
	w.mu.Unlock()
	if !first {
		return
	}
	w.lost.Add(1)
	if w.opts.Logger != nil {
		w.opts.Logger.Warn("fleet: a session's data is gone (a FLUSHALL, a restart without persistence, an eviction?); not taking it until it is restored (tgsession import)",
			"worker", w.opts.WorkerID, "session", storage.Excerpt(name), "prefix", w.opts.Prefix, "err", err)
	}
}

// keepRegistered repairs a registry that lost every name (its key deleted or
// flushed on its own while the sessions' data is there): it registers again
// the sessions this worker owns whose data exists, marks the repair for the
// other workers (P:fleet:repair, 2 x MemberTTL) so that they put theirs back
// too, and returns the registry with them. Each one is warned about and
// counted. Otherwise a registry that lacks an owned name is taken as it is:
// removing one name (SREM) is how an operator takes a session out of the
// fleet.
func (w *Worker) keepRegistered(ctx context.Context, sessions []string) ([]string, error) {
	listed := make(map[string]bool, len(sessions))
	for _, n := range sessions {
		listed[n] = true
	}
	w.mu.Lock()
	var missing []string
	for name := range w.owned {
		if !listed[name] {
			missing = append(missing, name)
		}
	}
	w.mu.Unlock()
	if len(missing) == 0 {
		return sessions, nil
	}
	if len(sessions) > 0 {
		// Some names are listed: one removed on purpose, unless another
		// worker is repairing a registry that lost them all.
		n, err := w.client.Exists(ctx, repairKey(w.opts.Prefix)).Result()
		if err != nil {
			return nil, fmt.Errorf("fleet: read the registry repair marker: %w", err)
		}
		if n == 0 {
			return sessions, nil
		}
	}
	repaired := false
	for _, name := range missing {
		ok, err := redisstore.SessionExists(ctx, w.client, w.opts.Prefix, name)
		if err == nil && ok && !repaired {
			// Mark the repair before the first name goes back, so that a
			// worker reading the registry in between does not take its
			// missing names for removals.
			if err := w.markRepair(ctx); err != nil {
				return nil, err
			}
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // deleted: hand it back
		}
		if err := redisstore.Register(ctx, w.client, w.opts.Prefix, name); err != nil {
			return nil, err
		}
		w.reregistered.Add(1)
		if w.opts.Logger != nil {
			w.opts.Logger.Warn("fleet: a session this worker owns vanished from the registry although its data is there; registered it again (if others vanished too, run tgsession registry rebuild)",
				"worker", w.opts.WorkerID, "session", storage.Excerpt(name), "prefix", w.opts.Prefix)
		}
		sessions = append(sessions, name)
		repaired = true
	}
	if repaired {
		w.repairedAt = time.Now()
	}
	return sessions, nil
}

// markRepair tells the other workers, which may read the registry after
// this one put its names back, that their missing names are a loss too.
func (w *Worker) markRepair(ctx context.Context) error {
	pipe := w.client.Pipeline()
	pipe.MSet(ctx, repairKey(w.opts.Prefix), w.opts.WorkerID)
	pipe.PExpire(ctx, repairKey(w.opts.Prefix), 2*w.opts.MemberTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("fleet: set the registry repair marker: %w", err)
	}
	return nil
}

// repairKey marks a registry repair in progress (keepRegistered).
func repairKey(prefix string) string { return prefix + ":fleet:repair" }

// heartbeat renews this worker's membership and drops members dead for a
// minute.
func (w *Worker) heartbeat(ctx context.Context) error {
	key := membersKey(w.opts.Prefix)
	now := time.Now()
	member := w.opts.WorkerID + "|" + strconv.Itoa(w.opts.Capacity)
	pipe := w.client.Pipeline()
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.Add(w.opts.MemberTTL).UnixMilli()), Member: member})
	pipe.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.Add(-time.Minute).UnixMilli(), 10))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("fleet: heartbeat: %w", err)
	}
	return nil
}

// view returns the members to plan with: those the set holds now, plus
// "ghosts" — members this worker saw live before its view lost data, kept
// for MemberTTL unless they announce their leave or heartbeat again. The
// view lost data when a member vanished before its heartbeat expired
// without a leave, when a member's heartbeat is older than the one read last
// time, or when this worker could not read the set for more than two
// intervals. All mean the server answering now missed recent writes (a
// failover to a replica that lagged, a restart without persistence), or that
// every worker was cut off alike and the others' heartbeats have yet to
// arrive (their clients may find the new primary later than this one:
// measured up to ~7.7 s after a Sentinel failover). A worker that planned
// from the bare view would see itself (nearly) alone, take every session and
// hand them back a moment later. Ghosts live 2 × MemberTTL (MemberTTL alone
// was measured too short); that delays only the takeover of a worker that
// really died during the failover, by at most that long.
func (w *Worker) view(scored []redis.Z) []Member {
	now := time.Now()
	self := w.opts.WorkerID + "|" + strconv.Itoa(w.opts.Capacity)
	current := make(map[string]int64, len(scored))
	for _, z := range scored {
		if m, ok := z.Member.(string); ok {
			current[m] = int64(z.Score)
		}
	}
	lost := !w.lastRead.IsZero() && now.Sub(w.lastRead) > 2*w.opts.Interval // cut off
	for m, exp := range w.seen {
		id, _, _ := strings.Cut(m, "|")
		cur, ok := current[m]
		switch {
		case m == self:
		case !ok && exp > now.UnixMilli() && !w.left[id]:
			lost = true // vanished before its heartbeat expired, without a leave
		case ok && cur < exp:
			lost = true // heartbeats only move forward: an older one is back
		}
	}
	if lost {
		for m := range w.seen {
			id, _, _ := strings.Cut(m, "|")
			if _, ok := current[m]; !ok && m != self && !w.left[id] {
				w.ghosts[m] = now.Add(2 * w.opts.MemberTTL)
			}
		}
		if w.opts.Logger != nil {
			w.opts.Logger.Warn("fleet: the members set lost recent heartbeats, or this worker was cut off (a failover?); planning with the members seen before",
				"worker", w.opts.WorkerID, "for", 2*w.opts.MemberTTL)
		}
	}
	for m, until := range w.ghosts {
		id, _, _ := strings.Cut(m, "|")
		if _, back := current[m]; back || w.left[id] || now.After(until) {
			delete(w.ghosts, m)
		}
	}
	w.lastRead = now
	clear(w.left)
	w.seen = current
	raw := slices.Clone(scored)
	for m := range w.ghosts {
		raw = append(raw, redis.Z{Member: m})
	}
	return parseMembers(raw)
}

// take opens a session with a managed lease and starts its handler; a
// session another worker still holds (a handover in progress, or a dead
// worker's lease not expired yet) is tried again later.
func (w *Worker) take(ctx context.Context, name string) (bool, error) {
	o := w.opts.Store
	o.Mode, o.Prefix, o.LeaseManager, o.OpenExisting = redisstore.Leased, w.opts.Prefix, w.leases, true
	st, err := redisstore.New(w.client, name, o)
	if err != nil {
		return false, err
	}
	if err := st.Open(ctx); err != nil {
		if errors.Is(err, redisstore.ErrSessionLost) {
			w.noteLost(name, err)
			return false, nil
		}
		if errors.Is(err, lock.ErrHeld) || errors.Is(err, storage.ErrSessionNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("take %s: %w", storage.Excerpt(name), err)
	}
	w.mu.Lock()
	delete(w.lostNames, name) // restored: warn again if it is lost again
	w.mu.Unlock()
	hctx, cancel := context.WithCancel(st.Lease().Context())
	own := &owned{st: st, lease: st.Lease(), cancel: cancel, done: make(chan struct{})}
	w.mu.Lock()
	w.owned[name] = own
	w.mu.Unlock()
	go func() {
		defer close(own.done)
		began := time.Now()
		err := w.handler(hctx, st)
		stopped := hctx.Err() != nil // the lease ended, or the worker let the session go
		cancel()
		w.noteHandlerEnd(name, began, err, stopped)
		if err != nil && !errors.Is(err, context.Canceled) && w.opts.Logger != nil {
			w.opts.Logger.Warn("fleet: handler", "worker", w.opts.WorkerID, "session", name, "err", err)
		}
		// A session whose data went away under its handler (a flush, a
		// restart without persistence; the owner itself never deletes one
		// it runs) is a lost session, not a takeover or a move: say so.
		if ok, err := redisstore.SessionExists(context.Background(), w.client, w.opts.Prefix, name); err == nil && !ok {
			cause := context.Cause(own.lease.Context())
			if cause == nil {
				cause = redisstore.ErrSessionLost
			}
			w.noteLost(name, cause)
		}
		_ = st.Close() // releases the lease and announces it
		w.mu.Lock()
		delete(w.owned, name)
		w.mu.Unlock()
		w.announce(context.Background(), "released")
		w.poke()
	}()
	return true, nil
}

// coalesceFor is how long a worker collects further events before it
// reconciles: a handover storm (a worker joining takes its share from
// everyone) costs one reconcile per worker per burst, not one per event.
const coalesceFor = 20 * time.Millisecond

// note records a member's announced leave (so its vanishing from the
// members set is not mistaken for lost data).
func (w *Worker) note(msg *redis.Message) {
	if msg == nil {
		return
	}
	if id, ok := strings.CutPrefix(msg.Payload, "leave "); ok {
		w.left[id] = true
	}
}

// coalesce drains the events that arrive within coalesceFor, passing each
// to note.
func coalesce(events <-chan *redis.Message, kick <-chan struct{}, note func(*redis.Message)) {
	t := time.NewTimer(coalesceFor)
	defer t.Stop()
	for {
		select {
		case msg := <-events:
			note(msg)
		case <-kick:
		case <-t.C:
			return
		}
	}
}

// permanent reports a Redis error that no retry can fix: a missing
// permission, failed authentication, or a key of another type.
func permanent(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	for _, p := range []string{"NOPERM", "NOAUTH", "WRONGPASS", "WRONGTYPE"} {
		if strings.HasPrefix(re.Error(), p) {
			return true
		}
	}
	return false
}

// Owners returns, for every session registered under prefix whose lease is
// held, the id of the worker holding it (one pipeline of GETs; for tools
// such as tgsession workers).
func Owners(ctx context.Context, client redis.UniversalClient, prefix string) (map[string]string, error) {
	names, err := redisstore.ListSessions(ctx, client, prefix)
	if err != nil {
		return nil, err
	}
	pipe := client.Pipeline()
	cmds := make([]*redis.StringCmd, len(names))
	for i, n := range names {
		st, err := redisstore.New(client, n, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err != nil {
			return nil, err
		}
		cmds[i] = pipe.Get(ctx, st.LeaseKey())
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("fleet: read leases: %w", err)
	}
	out := make(map[string]string, len(names))
	for i, n := range names {
		if v, err := cmds[i].Result(); err == nil {
			if o, ok := lock.ParseOwner(v); ok {
				out[n] = o.WorkerID
			}
		}
	}
	return out, nil
}
