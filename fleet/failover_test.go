package fleet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// The failover robustness test (issue 23): fleet workers own sessions on a
// Sentinel and on a Cluster topology while the primary is killed (kill -9)
// again and again, each time after its replica was stopped for a while so
// that replication really lags. Every worker runs in this process, so every
// ownership interval and every auth-key read and write is stamped on one
// monotonic clock. The histories are checked with porcupine (the lease as a
// mutex, each session's auth key as a register) and directly (no two
// ownership intervals of a session overlap; no confirmed write is lost).
//
// TGSESSION_FAILOVERS (default 20) sets the failovers per topology and TTL,
// TGSESSION_FAILOVER_TTLS (default "2s") the lease TTLs to run,
// TGSESSION_FAILOVER_TOPOLOGIES (default "sentinel,cluster") the
// topologies; TGSESSION_ARTIFACTS a directory for porcupine's visualization
// of a history that is not linearizable. On an overlap the test prints what
// each server did with the lease key (MONITOR) and what the leases logged:
// that record explained the last Sentinel overlap (a lease trusted on a
// primary with no replica that the Sentinels then demoted; see lock.need);
// TGSESSION_FAILOVER_NOCONFIRM=1 runs the leases with lock.NoReplicas (no
// confirmed renewals), to measure what confirmation prevents: expect the
// test to fail then.

const (
	foSessions = 6
	foWorkers  = 3
)

// foHistory records what the workers did, on one monotonic clock (ns since
// base).
type foHistory struct {
	base time.Time
	ttl  time.Duration

	mu      sync.Mutex
	stints  []*foStint
	writes  []foWrite
	reads   []foRead
	nextSeq map[string]uint64

	standbyErrs map[string]int // why the standbys' Acquire failed, by error

	// explain, if set, describes what the servers did with a session's
	// lease key between two instants (the MONITOR record), for an overlap.
	explain func(session string, from, to int64) string
}

type foStint struct {
	session, worker string
	id              int
	acquired, began int64 // acquisition sent; Open returned (the handler began)
	ended           int64 // the lease stopped being trusted (0: still held)
	cause           error
}

type foWrite struct {
	session        string
	seq            uint64
	call, ret      int64
	confirmed      bool // else ambiguous: ErrNotDurable or outcome unknown
	worker, stints int
}

type foRead struct {
	session   string
	seq       uint64
	call, ret int64
	worker    int
}

func (h *foHistory) now() int64 { return int64(time.Since(h.base)) }

func (h *foHistory) at(t time.Time) int64 { return int64(t.Sub(h.base)) }

// authKey encodes seq in a 256-byte auth key.
func authKey(seq uint64) []byte {
	k := make([]byte, 256)
	for i := range k {
		k[i] = byte(i)
	}
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func (h *foHistory) handler(worker string, wi int) Handler {
	return func(ctx context.Context, st *redisstore.Store) error {
		l := st.Lease()
		began := h.now()
		s := &foStint{session: st.Name(), worker: worker, acquired: h.at(l.Acquired()), began: began}
		h.mu.Lock()
		s.id = len(h.stints)
		h.stints = append(h.stints, s)
		h.mu.Unlock()
		go func() {
			<-l.Context().Done()
			end := min(h.now(), h.at(l.Deadline()))
			h.mu.Lock()
			s.ended, s.cause = end, context.Cause(l.Context())
			h.mu.Unlock()
		}()
		call := h.now()
		k, err := st.AuthKey(ctx)
		if err == nil && len(k) == 256 {
			h.mu.Lock()
			h.reads = append(h.reads, foRead{session: st.Name(), seq: binary.BigEndian.Uint64(k), call: call, ret: h.now(), worker: wi})
			h.mu.Unlock()
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			h.mu.Lock()
			h.nextSeq[st.Name()]++
			seq := h.nextSeq[st.Name()]
			h.mu.Unlock()
			call := h.now()
			err := st.SetAuthKey(ctx, authKey(seq))
			ret := h.now()
			ambiguous := errors.Is(err, storage.ErrNotDurable) || errors.Is(err, redisstore.ErrOutcomeUnknown)
			if err == nil || ambiguous {
				h.mu.Lock()
				h.writes = append(h.writes, foWrite{session: st.Name(), seq: seq, call: call, ret: ret, confirmed: err == nil, worker: wi, stints: s.id})
				h.mu.Unlock()
			}
			if ambiguous {
				// Write again only after half a TTL: a few writes whose
				// outcome is unknown per failover keep porcupine's search
				// small (each may take effect any time after it was sent).
				// A later confirmed write confirms it too (replication is
				// ordered).
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(max(time.Second, h.ttl/2)):
				}
			}
		}
	}
}

