package redisstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// workerEnv makes the test binary run as a worker process (crash test).
const workerEnv = "TGSESSION_TEST_WORKER"

// workerMain is a worker process: it opens the session named in the
// environment with a lease, prints "OWNED", and holds it until killed.
func workerMain() int {
	f := strings.Fields(os.Getenv(workerEnv)) // addr prefix name ttl
	if len(f) != 4 {
		fmt.Fprintln(os.Stderr, "bad", workerEnv)
		return 2
	}
	ttl, _ := time.ParseDuration(f[3])
	c := redis.NewClient(&redis.Options{Addr: f[0]})
	s, err := New(c, f[2], Options{Mode: Leased, Create: true, Prefix: f[1], Lease: lock.Options{TTL: ttl, WorkerID: "crash-worker"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.SetDCID(ctx, storage.Some(4)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("OWNED")
	select {} // hold (and renew) until SIGKILL
}

func leaseStore(t *testing.T, c redis.UniversalClient, prefix, name string, o lock.Options) *Store {
	t.Helper()
	s, err := New(c, name, Options{Mode: Leased, Create: true, Prefix: prefix, Lease: o})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestLeaseOwnership: one owner at a time; a standby's Open waits; unfenced
// tools are refused while a worker owns the session; owner metadata is
// readable; a force-released owner's writes are refused.
func TestLeaseOwnership(t *testing.T) {
	for _, b := range deploymentBackends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			prefix, name := b.prefix+"own-"+redistest.TempName(t), "acct"
			o := lock.Options{TTL: 5 * time.Second, WorkerID: "worker-a"}
			a := leaseStore(t, c, prefix, name, o)
			if err := a.Open(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.SetAPIID(ctx, storage.Some[int64](1)); err != nil {
				t.Fatal(err)
			}
			info, err := lock.Inspect(ctx, c, a.keys.lease)
			if err != nil || !info.Held || info.Owner.WorkerID != "worker-a" {
				t.Errorf("Inspect = %+v, %v", info, err)
			}

			// A standby cannot open while A owns the session.
			b2 := leaseStore(t, c, prefix, name, lock.Options{TTL: 5 * time.Second, WorkerID: "worker-b"})
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			err = b2.Open(short)
			cancel()
			if !errors.Is(err, lock.ErrHeld) {
				t.Errorf("standby Open while owned: %v; want ErrHeld", err)
			}

			// An unfenced tool can read, but not write behind the owner's back.
			tool, _ := New(c, name, Options{Mode: Unfenced, Prefix: prefix})
			if err := tool.Open(ctx); err != nil {
				t.Fatalf("unfenced Open of an existing session: %v", err)
			}
			if v, err := tool.APIID(ctx); err != nil || v != storage.Some[int64](1) {
				t.Errorf("unfenced read = %v, %v", v, err)
			}
			if err := tool.SetAPIID(ctx, storage.Some[int64](2)); !errors.Is(err, lock.ErrHeld) {
				t.Errorf("unfenced write while owned: %v; want ErrHeld", err)
			}
			if err := tool.Delete(ctx); !errors.Is(err, lock.ErrHeld) {
				t.Errorf("unfenced Delete while owned: %v; want ErrHeld", err)
			}

			// Operator force-release: A is deposed; its writes are refused.
			shown, ierr := lock.Inspect(ctx, c, a.keys.lease)
			if ierr != nil {
				t.Fatal(ierr)
			}
			if ok, err := lock.ForceRelease(ctx, c, a.keys.lease, shown); !ok || err != nil {
				t.Fatalf("ForceRelease = %v, %v", ok, err)
			}
			if err := a.UpdatePeers(ctx, []storage.Peer{{ID: 1, Type: storage.PeerUser}}); !errors.Is(err, lock.ErrLeaseLost) {
				t.Errorf("write after force-release: %v; want ErrLeaseLost", err)
			}
			if err := b2.Open(ctx); err != nil {
				t.Fatalf("standby Open after force-release: %v", err)
			}
			if err := b2.SetAPIID(ctx, storage.Some[int64](3)); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Errorf("Close of a deposed store: %v", err)
			}
			if err := b2.Close(); err != nil {
				t.Fatal(err)
			}
			// With nobody owning it, the unfenced tool may write and delete.
			if err := tool.SetAPIID(ctx, storage.Some[int64](4)); err != nil {
				t.Errorf("unfenced write with no owner: %v", err)
			}
			if err := tool.Delete(ctx); err != nil {
				t.Errorf("unfenced Delete with no owner: %v", err)
			}
		})
	}
}

// TestFencing: owner A freezes (stops renewing, its writes held back), its
// lease expires, B acquires and writes, A resumes: every write of A is
// refused, both the ones A issues now (its own deadline passed) and the ones
// that were in flight with A's token (refused inside the scripts). The data
// holds only B's writes.
func TestFencing(t *testing.T) {
	ctx := context.Background()
	c := realBackend().client(t)
	prefix, name := "fence-"+redistest.TempName(t), "acct"
	o := lock.Options{TTL: 500 * time.Millisecond, RenewEvery: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond}
	a := leaseStore(t, c, prefix, name, o)
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSession(ctx, storage.Session{DCID: storage.Some(1), APIID: storage.Some[int64](111)}); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdatePeers(ctx, []storage.Peer{{ID: 1, AccessHash: storage.Some[int64](111), Type: storage.PeerUser, Usernames: []string{"from_a"}}}); err != nil {
		t.Fatal(err)
	}

	// Freeze A: no more renewals; its next writes are "in flight" with its token.
	tokenA := a.Lease().Token()
	a.Lease().Abandon()

	b := leaseStore(t, c, prefix, name, o)
	if err := b.Open(ctx); err != nil { // waits until A's lease expires in Redis
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetSession(ctx, storage.Session{DCID: storage.Some(2), APIID: storage.Some[int64](222), Date: 7}); err != nil {
		t.Fatal(err)
	}
	if err := b.UpdatePeers(ctx, []storage.Peer{{ID: 2, AccessHash: storage.Some[int64](222), Type: storage.PeerUser, Usernames: []string{"from_b"}}}); err != nil {
		t.Fatal(err)
	}

	// A resumes.
	apiWrites := map[string]error{
		"SetAPIID":    a.SetAPIID(ctx, storage.Some[int64](999)),
		"SetSession":  a.SetSession(ctx, storage.Session{DCID: storage.Some(5)}),
		"UpdatePeers": a.UpdatePeers(ctx, []storage.Peer{{ID: 3, Type: storage.PeerUser}}),
		"Save":        a.Save(ctx),
	}
	inFlight := map[string]error{
		"set_fields":   a.setFields(ctx, tokenA, storage.Session{APIID: storage.Some[int64](999), AuthKey: make(storage.AuthKey, 256)}, storage.AllFields),
		"update_peers": a.updatePeers(ctx, tokenA, []storage.Peer{{ID: 2, AccessHash: storage.Some[int64](999), Type: storage.PeerUser, Usernames: []string{"from_a"}, LastUpdateOn: 1}}),
		"delete":       a.deleteSession(ctx, tokenA),
		"import": func() error {
			_, err := storage.ImportSessionString(ctx, a, "AQAAMDkAAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn-AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq-wsbKztLW2t7i5uru8vb6_wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t_g4eLj5OXm5-jp6uvs7e7v8PHy8_T19vf4-fr7_P3-_wAAAAAuUBS7AA")
			return err
		}(),
	}
	for what, err := range apiWrites {
		if !errors.Is(err, lock.ErrLeaseLost) {
			t.Errorf("A's %s after resuming: %v; want ErrLeaseLost", what, err)
		}
	}
	for what, err := range inFlight {
		if !errors.Is(err, lock.ErrLeaseLost) {
			t.Errorf("A's in-flight %s: %v; want ErrLeaseLost (refused inside the script)", what, err)
		}
	}

	// Only B's writes are there.
	got, err := b.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.DCID != storage.Some(2) || got.APIID != storage.Some[int64](222) || got.Date != 7 || got.AuthKey != nil {
		t.Errorf("session = %v; want B's writes only", got)
	}
	if p, err := b.PeerByID(ctx, 2); err != nil || p.AccessHash != storage.Some[int64](222) || p.Username() != "from_b" {
		t.Errorf("peer 2 = %+v, %v; want B's", p, err)
	}
	if p, err := b.PeerByUsername(ctx, "from_a"); err != nil || p.ID != 1 {
		t.Errorf("A's pre-freeze peer = %+v, %v; want intact", p, err)
	}
	if _, err := b.PeerByID(ctx, 3); !errors.Is(err, storage.ErrPeerNotFound) {
		t.Errorf("A's refused peer 3 exists: %v", err)
	}
}

// startWorker starts the test binary as a worker process for the session and
// returns it with a reader of its stdout; the worker prints "OWNED" once it
// holds the lease and has written.
func startWorker(t *testing.T, addr, prefix, name string, ttl time.Duration) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s", workerEnv, addr, prefix, name, ttl))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

// TestCrashTakeover: a worker PROCESS holds the session and is killed with
// SIGKILL; a standby PROCESS, already waiting, takes over once Redis expires
// the lease. Times (SIGKILL -> the standby reports it owns the session and
// has written) are logged, median over 5 runs, not asserted.
func TestCrashTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	srv := redistest.Require(t)
	c := realBackend().client(t)
	ctx := context.Background()
	const ttl = 2 * time.Second
	var times []time.Duration
	for run := 0; run < 5; run++ {
		prefix, name := "crash-"+redistest.TempName(t), "acct"
		worker, wout := startWorker(t, srv.Addr, prefix, name, ttl)
		if line, err := wout.ReadString('\n'); err != nil || line != "OWNED\n" {
			t.Fatalf("worker: %q, %v", line, err)
		}
		standby, sout := startWorker(t, srv.Addr, prefix, name, ttl)
		owned := make(chan time.Time, 1)
		go func() {
			if line, err := sout.ReadString('\n'); err == nil && line == "OWNED\n" {
				owned <- time.Now()
			}
			close(owned)
		}()
		time.Sleep(200 * time.Millisecond) // the standby is waiting in Open
		killed := time.Now()
		if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = worker.Wait()
		select {
		case at, ok := <-owned:
			if !ok {
				t.Fatalf("run %d: the standby exited without taking over", run)
			}
			times = append(times, at.Sub(killed))
		case <-time.After(ttl + 30*time.Second):
			t.Fatalf("run %d: the standby never took over", run)
		}
		info, err := lock.Inspect(ctx, c, newKeys(prefix, name).lease)
		if err != nil || !info.Held || info.Owner.PID != standby.Process.Pid {
			t.Errorf("run %d: owner after takeover = %+v, %v; want the standby (pid %d)", run, info, err, standby.Process.Pid)
		}
		_ = standby.Process.Kill()
		_ = standby.Wait()
	}
	t.Logf("crash takeover with TTL %v (SIGKILL -> standby process owns and has written): median %v, all %v", ttl, median(times), times)
}

// TestGracefulHandover: owner Close -> waiting standby owns it. 20 runs; the
// median is logged, not asserted.
func TestGracefulHandover(t *testing.T) {
	for _, b := range deploymentBackends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			// TTL and poll interval of a minute: only the release announcement can
			// wake the standby inside its 20 s context.
			o := lock.Options{TTL: time.Minute, PollInterval: time.Minute}
			var times []time.Duration
			for run := 0; run < 20; run++ {
				prefix := b.prefix + "handover-" + redistest.TempName(t)
				owner := leaseStore(t, c, prefix, "acct", o)
				if err := owner.Open(ctx); err != nil {
					t.Fatal(err)
				}
				standby := leaseStore(t, c, prefix, "acct", o)
				opened := make(chan time.Time, 1)
				errs := make(chan error, 1)
				go func() {
					octx, cancel := context.WithTimeout(ctx, 20*time.Second)
					defer cancel()
					if err := standby.Open(octx); err != nil {
						errs <- err
						return
					}
					opened <- time.Now()
				}()
				time.Sleep(30 * time.Millisecond) // let the standby wait
				released := time.Now()
				if err := owner.Close(); err != nil {
					t.Fatal(err)
				}
				select {
				case at := <-opened:
					times = append(times, at.Sub(released))
				case err := <-errs:
					t.Fatalf("run %d: %v", run, err)
				}
				_ = standby.Delete(ctx)
				_ = standby.Close()
			}
			t.Logf("graceful handover on %s (Close -> standby owns), 20 runs: median %v, max %v", b.name, median(times), slices.Max(times))
		})
	}
}

