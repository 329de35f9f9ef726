package fleet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/internal/redistest"
)

// procs runs worker processes and collects their acknowledged writes.
type procs struct {
	t      *testing.T
	bin    string // the worker binary (internal/scaleworker)
	addr   string
	prefix string
	mu     sync.Mutex
	acks   map[string][]int64 // session -> acknowledged values, in arrival order
	stats  map[string][2]int  // worker -> latest goroutines, owned sessions
	cmds   map[string]*exec.Cmd
	wg     sync.WaitGroup
}

func (p *procs) start(id string) {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.addr, p.prefix, id)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmds[id] = cmd
	p.wg.Go(func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "stat" {
				g, _ := strconv.Atoi(f[1])
				o, _ := strconv.Atoi(f[2])
				p.mu.Lock()
				p.stats[id] = [2]int{g, o}
				p.mu.Unlock()
				continue
			}
			if len(f) != 3 || f[0] != "ack" {
				continue
			}
			v, _ := strconv.ParseInt(f[2], 10, 64)
			p.mu.Lock()
			p.acks[f[1]] = append(p.acks[f[1]], v)
			p.mu.Unlock()
		}
		_ = cmd.Wait()
	})
}

// owners reads every session's owner (fleet.Owners).
func owners(t *testing.T, c *redis.Client, prefix string) map[string]string {
	t.Helper()
	own, err := Owners(context.Background(), c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return own
}

func loadsOf(own map[string]string) map[string]int {
	l := map[string]int{}
	for _, w := range own {
		l[w]++
	}
	return l
}

// waitBalanced waits until all n sessions have an owner among workers, each
// within [lo, hi], and returns the time it took and the ownership.
func waitBalanced(t *testing.T, c *redis.Client, prefix string, names, workers []string, lo, hi int, limit time.Duration) (time.Duration, map[string]string) {
	t.Helper()
	begin := time.Now()
	for {
		own := owners(t, c, prefix)
		l := loadsOf(own)
		ok := len(own) == len(names)
		for _, w := range workers {
			ok = ok && l[w] >= lo && l[w] <= hi
		}
		for w := range l {
			ok = ok && slices.Contains(workers, w)
		}
		if ok {
			return time.Since(begin), own
		}
		if time.Since(begin) > limit {
			t.Fatalf("after %v: %d of %d owned, loads %v (want %d-%d for %v)", limit, len(own), len(names), l, lo, hi, workers)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFleetScale: 1,000 sessions, 8 worker processes on a real
// redis-server: balance at start (±10%), a SIGKILLed worker's sessions
// re-owned within the lease TTL + 2 s (balance ±15%), a 9th worker reaching
// its share within 5 s with at most 1.3 × M/9 sessions changing owner, and
// no session ever acknowledged twice at one value (two owners at once) or
// losing an acknowledged write.
func TestFleetScale(t *testing.T) {
	redistest.Require(t)
	srv, err := redistest.Start() // its own server: the figures are not blurred by other tests
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	prefix := "scale"
	const m = 1000
	names := make([]string, m)
	for i := range names {
		names[i] = fmt.Sprintf("acct-%04d", i)
		st, err := redisstore.New(c, names[i], redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The workers are a binary of their own, built without the race
	// detector: eight race-instrumented processes on a 2-core CI machine
	// would measure the machine, not the fleet.
	bin := filepath.Join(t.TempDir(), "scaleworker")
	if out, err := exec.Command("go", "build", "-o", bin, "./internal/scaleworker").CombinedOutput(); err != nil {
		t.Fatalf("go build ./internal/scaleworker: %v\n%s", err, out)
	}
	p := &procs{t: t, bin: bin, addr: srv.Addr, prefix: prefix, acks: map[string][]int64{}, stats: map[string][2]int{}, cmds: map[string]*exec.Cmd{}}
	defer func() {
		for _, cmd := range p.cmds {
			_ = cmd.Process.Kill()
		}
	}()
	workers := []string{"w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"}
	for _, w := range workers {
		p.start(w)
	}
	took, own := waitBalanced(t, c, prefix, names, workers, 113, 137, 30*time.Second)
	t.Logf("(a) 8 workers own all %d sessions within ±10%% of 125 after %v: %v", m, took.Round(time.Millisecond), loadsOf(own))

	// (d) connections and goroutines per worker at 125 owned sessions.
	time.Sleep(600 * time.Millisecond) // a stat line after the balance
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	conns := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		for _, f := range strings.Fields(line) {
			if name, ok := strings.CutPrefix(f, "name="); ok && name != "" {
				conns[name]++
			}
		}
	}
	p.mu.Lock()
	t.Logf("(d) at 125 owned sessions each: Redis connections per worker (CLIENT LIST, name=worker) %v; goroutines, owned per worker %v (one handler goroutine per owned session is the application's; the rest is the worker's)", conns, p.stats)
	p.mu.Unlock()

	// (e) idle cost: server commands per second per owned session, handlers
	// idle (no writes), once the start's handovers are over.
	time.Sleep(2 * time.Second)
	evsub := c.Subscribe(ctx, EventsChannel(prefix))
	defer evsub.Close()
	evs := evsub.Channel()
	events := map[string]int{}
	var evMu sync.Mutex
	go func() {
		for m := range evs {
			evMu.Lock()
			events[strings.Fields(m.Payload)[0]]++
			evMu.Unlock()
		}
	}()
	before, _ := c.Info(ctx, "stats").Result()
	statsBefore, _ := c.Info(ctx, "commandstats").Result()
	time.Sleep(3 * time.Second)
	after, _ := c.Info(ctx, "stats").Result()
	statsAfter, _ := c.Info(ctx, "commandstats").Result()
	cmds := field(after, "total_commands_processed") - field(before, "total_commands_processed")
	evMu.Lock()
	t.Logf("(e) idle, calls per second by command: %s; fleet events meanwhile: %v", callRates(statsBefore, statsAfter, 3), events)
	evMu.Unlock()
	t.Logf("(e) idle: %.0f server commands/s for %d owned sessions = %.2f per session per second (INFO total_commands_processed counts the commands a script calls too: a renewal is EVALSHA + GET + PEXPIRE every TTL/3; each worker heartbeats and reads the registry every 250 ms)",
		cmds/3, m, cmds/3/m)
	for _, cmd := range p.cmds {
		_ = cmd.Process.Signal(syscall.SIGUSR1) // start writing
	}
	time.Sleep(time.Second)

	// (b) SIGKILL one worker.
	_ = p.cmds["w8"].Process.Kill()
	killed := time.Now()
	survivors := workers[:7]
	took, own = waitBalanced(t, c, prefix, names, survivors, 1000/7*85/100, 1000/7*115/100+1, 4*time.Second+10*time.Second)
	t.Logf("(b) w8 SIGKILLed: all sessions re-owned within ±15%% of 143 after %v (lease TTL 2 s): %v", time.Since(killed).Round(time.Millisecond), loadsOf(own))
	if d := time.Since(killed); d > 4*time.Second {
		t.Errorf("re-owning took %v; want ≤ TTL + 2 s", d)
	}

	// (c) a 9th worker (the 8th live one).
	p.start("w9")
	joined := time.Now()
	live := append(append([]string(nil), survivors...), "w9")
	_, own2 := waitBalanced(t, c, prefix, names, live, 113, 137, 5*time.Second)
	moved := 0
	for s, w := range own2 {
		if own[s] != w {
			moved++
		}
	}
	t.Logf("(c) w9 joins: its share (%d) within %v; %d sessions changed owner (limit from the issue: 1.3 × M/9 = %d)",
		loadsOf(own2)["w9"], time.Since(joined).Round(time.Millisecond), moved, 1300/9)
	if moved > 1300/9 {
		t.Errorf("%d sessions changed owner; want ≤ %d", moved, 1300/9)
	}

	// Stop everyone gracefully, then (f): no value acknowledged twice, and
	// every session's final value is its highest acknowledged one.
	for id, cmd := range p.cmds {
		if id != "w8" {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	dup, lost, total := 0, 0, 0
	for _, n := range names {
		seen := map[int64]bool{}
		var hi int64
		for _, v := range p.acks[n] {
			dup += map[bool]int{true: 1}[seen[v]]
			seen[v] = true
			hi = max(hi, v)
			total++
		}
		st, _ := redisstore.New(c, n, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix, OpenExisting: true})
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if v, _ := st.Date(ctx); v < hi {
			lost++
		}
	}
	t.Logf("(f) %d acknowledged writes: values acknowledged twice (two owners at once) %d, sessions whose final value is below an acknowledged one %d", total, dup, lost)
	if dup != 0 || lost != 0 || total == 0 {
		t.Errorf("fenced sequence check failed")
	}
}

func field(info, name string) float64 {
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// callRates returns "cmd=calls/s" for the commands whose calls grew
// between two INFO commandstats replies, busiest first.
func callRates(before, after string, seconds float64) string {
	calls := func(info string) map[string]float64 {
		out := map[string]float64{}
		for _, l := range strings.Split(info, "\r\n") {
			name, rest, ok := strings.Cut(strings.TrimPrefix(l, "cmdstat_"), ":calls=")
			if !ok {
				continue
			}
			n, _ := strconv.ParseFloat(strings.Split(rest, ",")[0], 64)
			out[name] = n
		}
		return out
	}
	b, a := calls(before), calls(after)
	type rate struct {
		name string
		v    float64
	}
	var rs []rate
	for n, v := range a {
		if d := v - b[n]; d > 0 {
			rs = append(rs, rate{n, d / seconds})
		}
	}
	slices.SortFunc(rs, func(x, y rate) int { return int(y.v - x.v) })
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s=%.0f", r.name, r.v))
	}
	return strings.Join(parts, " ")
}