// contend is a standby that wants the session's lease all the time, as a
// second worker started by mistake (or a bug in the assignment) would: it
// waits with lock.Acquire, and releases what it gets at once. It is what a
// lease that a failover lost lets in; its stints go into the history.
func (h *foHistory) contend(ctx context.Context, client redis.UniversalClient, session, key string, id string, o lock.Options) {
	o.WorkerID = id
	o.PollInterval = 100 * time.Millisecond // eager
	for ctx.Err() == nil {
		l, err := lock.Acquire(ctx, client, key, o)
		if err != nil {
			if ctx.Err() == nil {
				h.mu.Lock()
				h.standbyErrs[strings.SplitN(err.Error(), ":", 4)[len(strings.SplitN(err.Error(), ":", 4))-1]]++
				h.mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s := &foStint{session: session, worker: id, acquired: h.at(l.Acquired()), began: h.now()}
		// Trust ends as Release begins (it ends the lease before it deletes
		// the key, so nobody can acquire earlier); a lost lease ended sooner.
		s.ended = min(h.now(), h.at(l.Deadline()))
		_ = l.Release(context.WithoutCancel(ctx))
		s.cause = context.Cause(l.Context())
		time.Sleep(20 * time.Millisecond) // room for the assigned worker to take it back
		h.mu.Lock()
		s.id = len(h.stints)
		h.stints = append(h.stints, s)
		h.mu.Unlock()
	}
}

// foTopology is a topology the test fails over.
type foTopology interface {
	client() redis.UniversalClient
	// fail stops the current primary's replica for lag, kills the primary,
	// resumes the replica and returns the kill's time.
	fail(t *testing.T, round int, lag time.Duration) time.Time
	// heal waits for the promotion and brings the killed node back as a
	// replica of the new primary, in sync.
	heal(t *testing.T)
}

type sentinelTopo struct {
	s      *redistest.Sentinel
	nodes  [2]*redistest.Server
	killed *redistest.Server
	other  *redistest.Server
	last   string // what a sentinel said last while the test waited for it
}

func (x *sentinelTopo) client() redis.UniversalClient { return x.s.Client() }

func (x *sentinelTopo) fail(t *testing.T, _ int, lag time.Duration) time.Time {
	ctx := context.Background()
	addr, err := x.s.PrimaryAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	x.killed, x.other = x.nodes[0], x.nodes[1]
	if x.nodes[1].Addr == addr {
		x.killed, x.other = x.nodes[1], x.nodes[0]
	}
	x.other.Pause()
	ballast(t, x.killed.Addr, "ballast")
	time.Sleep(lag)
	x.killed.Kill()
	killed := time.Now()
	x.other.Resume()
	return killed
}

// ballastMB is how much the primary writes right after its replica stopped:
// more than the kernel's socket buffers between them hold (a few MB on
// loopback), so that what follows stays in the primary's output buffer and
// dies with it. Without it a stopped replica still receives the stream into
// its socket buffer and, resumed, applies every write the primary made: no
// lag at all.
const ballastMB = 32

// ballast writes ballastMB into keys of tag on the server at addr.
func ballast(t *testing.T, addr, tag string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	pipe := c.Pipeline()
	v := strings.Repeat("b", 1<<20)
	for i := range ballastMB {
		pipe.Set(context.Background(), fmt.Sprintf("{%s}:ballast:%d", tag, i), v, time.Minute)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatalf("ballast: %v", err)
	}
}

func (x *sentinelTopo) heal(t *testing.T) {
	ctx := context.Background()
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", x.last)
		}
	}()
	// The failover is over when every Sentinel names the new primary, none
	// has a failover in progress, and the new primary says it is one: only
	// then does the killed node come back (a node restarted while a
	// Sentinel still counted it primary was turned into a second primary,
	// or the new one into its replica, emptying it).
	wait(t, 60*time.Second, "sentinels promote "+x.other.Addr, func() bool {
		for _, sn := range x.s.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
			addr, err := c.GetMasterAddrByName(ctx, redistest.MasterName).Result()
			m, merr := c.Master(ctx, redistest.MasterName).Result()
			c.Close()
			if err != nil || merr != nil || len(addr) != 2 || addr[0]+":"+addr[1] != x.other.Addr ||
				strings.Contains(m["flags"], "failover") || strings.Contains(m["flags"], "down") {
				x.last = fmt.Sprintf("sentinel %s: master %v %v", sn.Addr, addr, m["flags"])
				return false
			}
		}
		c := redis.NewClient(&redis.Options{Addr: x.other.Addr})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "role:master")
	})
	// Back as a replica of the new primary (not as an empty primary that
	// clients still pointing at the old address could write to).
	if err := x.killed.Restart("--replicaof", "127.0.0.1", strconv.Itoa(x.other.Port)); err != nil {
		t.Fatal(err)
	}
	if err := redistest.WaitReplicaSynced(ctx, x.killed.Addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// On a loaded machine the Sentinels may fail over once more on their
	// own (a primary busy with the full sync misses its pings): any one of
	// the two nodes may be the primary then, as long as the other is its
	// healthy replica.
	wait(t, 60*time.Second, "every sentinel sees the replica healthy", func() bool {
		for _, sn := range x.s.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
			addr, aerr := c.GetMasterAddrByName(ctx, redistest.MasterName).Result()
			reps, err := c.Replicas(ctx, redistest.MasterName).Result()
			c.Close()
			if err != nil || aerr != nil || len(addr) != 2 || len(reps) == 0 {
				return false
			}
			want := x.killed.Addr
			if addr[0]+":"+addr[1] == x.killed.Addr {
				want = x.other.Addr
			}
			ok := false
			for _, r := range reps {
				f := r["flags"]
				if r["name"] == want && strings.Contains(f, "slave") && !strings.Contains(f, "s_down") &&
					!strings.Contains(f, "disconnected") && r["master-link-status"] == "ok" {
					ok = true
				}
			}
			if !ok {
				x.last = fmt.Sprintf("sentinel %s: replicas %v", sn.Addr, reps)
			}
			if !ok {
				return false
			}
		}
		return true
	})
}

