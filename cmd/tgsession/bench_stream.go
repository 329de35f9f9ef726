package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/storage"
)

// rawHGetOp is the baseline of single-key reads and single-peer writes: one
// HGET of a peer row, one round trip.
const rawHGetOp = "raw HGET (round trip)"

// rawHGet measures one HGET of a peer row at 1, 8 and 64 goroutines: the
// round trip that peer lookups and a single-peer write are compared with.
// The hash holds the same 10000 rows as the session the lookups read, and
// the reads pick the same ids.
func (b *bencher) rawHGet() error {
	key := b.prefix + ":{raw}:rows"
	var rows []any
	for _, p := range benchPeers(10000, 0) {
		rows = append(rows, strconv.FormatInt(p.ID, 10), rawRow(p))
	}
	if err := b.client.HSet(b.ctx, key, rows...).Err(); err != nil {
		return err
	}
	b.rawRows = key // kept for interleaved; deleteAll removes it
	b.rawGet = map[int]float64{}
	for _, g := range []int{1, 8, 64} {
		before := b.serverStats()
		v, n, err := measure(g, b.dur, func(i int) error { return b.client.HGet(b.ctx, key, strconv.Itoa(1+i%10000)).Err() })
		if err != nil {
			return err
		}
		b.rawGet[g] = v
		b.add(benchRow{Op: rawHGetOp, Goroutines: g, PerSec: v, Unit: "op", MeanLatency: latency(v, g),
			ServerMicros: b.serverMicros(before, float64(n), "hget")})
	}
	return nil
}

// interleaved measures op and one raw HGET of the rows hash (rawHGet) from
// one goroutine, alternating in 20 slices of b.dur/20 each, so that the
// machine's drift (a neighbour, the server's own housekeeping) hits both
// alike. It returns op's rate, the raw rate over the same slices, and how
// many times op ran.
func (b *bencher) interleaved(op func(i int) error) (opRate, rawRate float64, n int64, err error) {
	const slices = 20
	var opT, rawT time.Duration
	var rawN int64
	slice := b.dur / slices
	for range slices {
		start := time.Now()
		_, k, err := measure(1, slice, func(i int) error { return op(int(n) + i) })
		if err != nil {
			return 0, 0, 0, err
		}
		opT += time.Since(start)
		n += k
		start = time.Now()
		_, k, err = measure(1, slice, func(i int) error {
			return b.client.HGet(b.ctx, b.rawRows, strconv.Itoa(1+(int(rawN)+i)%10000)).Err()
		})
		if err != nil {
			return 0, 0, 0, err
		}
		rawT += time.Since(start)
		rawN += k
	}
	return float64(n) / opT.Seconds(), float64(rawN) / rawT.Seconds(), n, nil
}

// rawHGetInterleaved names the baseline of a row measured with interleaved.
func rawHGetInterleaved(rate float64) string {
	return fmt.Sprintf("raw HGET, interleaved (%s)", latency(rate, 1))
}

// commandStats is INFO commandstats: calls and usec per command name.
type commandStats map[string][2]float64

// serverStats reads INFO commandstats (nil if the server refuses it: the
// server-time column is then left empty).
func (b *bencher) serverStats() commandStats {
	info, err := b.client.Info(b.ctx, "commandstats").Result()
	if err != nil {
		return nil
	}
	st := commandStats{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var v [2]float64
		for _, kv := range strings.Split(rest, ",") {
			k, x, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(x, 64)
			switch k {
			case "calls":
				v[0] = f
			case "usec":
				v[1] = f
			}
		}
		st[strings.TrimPrefix(name, "cmdstat_")] = v
	}
	return st
}

// serverMicros returns the server's time per operation since before: the
// usec of the named top-level commands over ops operations (0 if unknown).
func (b *bencher) serverMicros(before commandStats, ops float64, cmds ...string) float64 {
	after := b.serverStats()
	if before == nil || after == nil || ops <= 0 {
		return 0
	}
	var usec float64
	for _, c := range cmds {
		usec += after[c][1] - before[c][1]
	}
	return usec / ops
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
// Without the cache every update costs the same, so it runs for b.dur; with
// it, an update costs a round trip only when it brings a peer the cache has
// not seen (or one that changed), so round trips per update fall as the
// cache warms: that run is the first b.streamLen updates of the same
// deterministic stream, from a cold cache, however long they take. (With
// this stream: 0.41 over the first 10,000 updates, 0.26 over 50,000, 0.20
// over 100,000, 0.14 over 200,000: updates that bring an unseen user or
// channel, counted by a simulation of the same generator.)
func (b *bencher) stream() error {
	for _, cache := range []bool{false, true} {
		opts := redisstore.Options{Mode: redisstore.Leased, Create: true, Prefix: b.prefix}
		op := "update stream (UpdatePeers + PeerByID)"
		if cache {
			opts.CacheSize = 100000
			op = fmt.Sprintf("update stream, owner cache (first %d updates)", b.streamLen)
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
		stats := b.serverStats()
		var updates atomic.Int64
		update := func(int) error {
			u := next()
			if err := s.UpdatePeers(b.ctx, u); err != nil {
				return err
			}
			updates.Add(1)
			_, err := s.PeerByID(b.ctx, u[0].ID)
			return err
		}
		var v float64
		var n int64
		if cache {
			start := time.Now()
			for i := range b.streamLen {
				if err := update(i); err != nil {
					return err
				}
			}
			n = int64(b.streamLen)
			v = float64(n) / time.Since(start).Seconds()
		} else if v, n, err = measure(1, b.dur, update); err != nil {
			return err
		}
		trips := float64(b.trips.RoundTrips()-before) / float64(max(updates.Load(), 1))
		b.add(benchRow{Op: op, Goroutines: 1, PerSec: v, Unit: "update", MeanLatency: latency(v, 1), RoundTrips: trips,
			Baseline: rawHGetOp, Ratio: v / b.rawGet[1], ServerMicros: b.serverMicros(stats, float64(n), "evalsha", "eval", "hget")})
	}
	return nil
}