// TestLeaseTorture: N workers x M sessions with random kills (stop renewing,
// no release), freezes (stop renewing, then send writes with the stale token
// as if they had been in flight) and graceful closes, for a bounded time.
// Every accepted write records (owner token, sequence). Per session, the
// accepted writes in sequence order never interleave two owners, and every
// acknowledged write is in Redis at the end.
func TestLeaseTorture(t *testing.T) {
	c := realBackend().client(t)
	const workers, sessions = 3, 4
	duration := 8 * time.Second
	if testing.Short() {
		duration = 2 * time.Second
	}
	prefix := "torture-" + redistest.TempName(t)
	o := lock.Options{TTL: 400 * time.Millisecond, RenewEvery: 100 * time.Millisecond, SafetyMargin: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond}

	type write struct {
		token string
		seq   int64
	}
	var (
		mu       sync.Mutex
		accepted = make([][]write, sessions)
		seqs     = make([]atomic.Int64, sessions)
		stats    struct{ writes, refused, kills, freezes, closes, staleAccepted atomic.Int64 }
	)
	accept := func(sess int, token string, seq int64) {
		mu.Lock()
		accepted[sess] = append(accepted[sess], write{token, seq})
		mu.Unlock()
	}
	name := func(i int) string { return "s" + strconv.Itoa(i) }
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		for sess := 0; sess < sessions; sess++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), uint64(sess)))
				for time.Now().Before(deadline) {
					ctx, cancel := context.WithDeadline(context.Background(), deadline)
					s := leaseStore(t, c, prefix, name(sess), o)
					if err := s.Open(ctx); err != nil {
						cancel()
						continue // the deadline came while waiting
					}
					token := s.Lease().Token()
					writeOnce := func(tok string, viaAPI bool) error {
						seq := seqs[sess].Add(1)
						p := []storage.Peer{{ID: seq, AccessHash: storage.Some(seq*7 + 1), Type: storage.PeerUser}}
						var err error
						if viaAPI {
							err = s.UpdatePeers(ctx, p)
						} else {
							p[0].LastUpdateOn = time.Now().Unix()
							err = s.updatePeers(ctx, tok, p)
						}
						if err == nil {
							accept(sess, tok, seq)
						}
						return err
					}
					for n := 1 + rng.IntN(20); n > 0; n-- {
						if err := writeOnce(token, true); err != nil {
							stats.refused.Add(1)
							break
						}
						stats.writes.Add(1)
						time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
					}
					switch rng.IntN(3) {
					case 0: // crash
						s.Lease().Abandon()
						stats.kills.Add(1)
					case 1: // freeze past the TTL, then writes that were in flight arrive
						s.Lease().Abandon()
						time.Sleep(o.TTL + time.Duration(rng.IntN(200))*time.Millisecond)
						for range 3 {
							if writeOnce(token, false) == nil {
								stats.staleAccepted.Add(1) // possible only if nobody took over meanwhile
							}
							if err := writeOnce(token, true); !errors.Is(err, lock.ErrLeaseLost) {
								t.Errorf("API write after a freeze: %v; want ErrLeaseLost", err)
							}
						}
						stats.freezes.Add(1)
					case 2:
						_ = s.Close()
						stats.closes.Add(1)
					}
					cancel()
				}
			}()
		}
	}
	wg.Wait()

	ctx := context.Background()
	for sess := 0; sess < sessions; sess++ {
		ws := accepted[sess]
		slices.SortFunc(ws, func(a, b write) int { return int(a.seq - b.seq) })
		ended := map[string]bool{}
		for i, w := range ws {
			if i > 0 && ws[i-1].token != w.token {
				ended[ws[i-1].token] = true
			}
			if ended[w.token] {
				t.Errorf("session %d: owner %s wrote seq %d after another owner's writes: interleaved", sess, w.token[:6], w.seq)
			}
		}
		// No acknowledged write is lost.
		reader, _ := New(c, name(sess), Options{Mode: Unfenced, Prefix: prefix})
		if err := reader.Open(ctx); err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			p, err := reader.PeerByID(ctx, w.seq)
			if err != nil || p.AccessHash != storage.Some(w.seq*7+1) {
				t.Errorf("session %d: acknowledged write %d lost: %+v, %v", sess, w.seq, p, err)
			}
		}
		owners := map[string]bool{}
		for _, w := range ws {
			owners[w.token] = true
		}
		t.Logf("session %d: %d accepted writes by %d owners", sess, len(ws), len(owners))
	}
	t.Logf("torture %v: %d writes accepted via the API, %d refused, %d kills, %d freezes, %d closes, %d in-flight writes accepted before a takeover",
		duration, stats.writes.Load(), stats.refused.Load(), stats.kills.Load(), stats.freezes.Load(), stats.closes.Load(), stats.staleAccepted.Load())
}

