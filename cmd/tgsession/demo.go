package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/fleet"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// event is one line a demo worker prints on stdout.
type event struct {
	Ev  string `json:"ev"` // own, write, refused, release, ready, error
	W   string `json:"w"`
	S   string `json:"s,omitempty"`
	Tok string `json:"tok,omitempty"`
	Seq int64  `json:"seq,omitempty"`
	Err string `json:"err,omitempty"`
	at  time.Duration
}

// tokenHash is the access hash a worker writes: it identifies the owner term.
func tokenHash(tok string) int64 {
	h := fnv.New64a()
	h.Write([]byte(tok))
	return int64(h.Sum64() >> 1)
}

const demoTTL = 2 * time.Second

// demoLease is the lease every demo worker takes: short, so the demo is quick.
func demoLease(id string) lock.Options {
	return lock.Options{TTL: demoTTL, RenewEvery: 400 * time.Millisecond, PollInterval: 500 * time.Millisecond, WorkerID: id}
}

// demoWorker is one worker process: a fleet worker (package fleet) that
// shares the sessions with the others; while it owns a session it writes a
// fenced update (a peer per write, and the date) every 100 ms, printing every
// accepted and refused write. SIGTERM hands its sessions back gracefully.
func (c *cli) demoWorker(ctx context.Context, args []string) error {
	var f flags
	var id string
	fs := c.flagSet(&f, "(internal: run by tgsession demo)")
	fs.StringVar(&id, "id", "w", "worker id")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	client, _, err := connect(f.redis, f.tls)
	if err != nil {
		return err
	}
	defer client.Close()
	var mu sync.Mutex
	emit := func(e event) {
		b, _ := json.Marshal(e)
		mu.Lock()
		fmt.Fprintln(c.out, string(b))
		mu.Unlock()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	w, err := fleet.New(client, fleet.Options{WorkerID: id, Capacity: 100, Prefix: f.prefix, Interval: 200 * time.Millisecond,
		Lease: demoLease(id)}, func(ctx context.Context, st *redisstore.Store) error {
		return writeWhileOwned(ctx, client, f.prefix, id, st, emit)
	})
	if err != nil {
		return err
	}
	emit(event{Ev: "ready", W: id})
	return w.Run(ctx)
}

// writeWhileOwned is the fleet handler of a demo worker: one fenced write
// every 100 ms. It writes before it looks at ctx, so a worker that was
// frozen past its lease tries once more on waking, and is refused.
func writeWhileOwned(ctx context.Context, client redis.UniversalClient, prefix, id string, st *redisstore.Store, emit func(event)) error {
	name := st.Name()
	tok := st.Lease().Token()
	emit(event{Ev: "own", W: id, S: name, Tok: tok})
	for {
		seq, err := client.Incr(context.Background(), prefix+":demo-seq:"+name).Result()
		if err == nil {
			err = st.UpdatePeers(context.Background(), []storage.Peer{{ID: seq, AccessHash: storage.Some(tokenHash(tok)), Type: storage.PeerUser}})
		}
		if err == nil && seq%5 == 0 {
			err = st.SetDate(context.Background(), seq)
		}
		if err != nil {
			emit(event{Ev: "refused", W: id, S: name, Tok: tok, Seq: seq, Err: err.Error()})
			return nil
		}
		emit(event{Ev: "write", W: id, S: name, Tok: tok, Seq: seq})
		select {
		case <-ctx.Done():
			emit(event{Ev: "release", W: id, S: name, Tok: tok})
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// demo runs the multi-process demo and checks its invariants, in phases:
// start the workers, kill one owner, freeze another, stop a third
// gracefully, stop the rest, verify what Redis holds, report.
func (c *cli) demo(ctx context.Context, args []string) error {
	var f flags
	var nWorkers, nSessions int
	fs := c.flagSet(&f, "[--redis URL] [--workers N] [--sessions N]")
	fs.IntVar(&nWorkers, "workers", 4, "worker processes")
	fs.IntVar(&nSessions, "sessions", 40, "sessions they share")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if nWorkers < 3 || nSessions < 1 {
		return usageErr("the demo needs at least 3 workers and 1 session")
	}
	url, where, stopRedis, err := demoRedis(f.redis)
	if err != nil {
		return err
	}
	defer stopRedis()
	client, _, err := connect(url, f.tls)
	if err != nil {
		return exitError{2, err}
	}
	defer client.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sc := newScenario(c, url, demoPrefix(f.prefix), self, nSessions)
	sc.tls = f.tls
	fmt.Fprintf(c.out, "tgsession demo: a fleet of %d worker processes shares %d sessions on %s\n", nWorkers, nSessions, where)
	fmt.Fprintf(c.out, "lease TTL %v; every owner writes a fenced update every 100 ms\n\n", demoTTL)
	defer sc.killAll()

	if err := sc.createSessions(ctx, client); err != nil {
		return err
	}
	if err := sc.startWorkers(nWorkers); err != nil {
		return err
	}
	sc.kill()
	sc.freeze()
	if err := sc.addWorker(fmt.Sprintf("w%d", nWorkers+1)); err != nil {
		return err
	}
	sc.stopGracefully()
	sc.balance("at the end")
	sc.stopAll()
	v, err := sc.verify(ctx, client)
	if err != nil {
		return err
	}
	return sc.report(v)
}

// demoRedis returns the Redis the demo runs on: the given URL, or an
// embedded miniredis (and a function that stops it).
func demoRedis(url string) (string, string, func(), error) {
	if url != "" {
		return url, "Redis at " + redact(url), func() {}, nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return "", "", nil, fmt.Errorf("start embedded Redis: %w", err)
	}
	// miniredis expires keys only when told time passed: keep its clock real.
	tick := time.NewTicker(20 * time.Millisecond)
	go func() {
		last := time.Now()
		for now := range tick.C {
			m.FastForward(now.Sub(last))
			last = now
		}
	}()
	stop := func() { tick.Stop(); m.Close() }
	return "redis://" + m.Addr(), "embedded Redis (miniredis) at " + m.Addr(), stop, nil
}

// demoPrefix is a fresh prefix for one demo run, so it never touches
// existing sessions.
func demoPrefix(prefix string) string {
	if prefix == redisstore.DefaultPrefix {
		prefix = "tgsession-demo"
	}
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	return prefix + ":" + hex.EncodeToString(run)
}

type worker struct {
	id    string
	cmd   *exec.Cmd
	alive bool
}

// cut is a phase that took sessions from their owner.
type cut struct {
	what     string
	at       time.Duration
	sessions []string
}

// scenario is one run of the demo: the worker processes, the events they
// print, who owns what, and the cuts whose takeovers the report measures.
type scenario struct {
	c      *cli
	url    string   // reaches the workers through their environment, never their argv
	tls    tlsFiles // file names, passed as flags
	prefix string
	self   string
	names  []string
	start  time.Time

	events  chan event
	readers sync.WaitGroup // one per worker's stdout
	done    chan struct{}  // closed when every event is collected

	workers    map[string]*worker
	order      []string
	cuts       []cut
	lastFrozen string // the worker freeze stopped; the graceful stop spares it

	mu    sync.Mutex
	owner map[string]string // session -> worker
	log   []event
	final [2]int // sessions per live worker at the end: min, max

	refusedShown int
}

func newScenario(c *cli, url, prefix, self string, nSessions int) *scenario {
	sc := &scenario{c: c, url: url, prefix: prefix, self: self, start: time.Now(),
		events: make(chan event, 1024), done: make(chan struct{}),
		workers: map[string]*worker{}, owner: map[string]string{}}
	for i := 1; i <= nSessions; i++ {
		sc.names = append(sc.names, fmt.Sprintf("account-%d", i))
	}
	go sc.collect()
	return sc
}

func (sc *scenario) say(format string, args ...any) {
	fmt.Fprintf(sc.c.out, "%6.2fs  %s\n", time.Since(sc.start).Seconds(), fmt.Sprintf(format, args...))
}

// collect records every event and prints the interesting ones.
func (sc *scenario) collect() {
	defer close(sc.done)
	for e := range sc.events {
		sc.mu.Lock()
		sc.log = append(sc.log, e)
		switch e.Ev {
		case "own":
			sc.owner[e.S] = e.W
		case "refused":
			if sc.refusedShown++; sc.refusedShown <= 3 {
				sc.say("%s write #%d to %s REFUSED: %s", e.W, e.Seq, e.S, shortErr(e.Err))
			} else if sc.refusedShown == 4 {
				sc.say("(more refused writes: counted in the summary)")
			}
		case "release":
			if sc.owner[e.S] == e.W {
				delete(sc.owner, e.S)
			}
		case "error":
			sc.say("%s: %s: %s", e.W, e.S, e.Err)
		}
		sc.mu.Unlock()
	}
}

// createSessions registers the demo's sessions (the fleet shares the
// sessions registered under the prefix).
func (sc *scenario) createSessions(ctx context.Context, client redis.UniversalClient) error {
	for _, name := range sc.names {
		st, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: sc.prefix})
		if err != nil {
			return err
		}
		if err := st.Open(ctx); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	return nil
}

// balance prints how many sessions each live worker owns.
func (sc *scenario) balance(when string) {
	var parts []string
	lo, hi := -1, 0
	for _, id := range sc.order {
		if !sc.workers[id].alive {
			continue
		}
		n := len(sc.ownedBy(id))
		parts = append(parts, fmt.Sprintf("%s=%d", id, n))
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	sc.say("balance %s: %s", when, strings.Join(parts, " "))
	sc.final = [2]int{lo, hi}
}

// startWorker starts one worker process and reads its events.
func (sc *scenario) startWorker(id string) error {
	cmd := exec.Command(sc.self, "demo-worker", "--prefix", sc.prefix, "--id", id,
		"--tls-ca", sc.tls.ca, "--tls-cert", sc.tls.cert, "--tls-key", sc.tls.key)
	// The URL (with any password) goes through the environment: argv is
	// visible to every user of the host (ps, /proc/PID/cmdline).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDIS_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "REDIS_URL="+sc.url)
	cmd.Stderr = sc.c.errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	sc.workers[id] = &worker{id: id, cmd: cmd, alive: true}
	sc.order = append(sc.order, id)
	sc.readers.Add(1)
	go func() {
		defer sc.readers.Done()
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			var e event
			if json.Unmarshal(lines.Bytes(), &e) == nil {
				e.at = time.Since(sc.start)
				sc.events <- e
			}
		}
		_ = cmd.Wait()
	}()
	sc.say("worker %s started (pid %d)", id, cmd.Process.Pid)
	return nil
}

// startWorkers is the first phase: n workers, then time for them to share.
func (sc *scenario) startWorkers(n int) error {
	for i := 1; i <= n; i++ {
		if err := sc.startWorker(fmt.Sprintf("w%d", i)); err != nil {
			return err
		}
	}
	time.Sleep(2500 * time.Millisecond)
	sc.balance("after the start")
	return nil
}

// addWorker starts one more worker: it gets its share by graceful handover.
func (sc *scenario) addWorker(id string) error {
	sc.say("a new worker %s joins: the others hand it its share gracefully", id)
	sc.cuts = append(sc.cuts, cut{"join", time.Since(sc.start), nil})
	if err := sc.startWorker(id); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	sc.balance("after " + id + " joined")
	return nil
}

// ownedBy returns the sessions a live worker owns.
func (sc *scenario) ownedBy(w string) []string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var out []string
	for s, o := range sc.owner {
		if o == w && sc.workers[w].alive {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// busiest returns the live worker owning the most sessions.
func (sc *scenario) busiest(except ...string) string {
	best, n := "", -1
	for _, id := range sc.order {
		if w := sc.workers[id]; w.alive && !slices.Contains(except, id) {
			if k := len(sc.ownedBy(id)); k > n {
				best, n = id, k
			}
		}
	}
	return best
}

// kill SIGKILLs the busiest owner: a crashed host.
func (sc *scenario) kill() {
	victim := sc.busiest()
	lost := sc.ownedBy(victim)
	sc.say("SIGKILL %s (owns %d sessions): a crashed host; the others take its share when its leases expire", victim, len(lost))
	sc.cuts = append(sc.cuts, cut{"SIGKILL", time.Since(sc.start), lost})
	_ = sc.workers[victim].cmd.Process.Signal(syscall.SIGKILL)
	sc.workers[victim].alive = false
	time.Sleep(demoTTL + 1500*time.Millisecond)
	sc.balance("after the SIGKILL")
}

// freeze SIGSTOPs the busiest owner past its lease, then resumes it: its
// next write must be refused.
func (sc *scenario) freeze() {
	frozen := sc.busiest()
	owned := sc.ownedBy(frozen)
	sc.say("SIGSTOP %s (owns %d sessions) for %v: a frozen VM; it loses its leases while frozen", frozen, len(owned), demoTTL+time.Second)
	sc.cuts = append(sc.cuts, cut{"freeze", time.Since(sc.start), owned})
	_ = sc.workers[frozen].cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(demoTTL + time.Second)
	_ = sc.workers[frozen].cmd.Process.Signal(syscall.SIGCONT)
	sc.say("SIGCONT %s: it resumes and tries to write", frozen)
	time.Sleep(1500 * time.Millisecond)
	sc.lastFrozen = frozen
	sc.balance("after the freeze")
}

// stopGracefully SIGTERMs the busiest owner (not the one just frozen): it
// releases, and a standby takes over at once.
func (sc *scenario) stopGracefully() {
	graceful := sc.busiest(sc.lastFrozen)
	owned := sc.ownedBy(graceful)
	sc.say("SIGTERM %s (owns %d sessions): a graceful stop; it hands them back and the others take over at once", graceful, len(owned))
	sc.cuts = append(sc.cuts, cut{"graceful stop", time.Since(sc.start), owned})
	_ = sc.workers[graceful].cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(1500 * time.Millisecond)
	sc.workers[graceful].alive = false
}

// stopAll stops the remaining workers and waits for every event.
func (sc *scenario) stopAll() {
	sc.say("stopping the remaining workers")
	for _, w := range sc.workers {
		if w.alive {
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	waited := make(chan struct{})
	go func() { sc.readers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		for _, w := range sc.workers {
			_ = w.cmd.Process.Kill()
		}
		<-waited
	}
	close(sc.events)
	<-sc.done
}

// killAll kills whatever worker is still running (on an early return).
func (sc *scenario) killAll() {
	for _, w := range sc.workers {
		if w.alive {
			_ = w.cmd.Process.Kill()
		}
	}
}

// verdict is what verify found.
type verdict struct {
	writes, refused, lost, interleaved int
}

// verify checks that every acknowledged write is in Redis and that no
// session saw two owners' accepted writes interleave; then it deletes the
// demo's sessions.
func (sc *scenario) verify(ctx context.Context, client redis.UniversalClient) (verdict, error) {
	type ack struct {
		tok string
		seq int64
	}
	var v verdict
	acks := map[string][]ack{}
	for _, e := range sc.log {
		switch e.Ev {
		case "write":
			acks[e.S] = append(acks[e.S], ack{e.Tok, e.Seq})
			v.writes++
		case "refused":
			v.refused++
		}
	}
	for _, name := range sc.names {
		st, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: sc.prefix, OpenExisting: true})
		if err != nil {
			return v, err
		}
		if err := st.Open(ctx); err != nil {
			return v, fmt.Errorf("verify %s: %w", name, err)
		}
		as := acks[name]
		sort.Slice(as, func(i, j int) bool { return as[i].seq < as[j].seq })
		ended := map[string]bool{}
		for i, a := range as {
			p, err := st.PeerByID(ctx, a.seq)
			if err != nil || p.AccessHash != storage.Some(tokenHash(a.tok)) {
				v.lost++
			}
			if i > 0 && as[i-1].tok != a.tok {
				ended[as[i-1].tok] = true
			}
			if ended[a.tok] {
				v.interleaved++
			}
		}
		_ = st.Delete(ctx)
		_ = st.Close()
		_ = client.Del(ctx, sc.prefix+":demo-seq:"+name).Err()
	}
	return v, nil
}

// report prints the takeover times and the verdict, and fails if an
// invariant does not hold.
func (sc *scenario) report(v verdict) error {
	out := sc.c.out
	fmt.Fprintln(out, "\nsummary")
	for _, ct := range sc.cuts {
		if len(ct.sessions) == 0 {
			continue
		}
		var worst time.Duration
		moved := 0
		for _, s := range ct.sessions {
			for _, e := range sc.log {
				if e.Ev == "own" && e.S == s && e.at > ct.at {
					worst = max(worst, e.at-ct.at)
					moved++
					break
				}
			}
		}
		fmt.Fprintf(out, "  after %-15s %d of %d sessions owned again, the last %.3fs later\n", ct.what+":", moved, len(ct.sessions), worst.Seconds())
	}
	fmt.Fprintf(out, "  sessions per worker: min=%d max=%d\n", sc.final[0], sc.final[1])
	fmt.Fprintf(out, "  writes accepted:                    %d\n", v.writes)
	fmt.Fprintf(out, "  writes refused from deposed owners: %d\n", v.refused)
	fmt.Fprintf(out, "  acknowledged writes lost:           %d\n", v.lost)
	fmt.Fprintf(out, "  writes of two owners interleaved:   %d\n", v.interleaved)
	switch {
	case v.lost != 0 || v.interleaved != 0:
		return errors.New("invariants violated: see the summary")
	case v.refused == 0:
		return errors.New("no write from a deposed owner was refused: the demo showed nothing")
	case v.writes == 0:
		return errors.New("no write was accepted")
	case sc.final[1]-sc.final[0] > 1:
		return fmt.Errorf("the live workers are not balanced: min=%d max=%d", sc.final[0], sc.final[1])
	}
	fmt.Fprintln(out, "  invariants: OK (one owner at a time, deposed owners refused, nothing acknowledged was lost)")
	return nil
}

func shortErr(s string) string {
	if i := strings.LastIndex(s, ": lock: "); i >= 0 {
		return s[i+2:]
	}
	return s
}
