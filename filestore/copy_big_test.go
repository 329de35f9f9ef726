package filestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/storage"
	"github.com/tgsession/redisstore/storage/storagetest"
)

// TestCopyLargeSession copies a generated session of TGSESSION_COPY_PEERS
// peers (e.g. 1000000) from a session file to a real redis-server and
// reports the peak Go heap while copying. It is a measurement, run on demand:
//
//	TGSESSION_COPY_PEERS=1000000 go test -run TestCopyLargeSession -v ./filestore
func TestCopyLargeSession(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TGSESSION_COPY_PEERS"))
	if n <= 0 {
		t.Skip("set TGSESSION_COPY_PEERS=1000000 to run this measurement")
	}
	ctx := context.Background()
	clock := storagetest.NewClock(1795631487)
	path := filepath.Join(t.TempDir(), "big.session")
	src := openFile(t, path, clock)
	start := time.Now()
	const gen = 5000
	for i := 0; i < n; i += gen {
		batch := make([]storage.Peer, 0, gen)
		for j := i; j < min(i+gen, n); j++ {
			id := int64(1 + j)
			p := storage.Peer{ID: id, AccessHash: storage.Some(id*2654435761 - 1<<62), Type: storage.PeerUser, LastUpdateOn: 1795600000 + int64(j%30000)}
			if j%3 == 0 {
				p.Usernames = []string{"user_" + strconv.Itoa(j)}
			}
			if j%5 == 0 {
				p.PhoneNumber = strconv.Itoa(15550000000 + j)
			}
			batch = append(batch, p)
		}
		if err := src.ImportPeers(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.SetSession(ctx, storage.Session{DCID: storage.Some(2), APIID: storage.Some[int64](1), AuthKey: make(storage.AuthKey, 256), UserID: storage.Some[int64](1)}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	t.Logf("generated %d peers in %v (file %d MB)", n, time.Since(start).Round(time.Millisecond), st.Size()>>20)

	c := redis.NewClient(&redis.Options{Addr: redistest.Require(t).Addr})
	defer c.Close()
	dst, err := redisstore.New(c, "big-"+redistest.TempName(t), redisstore.Options{Mode: redisstore.Unfenced, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer dst.Delete(ctx)

	runtime.GC()
	var peak, base atomic.Uint64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base.Store(read())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	start = time.Now()
	var last int64
	copied, err := storage.Copy(ctx, dst, src, storage.CopyOptions{BatchSize: 1000, Progress: func(done int64) {
		if done-last >= int64(n/4) {
			last = done
			t.Logf("progress: %d peers", done)
		}
	}})
	elapsed := time.Since(start)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dst.PeerCount(ctx); err != nil || got != int64(n) || copied != int64(n) {
		t.Fatalf("copied %d, Redis holds %d (%v); want %d", copied, got, err, n)
	}
	if p, err := dst.PeerByUsername(ctx, fmt.Sprintf("user_%d", n-n%3-3)); err != nil || p.ID == 0 {
		t.Errorf("lookup after copy: %+v, %v", p, err)
	}
	t.Logf("copied %d peers file -> Redis in %v (%.0f peers/s); Go heap: %d MB before, peak %d MB while copying",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), base.Load()>>20, peak.Load()>>20)
}