// TestStalledWriteRefusedAfterTakeover: an owner's write that is stuck in a
// partition (a stalling proxy, default go-redis options) while a standby
// takes over and writes is delivered on heal and refused inside the script;
// the owner learns of the loss (Lost) before the standby owns the session.
func TestStalledWriteRefusedAfterTakeover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := openPartitioned(t, lock.Options{TTL: time.Second, RenewEvery: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond})
	a, proxy := p.a, p.proxy
	lost := a.Lease().Lost()

	proxy.Stall()
	inFlight := make(chan error, 1)
	go func() {
		inFlight <- a.UpdatePeers(ctx, []storage.Peer{{ID: 1, AccessHash: storage.Some[int64](111), Type: storage.PeerUser}})
	}()
	b := p.standby(t)
	select {
	case <-lost:
	default:
		t.Error("the stalled owner's Lost had not fired when the standby's Open returned")
	}
	if err := b.UpdatePeers(ctx, []storage.Peer{{ID: 1, AccessHash: storage.Some[int64](222), Type: storage.PeerUser}}); err != nil {
		t.Fatal(err)
	}
	proxy.Heal()
	select {
	case err := <-inFlight:
		if !errors.Is(err, lock.ErrLeaseLost) {
			t.Errorf("the stalled write delivered after the takeover: %v; want lock.ErrLeaseLost", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stalled write never returned")
	}
	if p, err := b.PeerByID(ctx, 1); err != nil || p.AccessHash != storage.Some[int64](222) {
		t.Errorf("peer 1 after heal = %v, %v; want the new owner's access hash 222", p.AccessHash, err)
	}
}

// TestOpenFailsFastOnACL: a worker whose Redis user lacks a command the lease
// needs does not wait forever: Open fails at once and names the command.
func TestOpenFailsFastOnACL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Require(t)
	user := redistest.NewACLUser(t, srv, "+@all", "-msetnx")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: user, Password: "pw"})
	defer c.Close()
	s, err := New(c, "acct", Options{Mode: Leased, Create: true, Prefix: "acl-" + redistest.TempName(t)})
	if err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = s.Open(octx)
	if err == nil || !strings.Contains(err.Error(), "MSETNX") || octx.Err() != nil {
		t.Errorf("Open under an ACL without msetnx = %v (context: %v); want an immediate error naming MSETNX", err, octx.Err())
	}
}

