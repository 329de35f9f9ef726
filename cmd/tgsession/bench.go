package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/storage"
)

// benchRow is one measurement.
type benchRow struct {
	Op          string  `json:"op"`
	Goroutines  int     `json:"goroutines"`
	PerSec      float64 `json:"per_sec"` // operations (or peers, for writes) per second
	Unit        string  `json:"unit"`
	Baseline    string  `json:"baseline,omitempty"`
	Ratio       float64 `json:"ratio,omitempty"` // PerSec / the baseline's PerSec
	MeanLatency string  `json:"mean_latency,omitempty"`
}

// measure runs op from g goroutines for d and returns operations per second.
func measure(g int, d time.Duration, op func(i int) error) (float64, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(stop); i += g {
				if err := op(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// benchPeers returns n peers stamped now, so that their usernames resolve
// whichever way they are written (ImportPeers keeps the stamp).
func benchPeers(n, seed int) []storage.Peer {
	peers := make([]storage.Peer, n)
	now := time.Now().Unix()
	for i := range peers {
		id := int64(1 + i)
		p := storage.Peer{ID: id, AccessHash: storage.Some(id*2654435761 + int64(seed)), Type: storage.PeerUser, LastUpdateOn: now}
		if i%10 < 8 { // 80% with a username
			p.Usernames = []string{"user_" + strconv.Itoa(i)}
		}
		if i%10 < 3 { // 30% with a phone
			p.PhoneNumber = strconv.Itoa(15550000000 + i)
		}
		peers[i] = p
	}
	return peers
}

func usedMemory(ctx context.Context, c redis.UniversalClient) (int64, error) {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO")
}

// bench measures the store against raw Redis on the same server and client.
func (c *cli) bench(ctx context.Context, args []string) error {
	var f flags
	var dur time.Duration
	var memPeers int
	fs := c.flagSet(&f, "--redis URL [--duration 1s] [--memory-peers 1000000]")
	fs.DurationVar(&dur, "duration", time.Second, "how long each measurement runs")
	fs.IntVar(&memPeers, "memory-peers", 1000000, "peers to load for the memory-per-peer figure (0 skips it)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if f.redis == "" {
		return usageErr("bench needs a real Redis (the numbers mean nothing on the embedded one): pass --redis URL")
	}
	client, where, err := connect(f.redis)
	if err != nil {
		return exitError{2, err}
	}
	defer client.Close()
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	prefix := "tgsession-bench:" + hex.EncodeToString(run)
	var rows []benchRow
	add := func(r benchRow) {
		rows = append(rows, r)
		if !f.json {
			fmt.Fprintf(c.errOut, "  %-34s x%-3d %12.0f %s\n", r.Op, r.Goroutines, r.PerSec, r.Unit)
		}
	}
	fmt.Fprintf(c.errOut, "bench on %s, %d CPUs, %v per measurement\n", where, runtime.NumCPU(), dur)

	// Raw baselines.
	rawKey := prefix + ":{raw}:peer"
	if err := client.HSet(ctx, rawKey, "type", "user", "access_hash", "-4611686018427387904", "usernames", "user_1",
		"phone_number", "15550000001", "last_update_on", "1795631487").Err(); err != nil {
		return err
	}
	defer client.Del(ctx, rawKey)
	raw := map[int]float64{}
	for _, g := range []int{1, 8, 64} {
		v, err := measure(g, dur, func(int) error { return client.HGetAll(ctx, rawKey).Err() })
		if err != nil {
			return err
		}
		raw[g] = v
		add(benchRow{Op: "raw HGETALL (round trip)", Goroutines: g, PerSec: v, Unit: "op", MeanLatency: latency(v, g)})
	}
	peers1000 := benchPeers(1000, 0)
	rawBase := prefix + ":{raw}:p:"
	rawHSet, err := measure(1, dur, func(int) error {
		pipe := client.Pipeline()
		for _, p := range peers1000 {
			pipe.HSet(ctx, rawBase+strconv.FormatInt(p.ID, 10), "type", "user", "access_hash", strconv.FormatInt(p.AccessHash.V, 10),
				"usernames", strings.Join(p.Usernames, " "), "phone_number", p.PhoneNumber, "last_update_on", "1795631487")
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return err
	}
	rawHSet *= 1000
	add(benchRow{Op: "raw pipelined HSET, 1000 peers", Goroutines: 1, PerSec: rawHSet, Unit: "peer"})
	for _, p := range peers1000 {
		client.Del(ctx, rawBase+strconv.FormatInt(p.ID, 10))
	}

	// The store, owning its session (fenced writes), without and with the cache.
	open := func(name string, cache bool) (*redisstore.Store, error) {
		opts := redisstore.Options{Mode: redisstore.Leased, Prefix: prefix}
		if cache {
			opts.CacheSize = 100000
		}
		s, err := redisstore.New(client, name, opts)
		if err != nil {
			return nil, err
		}
		return s, s.Open(ctx)
	}
	s, err := open("bench", false)
	if err != nil {
		return err
	}
	defer func() { _ = s.Delete(ctx); _ = s.Close() }()
	if err := s.ImportPeers(ctx, benchPeers(10000, 0)); err != nil {
		return err
	}
	for _, n := range []int{1, 100, 1000, 10000} {
		batches := [2][]storage.Peer{benchPeers(n, 1), benchPeers(n, 2)}
		v, err := measure(1, dur, func(i int) error { return s.UpdatePeers(ctx, batches[i%2]) })
		if err != nil {
			return err
		}
		r := benchRow{Op: fmt.Sprintf("UpdatePeers(%d)", n), Goroutines: 1, PerSec: v * float64(n), Unit: "peer",
			Baseline: "raw pipelined HSET, 1000 peers", Ratio: v * float64(n) / rawHSet}
		if n == 1 { // one peer per call: a round trip, compared with one
			r.Baseline, r.Ratio, r.MeanLatency = "raw HGETALL (round trip)", v/raw[1], latency(v, 1)
		}
		add(r)
	}
	lookups := []struct {
		name string
		fn   func(st *redisstore.Store, i int) error
	}{
		{"PeerByID", func(st *redisstore.Store, i int) error { _, err := st.PeerByID(ctx, int64(1+i%10000)); return err }},
		{"PeerByUsername", func(st *redisstore.Store, i int) error {
			_, err := st.PeerByUsername(ctx, "user_"+strconv.Itoa((i%1000)*10))
			return err
		}},
		{"PeerByPhoneNumber", func(st *redisstore.Store, i int) error {
			_, err := st.PeerByPhoneNumber(ctx, strconv.Itoa(15550000000+(i%1000)*10))
			return err
		}},
		{"Session (whole load)", func(st *redisstore.Store, _ int) error { _, err := st.Session(ctx); return err }},
	}
	for _, l := range lookups {
		for _, g := range []int{1, 8, 64} {
			v, err := measure(g, dur, func(i int) error { return l.fn(s, i) })
			if err != nil {
				return err
			}
			add(benchRow{Op: l.name, Goroutines: g, PerSec: v, Unit: "op", Baseline: "raw HGETALL (round trip)",
				Ratio: v / raw[g], MeanLatency: latency(v, g)})
		}
	}
	cached, err := open("bench-cached", true)
	if err != nil {
		return err
	}
	defer func() { _ = cached.Delete(ctx); _ = cached.Close() }()
	if err := cached.ImportPeers(ctx, benchPeers(10000, 0)); err != nil {
		return err
	}
	for i := 1; i <= 10000; i++ { // warm the cache
		if _, err := cached.PeerByID(ctx, int64(i)); err != nil {
			return err
		}
	}
	for _, g := range []int{1, 8} {
		v, err := measure(g, dur, func(i int) error { return lookups[0].fn(cached, i) })
		if err != nil {
			return err
		}
		add(benchRow{Op: "PeerByID, owner cache", Goroutines: g, PerSec: v, Unit: "op", Baseline: "raw HGETALL (round trip)",
			Ratio: v / raw[g], MeanLatency: latency(v, g)})
	}

	// Memory per peer at scale.
	if memPeers > 0 {
		before, err := usedMemory(ctx, client)
		if err != nil {
			return err
		}
		m, err := open("bench-memory", false)
		if err != nil {
			return err
		}
		all := benchPeers(memPeers, 0)
		for i := 0; i < len(all); i += 1000 {
			if err := m.ImportPeers(ctx, all[i:min(i+1000, len(all))]); err != nil {
				return err
			}
		}
		after, err := usedMemory(ctx, client)
		if err != nil {
			return err
		}
		per := float64(after-before) / float64(memPeers)
		add(benchRow{Op: fmt.Sprintf("memory per peer at %d peers (80%% usernames, 30%% phones)", memPeers), Goroutines: 1, PerSec: per, Unit: "B/peer"})
		_ = m.Delete(ctx)
		_ = m.Close()
	}

	if f.json {
		return c.printJSON(rows)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tgoroutines\tper second\tunit\tmean latency\tvs raw Redis\t")
	fmt.Fprintln(tw, "\t\t\t\t\t(throughput ratio)\t")
	for _, r := range rows {
		ratio := ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", r.Ratio)
		}
		val := fmt.Sprintf("%.0f", r.PerSec)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", r.Op, r.Goroutines, val, r.Unit, r.MeanLatency, ratio)
	}
	return tw.Flush()
}

func latency(perSec float64, g int) string {
	if perSec == 0 {
		return ""
	}
	return (time.Duration(float64(g) / perSec * float64(time.Second))).Round(100 * time.Nanosecond).String()
}
