package filestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/storage"
	"github.com/tgsession/redisstore/storage/storagetest"
)

// BenchmarkCopyFileToRedis copies a generated session file of N peers (a
// third with a username, a fifth with a phone) to a real redis-server with
// storage.Copy, and reports the copy rate and the peak Go heap while copying
// (the file is generated outside the timer). The 1M-peer figure in the
// README comes from:
//
//	go test -run '^$' -bench 'CopyFileToRedis/peers=1000000' -benchtime 1x ./filestore
func BenchmarkCopyFileToRedis(b *testing.B) {
	for _, n := range []int{10000, 1000000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) { benchmarkCopy(b, n) })
	}
}

func benchmarkCopy(b *testing.B, n int) {
	ctx := context.Background()
	clock := storagetest.NewClock(1795631487)
	path := filepath.Join(b.TempDir(), "big.session")
	src := filestore.New(path, filestore.Options{Clock: clock.Now})
	if err := src.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer src.Close()
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
			b.Fatal(err)
		}
	}
	if err := src.SetSession(ctx, storage.Session{DCID: storage.Some(2), APIID: storage.Some[int64](1), AuthKey: make(storage.AuthKey, 256), UserID: storage.Some[int64](1)}); err != nil {
		b.Fatal(err)
	}

	c := redis.NewClient(&redis.Options{Addr: redistest.Require(b).Addr})
	defer c.Close()
	var peakMB float64
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst, err := redisstore.New(c, "big-"+redistest.TempName(b), redisstore.Options{Mode: redisstore.Unfenced, Clock: clock.Now})
		if err != nil {
			b.Fatal(err)
		}
		if err := dst.Open(ctx); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		stopSampling := sampleHeapPeak()
		b.StartTimer()
		copied, err := storage.Copy(ctx, dst, src, storage.CopyOptions{BatchSize: 1000})
		b.StopTimer()
		peakMB = max(peakMB, float64(stopSampling())/(1<<20))
		if err != nil {
			b.Fatal(err)
		}
		if got, err := dst.PeerCount(ctx); err != nil || got != int64(n) || copied != int64(n) {
			b.Fatalf("copied %d, Redis holds %d (%v); want %d", copied, got, err, n)
		}
		if p, err := dst.PeerByID(ctx, int64(n)); err != nil || p.ID != int64(n) {
			b.Errorf("lookup after copy: %+v, %v", p, err)
		}
		_ = dst.Delete(ctx)
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "peers/s")
	b.ReportMetric(peakMB, "peak-heap-MB")
}

// sampleHeapPeak samples the Go heap every 5 ms until the returned function
// is called, which returns the peak seen (bytes of live objects).
func sampleHeapPeak() func() uint64 {
	var peak atomic.Uint64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	peak.Store(read())
	stop, done := make(chan struct{}), make(chan struct{})
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
	return func() uint64 {
		close(stop)
		<-done
		return peak.Load()
	}
}