// TestOpenRefusesEvictingServer: a worker does not open on a server whose
// maxmemory-policy can evict session keys or leases, unless it opts in.
func TestOpenRefusesEvictingServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	redistest.Require(t) // skips or fails (CI) without redis-server
	tests := []struct {
		policy string
		allow  bool
		want   string // "" for success
	}{
		{"allkeys-lru", false, "maxmemory-policy allkeys-lru"},
		{"volatile-lru", false, "maxmemory-policy volatile-lru"},
		{"allkeys-lru", true, ""},
		{"noeviction", false, ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/allow=%v", tc.policy, tc.allow), func(t *testing.T) {
			t.Parallel()
			srv, err := redistest.Start("--maxmemory", "2mb", "--maxmemory-policy", tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer c.Close()
			s, err := New(c, "acct", Options{Mode: Leased, Create: true, AllowEviction: tc.allow})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Open(ctx)
			defer s.Close()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Open: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Open = %v; want an error naming %q", err, tc.want)
			}
			if tc.want != "" {
				if n, _ := c.Exists(ctx, s.LeaseKey()).Result(); n != 0 {
					t.Error("a refused Open left a lease behind")
				}
			}
		})
	}
}

// TestScriptCostBounded: 100k peers with 64 usernames each, written with the
// default batch size and with the largest allowed one, never block Redis for
// long: the scripts' p99 in the SLOWLOG stays under 100 ms and none reaches
// 1 s even on a loaded machine (unbounded, a default batch of 1000 such peers
// ran 126-138 ms per script, a batch of 20000 over 15 s; bounded, on an idle
// machine, p99 is 4-8 ms), and another worker's short lease on
// the same server survives the whole write. The median, p99 and longest are
// logged, with the longest stall of an O(1) command (GET, HGET, ZSCORE inside
// the scripts) that Redis's latency monitor saw in the same run. The longest
// script is not held to 20 ms: on this project's Firecracker VMs the first
// touch of fresh memory stalls a process for up to ~35 ms (4 KiB pages; go
// run ./internal/tools/pagetouch measures it) or ~120 ms (huge pages), so
// while the server's memory grows an O(1) call inside a ~1.5 ms script can
// take 20-75 ms; the log shows both figures side by side.
// Not parallel: other tests' CPU load would inflate the server's timings.
func TestScriptCostBounded(t *testing.T) {
	ctx := context.Background()
	redistest.Require(t)
	srv, err := redistest.Start("--slowlog-log-slower-than", "1000", "--slowlog-max-len", "100000",
		"--latency-monitor-threshold", "5")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	other := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer other.Close()

	const n, names = 100000, 64
	peers := make([]storage.Peer, n)
	for i := range peers {
		p := storage.Peer{ID: int64(i + 1), AccessHash: storage.Some(int64(i)), Type: storage.PeerUser, PhoneNumber: strconv.Itoa(15550000000 + i)}
		p.Usernames = make([]string, names)
		for j := range p.Usernames {
			p.Usernames[j] = "u" + strconv.Itoa(i) + "_" + strconv.Itoa(j)
		}
		peers[i] = p
	}
	for i, batch := range []int{0, MaxBatchSize} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			lease, err := lock.TryAcquire(ctx, other, "other:{w}:lease", lock.Options{TTL: 2 * time.Second}) // dies only if a script blocks Redis for ~1.8 s (a 500 ms lease flaked on a loaded machine)
			if err != nil {
				t.Fatal(err)
			}
			defer lease.Release(ctx)
			s, err := New(c, fmt.Sprint("big-", i), Options{Mode: Leased, Create: true, BatchSize: batch})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Delete(ctx); _ = s.Close() }()
			if err := c.SlowLogReset(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.Do(ctx, "LATENCY", "RESET").Err(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := s.UpdatePeers(ctx, peers); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			logs, err := c.SlowLogGet(ctx, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			var worst time.Duration
			scripts := 0
			var all []time.Duration
			for _, l := range logs {
				if len(l.Args) > 0 && (strings.EqualFold(l.Args[0], "evalsha") || strings.EqualFold(l.Args[0], "eval")) {
					scripts++
					worst = max(worst, l.Duration)
					all = append(all, l.Duration)
				}
			}
			slices.Sort(all)
			if len(all) == 0 {
				all = []time.Duration{0}
			}
			p99 := all[len(all)*99/100]
			t.Logf("%d peers x %d usernames in %v; %d scripts took >= 1 ms: median %v, p99 %v, longest %v; longest O(1) command: %v",
				n, names, took.Round(time.Millisecond), scripts, all[len(all)/2], p99, worst, longestFastCommand(t, c))
			// Bounds that catch unbounded scripts (126-138 ms each at the
			// default batch, over 15 s at the largest) and tolerate a loaded
			// CI machine (other packages' tests run beside this one on 2
			// cores); the figures themselves are logged above.
			if p99 >= 100*time.Millisecond || worst >= time.Second {
				t.Errorf("scripts: p99 %v, longest %v; want p99 < 100ms and none >= 1s", p99, worst)
			}
			if err := lease.Valid(); err != nil {
				t.Errorf("another worker's lease on the same server: %v", err)
			}
			if cnt, _ := s.PeerCount(ctx); cnt != n {
				t.Errorf("PeerCount = %d; want %d", cnt, n)
			}
		})
	}
}

