package fleet

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRegistryAndDataLost (issue 24), on a server of its own: the session
// registry is deleted under a running fleet: the owners register their
// sessions again (warned, counted) and keep them. With the fleet stopped and
// the registry deleted again, a new fleet finds nothing until
// redisstore.RebuildRegistry (tgsession registry rebuild) restores every
// name, then owns them all. A FLUSHALL then takes sessions and leases: every
// owner counts and warns about a lost session, none recreates one.
func TestRegistryAndDataLost(t *testing.T) {
	t.Parallel()
	srv := redistest.Own(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	const prefix, n = "reg", 8
	for i := range n {
		st, _ := redisstore.New(c, fmt.Sprintf("acct-%d", i), redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ttl := 2 * time.Second
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	fleet := func() []*running {
		var ws []*running
		for i := range 2 {
			id := fmt.Sprintf("w%d", i)
			w, err := New(c, Options{WorkerID: id, Prefix: prefix, Interval: 100 * time.Millisecond, Lease: lock.Options{TTL: ttl}, Logger: logger},
				func(ctx context.Context, st *redisstore.Store) error {
					for {
						select {
						case <-ctx.Done():
							return nil
						case <-time.After(50 * time.Millisecond):
						}
						if err := st.SetDate(ctx, time.Now().Unix()); err != nil {
							return err
						}
					}
				})
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, launch(ctx, w))
		}
		return ws
	}
	stop := func(ws []*running) {
		for _, r := range ws {
			r.cancel()
			<-r.done
		}
	}
	owned := func(ws []*running) int {
		total := 0
		for _, r := range ws {
			total += len(r.w.Owned())
		}
		return total
	}
	patience := 10*ttl + 10*time.Second // a loaded machine; the fleet acts within a few intervals

	ws := fleet()
	waitOwned(t, n, patience, ws, func(l []int) bool { return within(l, n/2, n/2) })
	if err := c.Del(ctx, prefix+":sessions").Err(); err != nil {
		t.Fatal(err)
	}
	minOwned := n
	defer func() {
		if t.Failed() {
			names, _ := redisstore.ListSessions(ctx, c, prefix)
			t.Logf("registry now %q; owned %d; logs:\n%s", names, owned(ws), logs.String())
		}
	}()
	wait(t, patience, "the owners register their sessions again", func() bool {
		minOwned = min(minOwned, owned(ws))
		names, _ := redisstore.ListSessions(ctx, c, prefix)
		return len(names) == n
	})
	var re int64
	for _, r := range ws {
		re += r.w.Stats().Reregistered
	}
	t.Logf("registry deleted under a running fleet: %d sessions registered again by their owners; fewest owned meanwhile %d of %d", re, minOwned, n)
	if re != n || minOwned != n {
		t.Errorf("re-registered %d (want %d); fewest owned meanwhile %d (want %d: nothing released)", re, n, minOwned, n)
	}
	if !strings.Contains(logs.String(), "vanished from the registry") {
		t.Errorf("no warning about the registry; logs:\n%s", logs.String())
	}
	stop(ws)

	if err := c.Del(ctx, prefix+":sessions").Err(); err != nil {
		t.Fatal(err)
	}
	ws = fleet()
	time.Sleep(5 * 100 * time.Millisecond) // a few reconciles
	if got := owned(ws); got != 0 {
		t.Errorf("a fleet took %d sessions from an empty registry", got)
	}
	added, err := redisstore.RebuildRegistry(ctx, c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RebuildRegistry registered %d sessions", len(added))
	if len(added) != n {
		t.Errorf("RebuildRegistry registered %d sessions; want %d", len(added), n)
	}
	waitOwned(t, n, patience, ws, func(l []int) bool { return within(l, n/2, n/2) })

	if err := c.FlushAll(ctx).Err(); err != nil { // this test's own server
		t.Fatal(err)
	}
	var lost int64
	wait(t, patience, "every owner counts its lost sessions", func() bool {
		lost = 0
		for _, r := range ws {
			lost += r.w.Stats().LostSessions
		}
		return lost == n && owned(ws) == 0
	})
	stop(ws)
	t.Logf("FLUSHALL under a running fleet: %d sessions counted lost, 0 owned after", lost)
	if !strings.Contains(logs.String(), "data is gone") {
		t.Errorf("no warning about lost sessions; logs:\n%s", logs.String())
	}
	if k := c.Keys(ctx, prefix+":{*}:s").Val(); len(k) != 0 {
		t.Errorf("sessions were recreated after the flush: %v", k)
	}
}

// TestKeyRotationLive (issue 24): a running fleet whose workers read their
// keyring from a file (keyring.OpenFile) is rotated by rewriting that file
// with a new current key: every owned session's auth key is re-sealed with
// it soon after, no session is released (each handler started once), and
// the auth keys read back unchanged.
func TestKeyRotationLive(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	prefix := "rot-" + redistest.TempName(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "keyring")
	line1, _ := keyring.Generate("k1")
	line2, _ := keyring.Generate("k2")
	write := func(text string) {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(line1 + "\n")
	old, err := keyring.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	want := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("acct-%d", i)
		st, _ := redisstore.New(c, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix, Keys: old})
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
		k := make([]byte, 256)
		for j := range k {
			k[j] = byte(i + j)
		}
		if err := st.SetAuthKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		want[name] = k
	}
	file, err := keyring.OpenFile(path, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	starts := map[string]int{}
	var ws []*running
	for i := range 2 {
		id := fmt.Sprintf("w%d", i)
		w, err := New(c, Options{WorkerID: id, Prefix: prefix, Interval: 100 * time.Millisecond, Lease: lock.Options{TTL: 5 * time.Second},
			Store: redisstore.Options{Keys: file}},
			func(ctx context.Context, st *redisstore.Store) error {
				mu.Lock()
				starts[st.Name()]++
				mu.Unlock()
				<-ctx.Done()
				return nil
			})
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
	waitOwned(t, n, 30*time.Second, ws, func(l []int) bool { return within(l, n/2, n/2) })
	storage := func(name string) string {
		st, _ := redisstore.New(c, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix, OpenExisting: true})
		if err := st.Open(ctx); err != nil {
			return err.Error()
		}
		s, err := st.AuthKeyStorage(ctx)
		if err != nil {
			return err.Error()
		}
		return s
	}
	for name := range want {
		if s := storage(name); s != "encrypted (k1)" {
			t.Fatalf("%s before the rotation: %s", name, s)
		}
	}
	write(line2 + "\n" + line1 + "\n")
	rotated := time.Now()
	wait(t, 30*time.Second, "every owned session re-sealed with k2", func() bool {
		for name := range want {
			if storage(name) != "encrypted (k2)" {
				return false
			}
		}
		return true
	})
	t.Logf("keyring file rotated: all %d owned sessions re-sealed with the new key %v later", n, time.Since(rotated).Round(time.Millisecond))
	both, _ := keyring.Load(path)
	for name, k := range want {
		st, _ := redisstore.New(c, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix, OpenExisting: true, Keys: both})
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := st.AuthKey(ctx)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("%s after the rotation: %v (changed: %v)", name, err, !bytes.Equal(got, k))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for name, s := range starts {
		if s != 1 {
			t.Errorf("%s's handler started %d times: the session was released during the rotation", name, s)
		}
	}
}

// TestFailingHandlerBacksOff: a handler that fails at once is not retaken
// every reconcile: over 3 s at a 50 ms interval (60 reconciles) it starts
// at most ~log2(3 s / 50 ms) + 2 times.
func TestFailingHandlerBacksOff(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	prefix := "backoff-" + redistest.TempName(t)
	st, _ := redisstore.New(c, "bad", redisstore.Options{Mode: redisstore.Unfenced, Prefix: prefix})
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	starts := 0
	w, err := New(c, Options{WorkerID: "w", Prefix: prefix, Interval: 50 * time.Millisecond, Lease: lock.Options{TTL: 2 * time.Second}},
		func(ctx context.Context, st *redisstore.Store) error {
			mu.Lock()
			starts++
			mu.Unlock()
			return fmt.Errorf("this session is broken")
		})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	time.Sleep(3 * time.Second)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("a handler failing at once started %d times in 3 s (interval 50 ms)", starts)
	if starts < 2 || starts > 8 {
		t.Errorf("started %d times; want a few (backing off), at least 2", starts)
	}
}
