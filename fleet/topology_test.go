package fleet

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/lock"
)

// stints records, per session, each owner's acknowledged writes as one
// interval: two owners at once show as overlapping intervals.
type stints struct {
	mu   sync.Mutex
	runs map[string][]*stint
}

type stint struct {
	worker      string
	first, last time.Time
	writes      int
}

func (s *stints) handler(worker string) Handler {
	return func(ctx context.Context, st *redisstore.Store) error {
		v, err := st.Date(ctx)
		if err != nil {
			return err
		}
		run := &stint{worker: worker}
		s.mu.Lock()
		s.runs[st.Name()] = append(s.runs[st.Name()], run)
		s.mu.Unlock()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			if err := st.SetDate(ctx, v+1); err != nil {
				continue // a failover in progress, or the lease is gone (ctx ends next)
			}
			v++
			now := time.Now()
			s.mu.Lock()
			if run.writes == 0 {
				run.first = now
			}
			run.last, run.writes = now, run.writes+1
			s.mu.Unlock()
		}
	}
}

// waitWritten waits until every one of n sessions has an acknowledged
// write after since, and returns how long after since that was.
func (s *stints) waitWritten(t *testing.T, n int, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		s.mu.Lock()
		var latest time.Time
		done := len(s.runs) == n
		for _, runs := range s.runs {
			var last time.Time
			for _, r := range runs {
				if r.last.After(last) {
					last = r.last
				}
			}
			done = done && last.After(since)
			if last.After(latest) {
				latest = last
			}
		}
		s.mu.Unlock()
		if done {
			return time.Since(since)
		}
		if time.Since(since) > limit {
			t.Fatalf("after %v some sessions had no acknowledged write since the kill", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// overlaps counts pairs of stints of different owners on one session whose
// acknowledged writes overlap in time.
func (s *stints) overlaps() (overlaps, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, runs := range s.runs {
		for i, a := range runs {
			total += a.writes
			for _, b := range runs[i+1:] {
				if a.writes == 0 || b.writes == 0 || a.worker == b.worker {
					continue
				}
				if a.first.Before(b.last) && b.first.Before(a.last) {
					overlaps++
				}
			}
		}
	}
	return overlaps, total
}

// TestFleetFailover: 100 sessions, 4 workers on Sentinel and on Cluster; the
// primary (Cluster: the one holding the fleet's members key) is killed
// mid-run. Every session is owned again, the fleet is balanced, and no two
// owners' acknowledged writes ever overlap on a session.
func TestFleetFailover(t *testing.T) {
	for _, topo := range []string{"sentinel", "cluster"} {
		t.Run(topo, func(t *testing.T) {
			ctx := context.Background()
			prefix := "fleetfo"
			var clients []redis.UniversalClient
			// kill kills the primary; heal waits for the promotion and
			// brings the killed node back as a replica of the new primary,
			// as the README says to: with one replica per primary, leases
			// are confirmed again only then (lock: a client that saw a
			// replica never trusts a lone primary).
			var kill, heal func()
			switch topo {
			case "sentinel":
				s := redistest.NewSentinel(t)
				for range 5 {
					clients = append(clients, s.Client())
				}
				x := &sentinelTopo{s: s, nodes: [2]*redistest.Server{s.Primary, s.Replica}}
				kill = func() {
					x.killed, x.other = s.Primary, s.Replica
					s.Primary.Kill()
				}
				heal = func() { x.heal(t) }
			default:
				c := redistest.NewCluster(t, 3, 1)
				for range 5 {
					clients = append(clients, c.Client())
				}
				x := &clusterTopo{c: c, key: membersKey(prefix)}
				kill = func() {
					primary, replica, err := c.PrimaryFor(ctx, x.key)
					if err != nil || replica == nil {
						t.Fatalf("no primary with a replica for %s: %v", x.key, err)
					}
					x.killed, x.prom = primary, replica
					primary.Kill()
				}
				heal = func() { x.heal(t) }
			}
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			const n = 100
			for i := range n {
				st, err := redisstore.New(clients[4], fmt.Sprintf("acct-%03d", i), redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Open(ctx); err != nil {
					t.Fatal(err)
				}
			}
			s := &stints{runs: map[string][]*stint{}}
			var ws []*running
			for i := range 4 {
				id := fmt.Sprintf("w%d", i)
				w, err := New(clients[i], Options{WorkerID: id, Prefix: prefix, Interval: 200 * time.Millisecond,
					Lease: lock.Options{TTL: 2 * time.Second}}, s.handler(id))
				if err != nil {
					t.Fatal(err)
				}
				ws = append(ws, launch(ctx, w))
			}
			defer func() {
				for _, r := range ws {
					r.cancel()
					<-r.done
				}
			}()
			took := waitOwned(t, n, 20*time.Second, ws, func(l []int) bool { return within(l, 25, 25) })
			t.Logf("%s: 4 workers own all %d sessions, 25 each, after %v", topo, n, took.Round(time.Millisecond))
			time.Sleep(500 * time.Millisecond)
			kill()
			killed := time.Now()
			heal()
			healed := time.Since(killed)
			// A write acknowledged after the kill went to the new primary:
			// the session is owned and working again.
			recovered := s.waitWritten(t, n, killed, 60*time.Second)
			waitOwned(t, n, 10*time.Second, ws, func(l []int) bool { return within(l, 25, 25) })
			t.Logf("%s: primary killed; back as a replica %v after the kill; every one of the %d sessions had an acknowledged write again %v after the kill (lease TTL 2 s), 25 per worker",
				topo, healed.Round(time.Millisecond), n, recovered.Round(time.Millisecond))
			// Once the replica is back, the leases are confirmed again:
			// allow a lease TTL and a few seconds (a loaded CI machine) on
			// top of the time the topology took to heal.
			if limit := healed + 2*time.Second + 6*time.Second; recovered > limit {
				t.Errorf("%s: sessions owned and writing again after %v; want within lease TTL + failover gap (%v)", topo, recovered, limit)
			}
			time.Sleep(500 * time.Millisecond)
			ov, total := s.overlaps()
			t.Logf("%s: %d acknowledged writes; overlapping stints of two owners on one session: %d", topo, total, ov)
			if ov != 0 || total == 0 {
				t.Errorf("two owners' acknowledged writes overlapped (%d), or nothing was written", ov)
			}
		})
	}
}