// longestFastCommand returns the longest O(1) command (Redis's latency event
// "fast-command", threshold 5 ms) since the last LATENCY RESET, or 0.
func longestFastCommand(t *testing.T, c *redis.Client) time.Duration {
	t.Helper()
	hist, err := c.Do(context.Background(), "LATENCY", "HISTORY", "fast-command").Slice()
	if err != nil {
		t.Fatal(err)
	}
	var longest int64
	for _, e := range hist {
		if pair, ok := e.([]any); ok && len(pair) == 2 {
			if ms, ok := pair[1].(int64); ok {
				longest = max(longest, ms)
			}
		}
	}
	return time.Duration(longest) * time.Millisecond
}

// TestRetryOfAppliedWrite: a write that Redis applied but whose reply was
// lost to a connection reset is re-sent by go-redis (default options) after
// another worker took over. The store must not report ErrLeaseLost for it (it
// was applied while this worker owned the session): the script recognizes
// its own retry by the write id. Any error must say the outcome is unknown.
func TestRetryOfAppliedWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := openPartitioned(t, lock.Options{TTL: 10 * time.Second})
	a, proxy, direct := p.a, p.proxy, p.direct

	for _, sc := range allScripts { // so the write is one EVALSHA (no NOSCRIPT round trip held by the proxy)
		if err := sc.Load(ctx, direct).Err(); err != nil {
			t.Fatal(err)
		}
	}
	proxy.StallReplies() // the write reaches Redis; its reply does not come back
	result := make(chan error, 1)
	go func() {
		result <- a.UpdatePeers(ctx, []storage.Peer{{ID: 7, AccessHash: storage.Some[int64](777), Type: storage.PeerUser}})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for direct.HExists(ctx, a.keys.peers, "7").Val() == false {
		if time.Now().After(deadline) {
			t.Fatal("the write never reached Redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// An operator releases A's lease; B takes over; then A's connection resets.
	p.forceRelease(t)
	b := p.standby(t)
	proxy.Cut()
	proxy.Heal()

	var err error
	select {
	case err = <-result:
	case <-time.After(20 * time.Second):
		t.Fatal("the write never returned")
	}
	t.Logf("A's write after reply lost, takeover and reset: %v", err)
	if errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("an applied write was reported as ErrLeaseLost: %v", err)
	}
	if err != nil && !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("write error %v; want nil or ErrOutcomeUnknown", err)
	}
	if p, err := b.PeerByID(ctx, 7); err != nil || p.AccessHash != storage.Some[int64](777) {
		t.Errorf("peer 7 = %v, %v; want A's applied write", p.AccessHash, err)
	}
	// After the takeover A's next write is refused, and certainly not applied.
	if err := a.UpdatePeers(ctx, []storage.Peer{{ID: 8, Type: storage.PeerUser}}); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("A's next write: %v; want ErrLeaseLost", err)
	}
	if _, err := b.PeerByID(ctx, 8); !errors.Is(err, storage.ErrPeerNotFound) {
		t.Errorf("a refused write was applied: %v", err)
	}
}