type clusterTopo struct {
	c            *redistest.Cluster
	keys         []string
	killed, prom *redistest.Server
	key          string
}

func (x *clusterTopo) client() redis.UniversalClient { return x.c.Client() }

func (x *clusterTopo) fail(t *testing.T, round int, lag time.Duration) time.Time {
	ctx := context.Background()
	x.key = x.keys[round%len(x.keys)]
	primary, replica, err := x.c.PrimaryFor(ctx, x.key)
	if err != nil || replica == nil {
		t.Fatalf("no primary with a replica for %s: %v", x.key, err)
	}
	x.killed, x.prom = primary, replica
	replica.Pause()
	tag, _, _ := strings.Cut(strings.TrimPrefix(x.key[strings.Index(x.key, "{"):], "{"), "}")
	ballast(t, primary.Addr, tag)
	time.Sleep(lag)
	primary.Kill()
	killed := time.Now()
	replica.Resume()
	return killed
}

func (x *clusterTopo) heal(t *testing.T) {
	ctx := context.Background()
	wait(t, 60*time.Second, "cluster promotes "+x.prom.Addr, func() bool {
		p, _, err := x.c.PrimaryFor(ctx, x.key)
		return err == nil && p == x.prom
	})
	if err := x.killed.Restart(); err != nil { // rejoins from nodes.conf as a replica
		t.Fatal(err)
	}
	wait(t, 60*time.Second, x.killed.Addr+" back as the replica", func() bool {
		p, r, err := x.c.PrimaryFor(ctx, x.key)
		return err == nil && p == x.prom && r == x.killed
	})
	if err := redistest.WaitReplicaSynced(ctx, x.killed.Addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func wait(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func failoverTTLs(t *testing.T) []time.Duration {
	v := os.Getenv("TGSESSION_FAILOVER_TTLS")
	if v == "" {
		return []time.Duration{2 * time.Second}
	}
	var out []time.Duration
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("TGSESSION_FAILOVER_TTLS: %v", err)
		}
		out = append(out, d)
	}
	return out
}

func TestOwnershipThroughFailovers(t *testing.T) {
	rounds := envInt("TGSESSION_FAILOVERS", 20)
	topos := []string{"sentinel", "cluster"}
	if v := os.Getenv("TGSESSION_FAILOVER_TOPOLOGIES"); v != "" {
		topos = strings.Split(v, ",")
	}
	for _, ttl := range failoverTTLs(t) {
		for _, topo := range topos {
			if topo != "sentinel" && topo != "cluster" {
				t.Fatalf("TGSESSION_FAILOVER_TOPOLOGIES: unknown topology %q (sentinel, cluster)", topo)
			}
			t.Run(fmt.Sprintf("%s/ttl=%v", topo, ttl), func(t *testing.T) {
				t.Parallel()
				runFailovers(t, topo, ttl, rounds)
			})
		}
	}
}

func runFailovers(t *testing.T, topoName string, ttl time.Duration, rounds int) {
	ctx := context.Background()
	prefix := "fo"
	var topo foTopology
	names := make([]string, foSessions)
	for i := range names {
		names[i] = fmt.Sprintf("acct-%d", i)
	}
	switch topoName {
	case "sentinel":
		s := redistest.NewSentinel(t)
		topo = &sentinelTopo{s: s, nodes: [2]*redistest.Server{s.Primary, s.Replica}}
	default:
		c := redistest.NewCluster(t, 3, 1)
		x := &clusterTopo{c: c}
		for _, n := range names {
			st, err := redisstore.New(c.Client(), n, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			x.keys = append(x.keys, st.LeaseKey())
		}
		topo = x
	}
	setup := topo.client()
	defer setup.Close()
	for _, n := range names {
		st, err := redisstore.New(setup, n, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.SetAuthKey(ctx, authKey(0)); err != nil {
			t.Fatal(err)
		}
	}
	h := &foHistory{base: time.Now(), ttl: ttl, nextSeq: map[string]uint64{}, standbyErrs: map[string]int{}}
	// What every server did with the lease keys, and what the leases
	// logged, to explain an overlap if one is found.
	var mon *monitor
	if x, ok := topo.(*sentinelTopo); ok {
		mon = newMonitor(h, x.nodes[0].Addr, x.nodes[1].Addr)
	} else {
		mon = newMonitor(h, topo.(*clusterTopo).c.Addrs()...)
	}
	defer mon.close()
	leaseLog := &stampedLog{h: h}
	leaseKeys := map[string]string{}
	for _, n := range names {
		st, err := redisstore.New(setup, n, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		leaseKeys[n] = st.LeaseKey()
	}
	h.explain = func(session string, from, to int64) string {
		return "servers:\n" + mon.around(leaseKeys[session], from, to) + "lease logs:\n" + leaseLog.around(leaseKeys[session], from, to)
	}
	defer func() {
		if t.Failed() {
			if x, ok := topo.(*sentinelTopo); ok {
				for _, n := range append(x.nodes[:], x.s.Sentinels...) {
					t.Logf("log of %s:\n%s", n.Addr, n.Log())
				}
			}
		}
	}()
	leaseOpts := lock.Options{TTL: ttl, Logger: slog.New(slog.NewTextHandler(leaseLog, &slog.HandlerOptions{Level: slog.LevelDebug}))} // WaitReplicas: automatic (the default)
	if os.Getenv("TGSESSION_FAILOVER_NOCONFIRM") == "1" {
		leaseOpts.WaitReplicas = lock.NoReplicas
	}
	var ws []*running
	for i := range foWorkers {
		id := fmt.Sprintf("w%d", i)
		c := topo.client()
		defer c.Close()
		w, err := New(c, Options{WorkerID: id, Prefix: prefix, Interval: 200 * time.Millisecond,
			Lease: leaseOpts,
			Store: redisstore.Options{Durability: redisstore.Durability{Replicas: 1, Timeout: 200 * time.Millisecond}}},
			h.handler(id, i))
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, launch(ctx, w))
	}
	stopped := false
	stopWorkers := func() {
		if stopped {
			return
		}
		stopped = true
		for _, r := range ws {
			r.cancel()
			<-r.done
		}
	}
	defer stopWorkers()
	fair := (foSessions + foWorkers - 1) / foWorkers
	waitOwned(t, foSessions, 60*time.Second, ws, func(l []int) bool { return within(l, fair-1, fair) })

	// A standby per session, on a client of its own, contends all the time.
	cctx, stopContenders := context.WithCancel(ctx)
	var contenders sync.WaitGroup
	defer func() { stopContenders(); contenders.Wait() }()
	for i, n := range names {
		c := topo.client()
		defer c.Close()
		st, err := redisstore.New(c, n, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		contenders.Go(func() { h.contend(cctx, c, n, st.LeaseKey(), fmt.Sprintf("s%d", i), leaseOpts) })
	}

	// Sample every worker's Owned every 10 ms: the most any one holds.
	maxHeld, samples := 0, 0
	var overViews []string
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
			var views []string
			over := false
			for i, r := range ws {
				owned := r.w.Owned()
				maxHeld = max(maxHeld, len(owned))
				over = over || len(owned) > fair+1
				views = append(views, fmt.Sprintf("w%d %v", i, owned))
			}
			if over && len(overViews) < 5 { // what each worker held when one held too many
				overViews = append(overViews, fmt.Sprintf("%v: %s", time.Duration(h.now()), strings.Join(views, "; ")))
			}
			samples++
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 23))
	kills := make([]int64, 0, rounds)
	var lastKill time.Time
	for round := range rounds {
		// A Sentinel does not fail the same master over again within twice
		// its failover-timeout (3 s) of the last attempt.
		if d := 7*time.Second - time.Since(lastKill); d > 0 {
			time.Sleep(d)
		}
		lo, hi := ttl/4, ttl*3/4 // the replica lags a quarter to three quarters of a TTL
		lag := lo + time.Duration(rng.Int64N(int64(hi-lo)))
		lastKill = topo.fail(t, round, lag)
		kills = append(kills, h.at(lastKill))
		t.Logf("round %d: killed at %v", round, time.Duration(h.at(lastKill)))
		topo.heal(t)
		// Every session owned and confirmed-written again after the kill.
		killedAt := h.at(lastKill)
		wait(t, 20*ttl+30*time.Second, "every session written again after the kill", func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			done := map[string]bool{}
			for _, w := range h.writes {
				if w.confirmed && w.call > killedAt {
					done[w.session] = true
				}
			}
			return len(done) == foSessions
		})
		t.Logf("round %d: replica lagged %v before the kill; healed and writing again %v after it",
			round, lag.Round(time.Millisecond), time.Since(lastKill).Round(time.Millisecond))
	}
	close(sampling)
	<-sampled
	stopContenders()
	contenders.Wait()
	stopWorkers()
	end := h.now() + 1
	checkFailoverHistory(t, h, kills, end, topoName, ttl)
	t.Logf("%s ttl=%v: the standbys' failed Acquire calls: %v", topoName, ttl, h.standbyErrs)
	t.Logf("%s ttl=%v: at most %d sessions held by one worker in %d samples (fair share %d)", topoName, ttl, maxHeld, samples, fair)
	if maxHeld > fair+1 {
		t.Errorf("a worker held %d sessions at once; want at most fair share + 1 = %d; what each held then (kills at %v):\n%s",
			maxHeld, fair+1, kills, strings.Join(overViews, "\n"))
	}
}

// checkFailoverHistory checks the recorded history: directly, and with
// porcupine.
func checkFailoverHistory(t *testing.T, h *foHistory, kills []int64, end int64, topo string, ttl time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// 1. No two ownership intervals of a session overlap: from the moment the
	// acquisition returned to the end of trust (Lost, release, or the
	// deadline, whichever came first).
	bySession := map[string][]*foStint{}
	for _, s := range h.stints {
		if s.ended == 0 {
			s.ended = end
		}
		bySession[s.session] = append(bySession[s.session], s)
	}
	overlaps, intervals, standby := 0, len(h.stints), 0
	for _, s := range h.stints {
		if s.worker[0] == 's' {
			standby++
		}
	}
	minMargin := time.Duration(1 << 62)
	unconfirmed := 0
	for _, s := range h.stints {
		if errors.Is(s.cause, lock.ErrNotDurable) {
			unconfirmed++
		}
	}
	for name, ss := range bySession {
		// Trust starts when the acquisition returns (began): an attempt sent
		// during a failover may be executed seconds later, on the new primary.
		slices.SortFunc(ss, func(a, b *foStint) int { return int(a.began - b.began) })
		for i := 1; i < len(ss); i++ {
			margin := time.Duration(ss[i].began - ss[i-1].ended)
			minMargin = min(minMargin, margin)
			if margin <= 0 {
				overlaps++
				t.Errorf("%s: %s's lease [%v, %v] (ended: %v) overlaps %s's [%v sent, %v trusted, %v] by %v", name,
					ss[i-1].worker, time.Duration(ss[i-1].acquired), time.Duration(ss[i-1].ended), ss[i-1].cause,
					ss[i].worker, time.Duration(ss[i].acquired), time.Duration(ss[i].began), time.Duration(ss[i].ended), -margin)
				if h.explain != nil {
					t.Logf("%s around the overlap:\n%s", name, h.explain(name, ss[i-1].acquired-3*int64(h.ttl), ss[i].ended+int64(time.Second)))
				}
			}
		}
	}
	// 2. No confirmed write lost: every read returns the latest write
	// confirmed before it was sent, or a later (ambiguous or concurrent) one.
	lost := 0
	for _, r := range h.reads {
		var latest uint64
		for _, w := range h.writes {
			if w.session == r.session && w.confirmed && w.ret < r.call && w.seq > latest {
				latest = w.seq
			}
		}
		if r.seq < latest {
			lost++
			t.Errorf("%s: a read at %v returned write %d; write %d had been confirmed before it", r.session, time.Duration(r.call), r.seq, latest)
		}
	}
	confirmed, ambiguous := 0, 0
	for _, w := range h.writes {
		if w.confirmed {
			confirmed++
		} else {
			ambiguous++
		}
	}
	// 3. The write gap after each kill: until every session had a confirmed
	// write again.
	var gaps []time.Duration
	for _, k := range kills {
		first := map[string]int64{}
		for _, w := range h.writes {
			if w.confirmed && w.call > k {
				if f, ok := first[w.session]; !ok || w.ret < f {
					first[w.session] = w.ret
				}
			}
		}
		var g int64
		for _, f := range first {
			g = max(g, f-k)
		}
		gaps = append(gaps, time.Duration(g))
	}
	slices.Sort(gaps)
	t.Logf("%s ttl=%v: %d failovers; %d ownership intervals (%d of them the standbys'), %d overlapping, smallest margin between consecutive owners %v; "+
		"%d leases given up because renewals went unconfirmed; %d confirmed auth-key writes, %d ambiguous, %d reads, %d confirmed writes lost; "+
		"write gap after a kill: median %v, max %v",
		topo, ttl, len(kills), intervals, standby, overlaps, minMargin.Round(time.Millisecond), unconfirmed, confirmed, ambiguous, len(h.reads), lost,
		gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))

	// 4. porcupine: the lease of each session as a mutex, its auth key as a
	// register.
	var leaseOps, keyOps []porcupine.Operation
	for _, s := range h.stints {
		wi := int(s.worker[1] - '0') // fleet worker w0..w2: 0..2; standby s0..s5: 3..8
		if s.worker[0] == 's' {
			wi += foWorkers
		}
		leaseOps = append(leaseOps,
			porcupine.Operation{ClientId: wi, Input: mutexOp{s.session, true}, Call: s.acquired, Return: s.began, Output: true},
			// The lease ends in Redis some time after this owner stopped
			// trusting it (it expires, or is released): open-ended.
			porcupine.Operation{ClientId: wi, Input: mutexOp{s.session, false}, Call: s.ended, Return: end, Output: true})
	}
	for _, w := range h.writes {
		ret := w.ret
		if !w.confirmed {
			ret = end // may take effect (or be lost) any time after it was sent
		}
		keyOps = append(keyOps, porcupine.Operation{ClientId: w.worker, Input: regOp{w.session, true, w.seq}, Call: w.call, Return: ret})
	}
	for _, r := range h.reads {
		keyOps = append(keyOps, porcupine.Operation{ClientId: r.worker, Input: regOp{r.session, false, 0}, Output: r.seq, Call: r.call, Return: r.ret})
	}
	for _, c := range []struct {
		name  string
		model porcupine.Model
		ops   []porcupine.Operation
	}{{"lease", mutexModel, leaseOps}, {"auth key", registerModel, keyOps}} {
		res, info := porcupine.CheckOperationsVerbose(c.model, c.ops, 2*time.Minute)
		t.Logf("%s ttl=%v: porcupine on the %s history (%d operations): %v", topo, ttl, c.name, len(c.ops), res)
		if res != porcupine.Ok {
			dir := os.Getenv("TGSESSION_ARTIFACTS")
			if dir == "" {
				dir = t.TempDir()
			}
			path := filepath.Join(dir, fmt.Sprintf("porcupine-%s-%s-%v.html", strings.ReplaceAll(c.name, " ", "-"), topo, ttl))
			if err := porcupine.VisualizePath(c.model, info, path); err != nil {
				t.Logf("visualization: %v", err)
			}
			t.Errorf("%s history is %v (not linearizable); visualization: %s", c.name, res, path)
		}
	}
}

