package redisstore

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/storage"
)

// Benchmarks run against a real redis-server started by the harness, each
// beside a "raw" baseline that does the same amount of plain Redis work in the
// same number of round trips on the same server, so results read as ratios:
//
//	go test -run '^$' -bench . -benchmem -count 5 .

func benchClient(b *testing.B) redis.UniversalClient {
	srv := redistest.Require(b)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { c.Close() })
	return c
}

// benchStore opens a store for a session of its own, deleted afterwards.
func benchStore(b *testing.B, c redis.UniversalClient) *Store {
	s, err := New(c, "bench-"+redistest.TempName(b), Options{Mode: Leased, Create: true, Prefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Delete(context.Background()) })
	return s
}

func benchPeers(n, round int) []storage.Peer {
	peers := make([]storage.Peer, n)
	for i := range peers {
		id := int64(1 + i)
		peers[i] = storage.Peer{ID: id, AccessHash: storage.Some(id*1000003 + int64(round)), Type: storage.PeerUser,
			Usernames: []string{"user_" + strconv.FormatInt(id, 10)}}
		if i%2 == 0 {
			peers[i].PhoneNumber = strconv.FormatInt(15550000000+id, 10)
		}
	}
	return peers
}

func BenchmarkUpdatePeers(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s := benchStore(b, c)
			batches := [2][]storage.Peer{benchPeers(n, 0), benchPeers(n, 1)}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := s.UpdatePeers(ctx, batches[i%2]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "peers/s")
		})
		b.Run(fmt.Sprintf("batch=%d/new-peers", n), func(b *testing.B) {
			s := benchStore(b, c)
			peers := benchPeers(n, 0)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Fresh ids and names each round: every index entry is new.
				b.StopTimer()
				for j := range peers {
					id := int64(1 + i*n + j)
					peers[j].ID = id
					peers[j].Usernames = []string{"new_" + strconv.FormatInt(id, 10)}
				}
				b.StartTimer()
				if err := s.UpdatePeers(ctx, peers); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "peers/s")
		})
		// The raw baseline: the cheapest commands that store the same data in
		// the same layout (keys.go): one HSET of n id -> row pairs, one of the
		// usernames and one of the phones, pipelined in one round trip.
		b.Run(fmt.Sprintf("batch=%d/raw-HSET-same-layout", n), func(b *testing.B) {
			k := newKeys("bench-raw", redistest.TempName(b))
			var rows, names, phones []any
			for _, p := range benchPeers(n, 0) {
				id := strconv.FormatInt(p.ID, 10)
				rows = append(rows, id, string(appendRow(nil, p)))
				names = append(names, p.Usernames[0], id)
				if p.PhoneNumber != "" {
					phones = append(phones, p.PhoneNumber, id)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				pipe := c.Pipeline()
				pipe.HSet(ctx, k.peers, rows...)
				pipe.HSet(ctx, k.usernames, names...)
				if len(phones) > 0 {
					pipe.HSet(ctx, k.phones, phones...)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "peers/s")
			b.StopTimer()
			c.Del(ctx, k.peers, k.usernames, k.phones)
		})
	}
}

func BenchmarkLookups(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	s := benchStore(b, c)
	const n = 1000
	if err := s.UpdatePeers(ctx, benchPeers(n, 0)); err != nil {
		b.Fatal(err)
	}
	b.Run("PeerByID", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := s.PeerByID(ctx, int64(1+i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The raw baseline: one round trip reading a small hash with a peer's fields.
	rawKey := "bench-raw:{" + redistest.TempName(b) + "}:peer"
	if err := c.HSet(ctx, rawKey, "type", "user", "access_hash", "-4611686018427387904", "usernames", "user_1",
		"phone_number", "15550000001", "last_update_on", "1795631487").Err(); err != nil {
		b.Fatal(err)
	}
	defer c.Del(ctx, rawKey)
	b.Run("PeerByID/raw-HGETALL", func(b *testing.B) {
		for b.Loop() {
			if err := c.HGetAll(ctx, rawKey).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	names := make([]string, n)
	for i := range names {
		names[i] = "user_" + strconv.Itoa(1+i)
	}
	b.Run("PeerByUsername", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := s.PeerByUsername(ctx, names[i%n]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PeerByUsername/raw-HGET+HGET", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			id, err := c.HGet(ctx, s.keys.usernames, names[i%n]).Result()
			if err != nil {
				b.Fatal(err)
			}
			if err := c.HGet(ctx, s.keys.peers, id).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, g := range []int{8, 64} {
		b.Run(fmt.Sprintf("PeerByID/goroutines=%d", g), func(b *testing.B) {
			b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.PeerByID(ctx, 1+next.Add(1)%n); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	cached, err := New(c, "bench-cached-"+redistest.TempName(b), Options{Mode: Leased, Create: true, Prefix: "bench", CacheSize: n})
	if err != nil {
		b.Fatal(err)
	}
	if err := cached.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cached.Delete(ctx); _ = cached.Close() }()
	if err := cached.UpdatePeers(ctx, benchPeers(n, 0)); err != nil {
		b.Fatal(err)
	}
	b.Run("PeerByID/owner-cache", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := cached.PeerByID(ctx, int64(1+i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Session", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Session(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
