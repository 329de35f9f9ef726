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

// demoWorker is one worker process: it competes for every session, and while
// it owns one writes fenced updates (a peer per write, and the date) every
// 100 ms, printing every accepted and refused write. SIGTERM closes its
// stores (handing them over).
func (c *cli) demoWorker(ctx context.Context, args []string) error {
	var f flags
	var id, sessions string
	fs := c.flagSet(&f, "(internal: run by tgsession demo)")
	fs.StringVar(&id, "id", "w", "worker id")
	fs.StringVar(&sessions, "sessions", "", "comma-separated session names")
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
	var wg sync.WaitGroup
	for _, name := range strings.Split(sessions, ",") {
		wg.Go(func() { ownAndWrite(ctx, client, f.prefix, id, name, emit) })
	}
	emit(event{Ev: "ready", W: id})
	wg.Wait()
	return nil
}

// ownAndWrite competes for one session until ctx ends; while it owns the
// session it writes every 100 ms until a write is refused.
func ownAndWrite(ctx context.Context, client redis.UniversalClient, prefix, id, name string, emit func(event)) {
	for ctx.Err() == nil {
		st, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Leased, Prefix: prefix, Lease: demoLease(id)})
		if err != nil {
			emit(event{Ev: "error", W: id, S: name, Err: err.Error()})
			return
		}
		if err := st.Open(ctx); err != nil {
			if ctx.Err() == nil {
				emit(event{Ev: "error", W: id, S: name, Err: err.Error()})
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		tok := st.Lease().Token()
		emit(event{Ev: "own", W: id, S: name, Tok: tok})
		for ctx.Err() == nil {
			seq, err := client.Incr(context.Background(), prefix+":demo-seq:"+name).Result()
			if err == nil {
				err = st.UpdatePeers(context.Background(), []storage.Peer{{ID: seq, AccessHash: storage.Some(tokenHash(tok)), Type: storage.PeerUser}})
			}
			if err == nil && seq%5 == 0 {
				err = st.SetDate(context.Background(), seq)
			}
			if err != nil {
				emit(event{Ev: "refused", W: id, S: name, Tok: tok, Seq: seq, Err: err.Error()})
				break
			}
			emit(event{Ev: "write", W: id, S: name, Tok: tok, Seq: seq})
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		_ = st.Close()
		if ctx.Err() != nil {
			emit(event{Ev: "release", W: id, S: name, Tok: tok})
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
	fs.IntVar(&nSessions, "sessions", 3, "sessions they compete for")
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
	fmt.Fprintf(c.out, "tgsession demo: %d worker processes compete for %d sessions on %s\n", nWorkers, nSessions, where)
	fmt.Fprintf(c.out, "lease TTL %v; every owner writes a fenced update every 100 ms\n\n", demoTTL)
	defer sc.killAll()

	if err := sc.startWorkers(nWorkers); err != nil {
		return err
	}
	sc.kill()
	sc.freeze()
	sc.stopGracefully()
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
			sc.say("%s owns %s (lease %s…)", e.W, e.S, e.Tok[:min(6, len(e.Tok))])
		case "refused":
			sc.say("%s write #%d to %s REFUSED: %s", e.W, e.Seq, e.S, shortErr(e.Err))
		case "release":
			sc.say("%s released %s", e.W, e.S)
		case "error":
			sc.say("%s: %s: %s", e.W, e.S, e.Err)
		}
		sc.mu.Unlock()
	}
}

// startWorker starts one worker process and reads its events.
func (sc *scenario) startWorker(id string) error {
	cmd := exec.Command(sc.self, "demo-worker", "--prefix", sc.prefix, "--id", id, "--sessions", strings.Join(sc.names, ","),
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

// startWorkers is the first phase: n workers, then time for them to own.
func (sc *scenario) startWorkers(n int) error {
	for i := 1; i <= n; i++ {
		if err := sc.startWorker(fmt.Sprintf("w%d", i)); err != nil {
			return err
		}
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond)
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
	sc.say("SIGKILL %s (owns %v): a crashed host; standbys take over when its lease expires", victim, lost)
	sc.cuts = append(sc.cuts, cut{"SIGKILL", time.Since(sc.start), lost})
	_ = sc.workers[victim].cmd.Process.Signal(syscall.SIGKILL)
	sc.workers[victim].alive = false
	time.Sleep(demoTTL + 1500*time.Millisecond)
}

// freeze SIGSTOPs the busiest owner past its lease, then resumes it: its
// next write must be refused.
func (sc *scenario) freeze() {
	frozen := sc.busiest()
	owned := sc.ownedBy(frozen)
	sc.say("SIGSTOP %s (owns %v) for %v: a frozen VM; it loses its lease while frozen", frozen, owned, demoTTL+time.Second)
	sc.cuts = append(sc.cuts, cut{"freeze", time.Since(sc.start), owned})
	_ = sc.workers[frozen].cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(demoTTL + time.Second)
	_ = sc.workers[frozen].cmd.Process.Signal(syscall.SIGCONT)
	sc.say("SIGCONT %s: it resumes and tries to write", frozen)
	time.Sleep(1500 * time.Millisecond)
	sc.lastFrozen = frozen
}

// stopGracefully SIGTERMs the busiest owner (not the one just frozen): it
// releases, and a standby takes over at once.
func (sc *scenario) stopGracefully() {
	graceful := sc.busiest(sc.lastFrozen)
	owned := sc.ownedBy(graceful)
	sc.say("SIGTERM %s (owns %v): a graceful stop; it releases and a standby takes over at once", graceful, owned)
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
		var times []string
		for _, s := range ct.sessions {
			for _, e := range sc.log {
				if e.Ev == "own" && e.S == s && e.at > ct.at {
					times = append(times, fmt.Sprintf("%s %.3fs", s, (e.at-ct.at).Seconds()))
					break
				}
			}
		}
		fmt.Fprintf(out, "  takeover after %-13s %s\n", ct.what+":", strings.Join(times, ", "))
	}
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