type mutexOp struct {
	session string
	acquire bool
}

// mutexModel: per session, a mutex; acquire needs it free, release held.
var mutexModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		return partition(h, func(op porcupine.Operation) string { return op.Input.(mutexOp).session })
	},
	Init: func() any { return false },
	Step: func(state, input, _ any) (bool, any) {
		held, in := state.(bool), input.(mutexOp)
		if in.acquire {
			return !held, true
		}
		return held, false
	},
	DescribeOperation: func(input, _ any) string {
		if input.(mutexOp).acquire {
			return "acquire " + input.(mutexOp).session
		}
		return "release " + input.(mutexOp).session
	},
}

type regOp struct {
	session string
	write   bool
	seq     uint64
}

// registerModel: per session, the auth key's sequence number; it starts at
// 0 (set before the workers start).
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		return partition(h, func(op porcupine.Operation) string { return op.Input.(regOp).session })
	},
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regOp)
		if in.write {
			return true, in.seq
		}
		return output.(uint64) == state.(uint64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regOp)
		if in.write {
			return fmt.Sprintf("write %d", in.seq)
		}
		return fmt.Sprintf("read -> %v", output)
	},
}

func partition(h []porcupine.Operation, key func(porcupine.Operation) string) [][]porcupine.Operation {
	groups := map[string][]porcupine.Operation{}
	var order []string
	for _, op := range h {
		k := key(op)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, k := range order {
		out = append(out, groups[k])
	}
	return out
}