// TestWriteOutcomeUnknown: a write whose reply never comes (a stalled
// network, the client's read timeout, no retries) is ErrOutcomeUnknown, with
// the lease's state, never ErrLeaseLost.
func TestWriteOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Require(t)
	proxy := redistest.NewProxy(t, srv.Addr)
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	s, err := New(c, "acct", Options{Mode: Leased, Create: true, Prefix: "unknown-" + redistest.TempName(t), Lease: lock.Options{TTL: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	proxy.StallReplies()
	err = s.UpdatePeers(ctx, []storage.Peer{{ID: 1, Type: storage.PeerUser}})
	proxy.Heal()
	if !errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, lock.ErrLeaseLost) || !strings.Contains(err.Error(), "lease is still valid") {
		t.Errorf("write with a lost reply: %v; want ErrOutcomeUnknown saying the lease is still valid", err)
	}
}

// TestCutsDuringWrites: a worker writes through a proxy that resets its
// connections every few milliseconds, and halfway an operator hands the
// session to another worker. Every outcome is compared with the data: a
// success was applied, ErrLeaseLost was not, ErrOutcomeUnknown may be either;
// nothing else is reported.
func TestCutsDuringWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := openPartitioned(t, lock.Options{TTL: 10 * time.Second})
	a, proxy := p.a, p.proxy

	stop := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(1+rand.IntN(5)) * time.Millisecond):
				proxy.Cut()
			}
		}
	})
	outcomes := map[int64]error{}
	var b *Store
	for id := int64(1); id <= 400; id++ {
		if id == 200 { // the operator hands the session over
			p.forceRelease(t)
			b = p.standby(t)
		}
		outcomes[id] = a.UpdatePeers(ctx, []storage.Peer{{ID: id, AccessHash: storage.Some(id), Type: storage.PeerUser}})
	}
	close(stop)
	cutter.Wait()

	counts := map[string]int{}
	for id, err := range outcomes {
		_, rerr := b.PeerByID(ctx, id)
		applied := rerr == nil
		switch {
		case err == nil:
			counts["ok"]++
			if !applied {
				t.Errorf("write %d reported success but is not in Redis", id)
			}
		case errors.Is(err, lock.ErrLeaseLost):
			counts["lease lost"]++
			if applied {
				t.Errorf("write %d reported ErrLeaseLost but was applied", id)
			}
		case errors.Is(err, ErrOutcomeUnknown):
			counts["unknown"]++
		default:
			counts["other"]++
			t.Errorf("write %d: unexpected error %v", id, err)
		}
	}
	t.Logf("400 writes with connection resets every 1-5 ms and a takeover at #200: %v", counts)
	if counts["ok"] == 0 || counts["lease lost"] == 0 {
		t.Errorf("outcomes %v: the test saw no successes or no refusals", counts)
	}
}

