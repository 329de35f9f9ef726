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
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// event is one line a demo worker prints on stdout.
type event struct {
	Ev    string `json:"ev"` // own, write, refused, release, ready
	W     string `json:"w"`
	S     string `json:"s,omitempty"`
	Tok   string `json:"tok,omitempty"`
	Seq   int64  `json:"seq,omitempty"`
	Err   string `json:"err,omitempty"`
	at    time.Duration
	first bool
}

// tokenHash is the access hash a worker writes: it identifies the owner term.
func tokenHash(tok string) int64 {
	h := fnv.New64a()
	h.Write([]byte(tok))
	return int64(h.Sum64() >> 1)
}

const demoTTL = 2 * time.Second

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
	client, _, err := connect(f.redis)
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				st, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Leased, Prefix: f.prefix,
					Lease: lock.Options{TTL: demoTTL, RenewEvery: 400 * time.Millisecond, PollInterval: 500 * time.Millisecond, WorkerID: id}})
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
					seq, err := client.Incr(context.Background(), f.prefix+":demo-seq:"+name).Result()
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
		}()
	}
	emit(event{Ev: "ready", W: id})
	wg.Wait()
	return nil
}

type worker struct {
	id    string
	cmd   *exec.Cmd
	alive bool
}

// demo runs the multi-process demo and checks its invariants.
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
	url := f.redis
	where := "Redis at " + redact(url)
	if url == "" {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return fmt.Errorf("start embedded Redis: %w", err)
		}
		defer m.Close()
		url = "redis://" + m.Addr()
		where = "embedded Redis (miniredis) at " + m.Addr()
		// miniredis expires keys only when told time passed: keep its clock real.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		go func() {
			last := time.Now()
			for now := range tick.C {
				m.FastForward(now.Sub(last))
				last = now
			}
		}()
	}
	client, _, err := connect(url)
	if err != nil {
		return exitError{2, err}
	}
	defer client.Close()
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	prefix := f.prefix
	if prefix == "tgsession" {
		prefix = "tgsession-demo"
	}
	prefix += ":" + hex.EncodeToString(run)
	var names []string
	for i := 1; i <= nSessions; i++ {
		names = append(names, fmt.Sprintf("account-%d", i))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "tgsession demo: %d worker processes compete for %d sessions on %s\n", nWorkers, nSessions, where)
	fmt.Fprintf(c.out, "lease TTL %v; every owner writes a fenced update every 100 ms\n\n", demoTTL)

	start := time.Now()
	events := make(chan event, 1024)
	var readers sync.WaitGroup
	workers := map[string]*worker{}
	var order []string
	say := func(format string, args ...any) {
		fmt.Fprintf(c.out, "%6.2fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	startWorker := func(id string) error {
		cmd := exec.Command(self, "demo-worker", "--redis", url, "--prefix", prefix, "--id", id, "--sessions", strings.Join(names, ","))
		cmd.Stderr = c.errOut
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		workers[id] = &worker{id: id, cmd: cmd, alive: true}
		order = append(order, id)
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var e event
				if json.Unmarshal(sc.Bytes(), &e) == nil {
					e.at = time.Since(start)
					events <- e
				}
			}
			_ = cmd.Wait()
		}()
		say("worker %s started (pid %d)", id, cmd.Process.Pid)
		return nil
	}
	defer func() {
		for _, w := range workers {
			if w.alive {
				_ = w.cmd.Process.Kill()
			}
		}
	}()

	owner := map[string]string{} // session -> worker
	var log []event
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			mu.Lock()
			log = append(log, e)
			switch e.Ev {
			case "own":
				owner[e.S] = e.W
				say("%s owns %s (lease %s…)", e.W, e.S, e.Tok[:6])
			case "refused":
				say("%s write #%d to %s REFUSED: %s", e.W, e.Seq, e.S, shortErr(e.Err))
			case "release":
				say("%s released %s", e.W, e.S)
			case "error":
				say("%s: %s: %s", e.W, e.S, e.Err)
			}
			mu.Unlock()
		}
	}()
	ownedBy := func(w string) []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for s, o := range owner {
			if o == w && workers[w].alive {
				out = append(out, s)
			}
		}
		sort.Strings(out)
		return out
	}
	busiest := func(except ...string) string {
		best, n := "", -1
		for _, id := range order {
			if w := workers[id]; w.alive && !slices.Contains(except, id) {
				if k := len(ownedBy(id)); k > n {
					best, n = id, k
				}
			}
		}
		return best
	}

	type cut struct {
		what     string
		at       time.Duration
		sessions []string
	}
	var cuts []cut
	for i := 1; i <= nWorkers; i++ {
		if err := startWorker(fmt.Sprintf("w%d", i)); err != nil {
			return err
		}
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond)

	victim := busiest()
	lost := ownedBy(victim)
	say("SIGKILL %s (owns %v): a crashed host; standbys take over when its lease expires", victim, lost)
	cuts = append(cuts, cut{"SIGKILL", time.Since(start), lost})
	_ = workers[victim].cmd.Process.Signal(syscall.SIGKILL)
	workers[victim].alive = false
	time.Sleep(demoTTL + 1500*time.Millisecond)

	frozen := busiest()
	fz := ownedBy(frozen)
	say("SIGSTOP %s (owns %v) for %v: a frozen VM; it loses its lease while frozen", frozen, fz, demoTTL+time.Second)
	cuts = append(cuts, cut{"freeze", time.Since(start), fz})
	_ = workers[frozen].cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(demoTTL + time.Second)
	_ = workers[frozen].cmd.Process.Signal(syscall.SIGCONT)
	say("SIGCONT %s: it resumes and tries to write", frozen)
	time.Sleep(1500 * time.Millisecond)

	graceful := busiest(frozen)
	gs := ownedBy(graceful)
	say("SIGTERM %s (owns %v): a graceful stop; it releases and a standby takes over at once", graceful, gs)
	cuts = append(cuts, cut{"graceful stop", time.Since(start), gs})
	_ = workers[graceful].cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(1500 * time.Millisecond)
	workers[graceful].alive = false

	say("stopping the remaining workers")
	for _, w := range workers {
		if w.alive {
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	waited := make(chan struct{})
	go func() { readers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		for _, w := range workers {
			_ = w.cmd.Process.Kill()
		}
		<-waited
	}
	close(events)
	<-done

	// Check: every acknowledged write is in Redis, and no session saw two
	// owners' accepted writes interleave.
	type ack struct {
		tok string
		seq int64
	}
	acks := map[string][]ack{}
	refused, writes := 0, 0
	for _, e := range log {
		switch e.Ev {
		case "write":
			acks[e.S] = append(acks[e.S], ack{e.Tok, e.Seq})
			writes++
		case "refused":
			refused++
		}
	}
	lostWrites, interleaved := 0, 0
	for _, name := range names {
		st, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix, OpenExisting: true})
		if err != nil {
			return err
		}
		if err := st.Open(ctx); err != nil {
			return fmt.Errorf("verify %s: %w", name, err)
		}
		as := acks[name]
		sort.Slice(as, func(i, j int) bool { return as[i].seq < as[j].seq })
		ended := map[string]bool{}
		for i, a := range as {
			p, err := st.PeerByID(ctx, a.seq)
			if err != nil || p.AccessHash != storage.Some(tokenHash(a.tok)) {
				lostWrites++
			}
			if i > 0 && as[i-1].tok != a.tok {
				ended[as[i-1].tok] = true
			}
			if ended[a.tok] {
				interleaved++
			}
		}
		_ = st.Delete(ctx)
		_ = st.Close()
		_ = client.Del(ctx, prefix+":demo-seq:"+name).Err()
	}

	// Takeover times: from each cut to the next owner of each session it freed.
	fmt.Fprintln(c.out, "\nsummary")
	for _, ct := range cuts {
		var times []string
		for _, s := range ct.sessions {
			for _, e := range log {
				if e.Ev == "own" && e.S == s && e.at > ct.at {
					times = append(times, fmt.Sprintf("%s %.3fs", s, (e.at-ct.at).Seconds()))
					break
				}
			}
		}
		fmt.Fprintf(c.out, "  takeover after %-13s %s\n", ct.what+":", strings.Join(times, ", "))
	}
	fmt.Fprintf(c.out, "  writes accepted:                    %d\n", writes)
	fmt.Fprintf(c.out, "  writes refused from deposed owners: %d\n", refused)
	fmt.Fprintf(c.out, "  acknowledged writes lost:           %d\n", lostWrites)
	fmt.Fprintf(c.out, "  writes of two owners interleaved:   %d\n", interleaved)
	switch {
	case lostWrites != 0 || interleaved != 0:
		return errors.New("invariants violated: see the summary")
	case refused == 0:
		return errors.New("no write from a deposed owner was refused: the demo showed nothing")
	case writes == 0:
		return errors.New("no write was accepted")
	}
	fmt.Fprintln(c.out, "  invariants: OK (one owner at a time, deposed owners refused, nothing acknowledged was lost)")
	return nil
}

func shortErr(s string) string {
	if i := strings.LastIndex(s, ": lock: "); i >= 0 {
		return s[i+2:]
	}
	return s
}
