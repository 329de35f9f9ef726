package main

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/storage"
)

// rawHGetOp is the baseline of single-key reads and single-peer writes: one
// HGET of a peer row, one round trip.
const rawHGetOp = "raw HGET (round trip)"

// rawHGet measures one HGET of a peer row: the round trip that PeerByID and
// a single-peer write are compared with.
func (b *bencher) rawHGet() error {
	key := b.prefix + ":{raw}:rows"
	if err := b.client.HSet(b.ctx, key, "12345", "user|-4611686018427387904|user_1|15550000001||1795631487").Err(); err != nil {
		return err
	}
	defer b.client.Del(b.ctx, key)
	v, err := measure(1, b.dur, func(int) error { return b.client.HGet(b.ctx, key, "12345").Err() })
	if err != nil {
		return err
	}
	b.rawGet = v
	b.add(benchRow{Op: rawHGetOp, Goroutines: 1, PerSec: v, Unit: "op", MeanLatency: latency(v, 1)})
	return nil
}

// streamUpdate is one incoming update of a bot: 1-3 users drawn from a
// Zipf(s=1.1) distribution over 50,000 users (80% with a username, 30% with
// a phone) and one of 200 channels.
type streamUpdate []storage.Peer

// updateStream returns a deterministic source of updates.
func updateStream(seed uint64) func() streamUpdate {
	r := rand.New(rand.NewPCG(seed, 1))
	zipf := rand.NewZipf(r, 1.1, 1, 49999)
	return func() streamUpdate {
		n := 1 + r.IntN(3)
		u := make(streamUpdate, 0, n+1)
		for range n {
			k := int64(zipf.Uint64())
			p := storage.Peer{ID: 1_000_000 + k, AccessHash: storage.Some(k*7919 + 1), Type: storage.PeerUser}
			if k%10 < 8 {
				p.Usernames = []string{"su_" + strconv.FormatInt(k, 10)}
			}
			if k%10 < 3 {
				p.PhoneNumber = strconv.FormatInt(16660000000+k, 10)
			}
			u = append(u, p)
		}
		c := int64(r.IntN(200))
		u = append(u, storage.Peer{ID: storage.ChannelID(1_500_000_000 + c), AccessHash: storage.Some(c*31 + 7), Type: storage.PeerChannel,
			Usernames: []string{"chan_" + strconv.FormatInt(c, 10)}})
		return u
	}
}

// stream measures a bot's update stream: for every update, UpdatePeers with
// its users and channel, then PeerByID of its first user; with and without
// the owner cache, reporting updates per second and round trips per update.
func (b *bencher) stream() error {
	for _, cache := range []bool{false, true} {
		opts := redisstore.Options{Mode: redisstore.Leased, Prefix: b.prefix}
		op := "update stream (UpdatePeers + PeerByID)"
		if cache {
			opts.CacheSize = 100000
			op = "update stream, owner cache"
		}
		s, err := redisstore.New(b.client, "bench-stream-"+strconv.FormatBool(cache), opts)
		if err != nil {
			return err
		}
		if err := s.Open(b.ctx); err != nil {
			return err
		}
		b.stores = append(b.stores, s)
		next := updateStream(42)
		before := b.trips.RoundTrips()
		var updates atomic.Int64
		v, err := measure(1, b.dur, func(int) error {
			u := next()
			if err := s.UpdatePeers(b.ctx, u); err != nil {
				return err
			}
			updates.Add(1)
			_, err := s.PeerByID(b.ctx, u[0].ID)
			return err
		})
		if err != nil {
			return err
		}
		trips := float64(b.trips.RoundTrips()-before) / float64(max(updates.Load(), 1))
		b.add(benchRow{Op: op, Goroutines: 1, PerSec: v, Unit: "update", MeanLatency: latency(v, 1), RoundTrips: trips,
			Baseline: rawHGetOp, Ratio: v / b.rawGet})
	}
	return nil
}