// partitioned is a worker A that reaches a real redis-server through a
// stall/cut proxy (default go-redis options), a direct client for everyone
// else, and the options A was opened with (a standby opens with them too).
type partitioned struct {
	proxy  *redistest.Proxy
	direct redis.UniversalClient
	opts   Options
	a      *Store
}

// openPartitioned opens A, Leased with lease, under a prefix of the test's own.
func openPartitioned(t *testing.T, lease lock.Options) partitioned {
	t.Helper()
	srv := redistest.Require(t)
	p := partitioned{proxy: redistest.NewProxy(t, srv.Addr), opts: Options{Mode: Leased, Create: true, Prefix: "part-" + redistest.TempName(t), Lease: lease}}
	viaProxy := redis.NewClient(&redis.Options{Addr: p.proxy.Addr})
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { viaProxy.Close(); direct.Close() })
	p.direct = direct
	a, err := New(viaProxy, "acct", p.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	p.a = a
	return p
}

// standby opens the same session directly (waiting for the lease).
func (p partitioned) standby(t *testing.T) *Store {
	t.Helper()
	b, err := New(p.direct, "acct", p.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// forceRelease is the operator's unlock of A's lease.
func (p partitioned) forceRelease(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	shown, err := lock.Inspect(ctx, p.direct, p.a.LeaseKey())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := lock.ForceRelease(ctx, p.direct, p.a.LeaseKey(), shown); !ok || err != nil {
		t.Fatalf("ForceRelease = %v, %v", ok, err)
	}
}
