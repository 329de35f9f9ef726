package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/internal/redisutil"
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
	// RoundTrips is the mean number of Redis round trips per operation
	// (update stream only).
	RoundTrips float64 `json:"round_trips_per_op,omitempty"`
	// ServerMicros is Redis's own time per operation in microseconds (INFO
	// commandstats: the usec of the operation's top-level commands, which
	// for a script include the commands it calls), where measured.
	ServerMicros float64 `json:"server_usec_per_op,omitempty"`
}

// measure runs op from g goroutines for d and returns operations per second
// and how many operations ran.
func measure(g int, d time.Duration, op func(i int) error) (float64, int64, error) {
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
		return 0, 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), n.Load(), nil
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
	if v := redisutil.InfoField(info, "used_memory"); v != "" {
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("no used_memory in INFO")
}

// bench measures the store against raw Redis on the same server and client.
func (c *cli) bench(ctx context.Context, args []string) error {
	var f flags
	var dur time.Duration
	var memPeers, streamLen int
	var yes bool
	fs := c.flagSet(&f, "--redis URL [--duration 1s] [--memory-peers 1000000] [--stream-updates 100000] [--yes]")
	fs.BoolVar(&yes, "yes", false, "do not ask before loading --memory-peers into a server that holds other keys")
	fs.DurationVar(&dur, "duration", time.Second, "how long each measurement runs")
	fs.IntVar(&memPeers, "memory-peers", 1000000, "peers to load for the memory-per-peer figure (0 skips it)")
	fs.IntVar(&streamLen, "stream-updates", 100000, "updates of the cached update stream, from a cold cache (its round trips per update fall as the cache warms)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if f.redis == "" && os.Getenv("REDIS_URL") == "" {
		return usageErr("bench needs a real Redis (the numbers mean nothing on the embedded one): pass --redis URL or set REDIS_URL")
	}
	client, where, err := connect(f.redis, f.tls)
	if err != nil {
		return exitError{2, err}
	}
	defer client.Close()
	if memPeers >= benchAskAbove {
		n, err := client.DBSize(ctx).Result()
		if err != nil {
			return fmt.Errorf("count the server's keys (DBSIZE) before loading %d peers: %w", memPeers, err)
		}
		if n > 0 {
			q := fmt.Sprintf("the server holds %d keys; load %d peers (about %d MB, deleted afterwards) under %s:bench-*", n, memPeers, memPeers*250>>20, f.prefix)
			if err := c.confirm(yes, q); err != nil {
				return err
			}
		}
	}
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	// Under --prefix, so an ACL that confines the operator to ~PREFIX:* covers the run.
	b := &bencher{c: c, ctx: ctx, client: client, prefix: f.prefix + ":bench-" + hex.EncodeToString(run), dur: dur, quiet: f.json,
		streamLen: max(streamLen, 1), trips: &redisutil.Counter{}}
	client.AddHook(b.trips)
	defer b.deleteAll()
	fmt.Fprintf(c.errOut, "bench on %s, %d CPUs, %v per measurement\n", where, runtime.NumCPU(), dur)

	s, err := b.open("bench", false) // 10000 peers, for lookups
	if err != nil {
		return err
	}
	w, err := b.open("bench-writes", false) // grows with the write measurements
	if err != nil {
		return err
	}
	for _, step := range []func() error{
		b.rawRoundTrip,
		b.rawHGet,
		b.rawWrite,
		func() error { return b.updatePeers(w) },
		func() error { return b.lookups(s) },
		b.ownerCache,
		b.stream,
		func() error { return b.memoryPerPeer(memPeers) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	if f.json {
		return c.printJSON(b.rows)
	}
	return b.table()
}

// benchAskAbove is the --memory-peers count from which bench asks before
// loading into a server that holds other keys.
const benchAskAbove = 10000

// bencher runs the measurements of one bench, each against a raw-Redis
// baseline measured on the same server and client in the same run.
type bencher struct {
	c      *cli
	ctx    context.Context
	client redis.UniversalClient
	prefix string // every key of the run is under it
	dur    time.Duration
	quiet  bool // no progress lines (--json)
	// streamLen is how many updates the cached update stream runs (from a
	// cold cache), whatever the duration: its round trips per update depend
	// on how many updates ran, not on how fast.
	streamLen int

	rows     []benchRow
	raw      map[int]float64    // the raw HGETALL rate per goroutine count
	rawPeers float64            // the raw write rate (one HSET of 1000 new rows), peers/s
	rawGet   map[int]float64    // the raw HGET rate per goroutine count
	rawRows  string             // the hash of 10000 rows the raw HGETs read
	trips    *redisutil.Counter // counts the client's round trips
	stores   []*redisstore.Store
}

// deleteAll deletes the run's sessions at the end, so that no measurement
// runs while Redis frees a deleted one in the background.
func (b *bencher) deleteAll() {
	if b.rawRows != "" {
		b.client.Del(b.ctx, b.rawRows)
	}
	for _, s := range b.stores {
		_ = s.Delete(b.ctx)
		_ = s.Close()
	}
}

const (
	rawRoundTripOp    = "raw HGETALL (round trip)"
	rawWriteOp        = "raw HSET of 1000 new rows into one hash"
	rawIndexedWriteOp = "raw HSET of 1000 new rows + username and phone indexes"
	luaFloorWriteOp   = "Lua floor: a script that only HSETs those rows and indexes"
)

func (b *bencher) add(r benchRow) {
	b.rows = append(b.rows, r)
	if !b.quiet {
		fmt.Fprintf(b.c.errOut, "  %-34s x%-3d %12.0f %s\n", r.Op, r.Goroutines, r.PerSec, r.Unit)
	}
}

// open opens a store that owns its session (fenced writes), with or
// without the owner cache, holding 10000 peers.
func (b *bencher) open(name string, cache bool) (*redisstore.Store, error) {
	opts := redisstore.Options{Mode: redisstore.Leased, Create: true, Prefix: b.prefix}
	if cache {
		opts.CacheSize = 100000
	}
	s, err := redisstore.New(b.client, name, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Open(b.ctx); err != nil {
		return nil, err
	}
	b.stores = append(b.stores, s)
	return s, s.ImportPeers(b.ctx, benchPeers(10000, 0))
}

// rawRoundTrip is the baseline of every lookup: one HGETALL of a small hash
// holding a peer's fields, at 1, 8 and 64 goroutines.
func (b *bencher) rawRoundTrip() error {
	key := b.prefix + ":{raw}:peer"
	if err := b.client.HSet(b.ctx, key, "type", "user", "access_hash", "-4611686018427387904", "usernames", "user_1",
		"phone_number", "15550000001", "last_update_on", "1795631487").Err(); err != nil {
		return err
	}
	defer b.client.Del(b.ctx, key)
	b.raw = map[int]float64{}
	for _, g := range []int{1, 8, 64} {
		v, _, err := measure(g, b.dur, func(int) error { return b.client.HGetAll(b.ctx, key).Err() })
		if err != nil {
			return err
		}
		b.raw[g] = v
		b.add(benchRow{Op: rawRoundTripOp, Goroutines: g, PerSec: v, Unit: "op", MeanLatency: latency(v, g)})
	}
	return nil
}

// rawWrite measures the baseline of batched writes: the cheapest raw
// command that stores 1000 new peers' rows in the store's own shape, one
// HSET of 1000 id -> row pairs into one hash (keys.go), new ids every call
// like the store's measurement; and, for reference, the same with the
// username and phone indexes (three HSETs pipelined in one round trip), and
// the Lua floor: those three HSETs made by a script (lua/floor_write.lua)
// from arguments split by the client, which bounds what any script that
// keeps the indexes can reach. No validation, no fencing, no reading of old
// rows.
func (b *bencher) rawWrite() error {
	base := b.prefix + ":{raw}:"
	defer b.client.Del(b.ctx, base+"p", base+"u", base+"ph", base+"p2", base+"p3", base+"u3", base+"ph3")
	for _, kind := range []string{rawWriteOp, rawIndexedWriteOp, luaFloorWriteOp} {
		var next int64
		before := b.serverStats()
		v, n, err := measure(1, b.dur, func(int) error {
			peers := benchPeersFrom(next, 1000)
			next += 1000
			var rows, names, phones []any
			for _, p := range peers {
				id := strconv.FormatInt(p.ID, 10)
				rows = append(rows, id, rawRow(p))
				for _, u := range p.Usernames {
					names = append(names, u, id)
				}
				if p.PhoneNumber != "" {
					phones = append(phones, p.PhoneNumber, id)
				}
			}
			switch kind {
			case rawWriteOp:
				return b.client.HSet(b.ctx, base+"p", rows...).Err()
			case rawIndexedWriteOp:
				pipe := b.client.Pipeline()
				pipe.HSet(b.ctx, base+"p2", rows...)
				pipe.HSet(b.ctx, base+"u", names...)
				pipe.HSet(b.ctx, base+"ph", phones...)
				_, err := pipe.Exec(b.ctx)
				return err
			}
			args := append([]any{len(rows) / 2, len(names) / 2, len(phones) / 2}, rows...)
			args = append(append(args, names...), phones...)
			return scriptFloorWrite.Run(b.ctx, b.client, []string{base + "p3", base + "u3", base + "ph3"}, args...).Err()
		})
		if err != nil {
			return err
		}
		r := benchRow{Op: kind, Goroutines: 1, PerSec: v * 1000, Unit: "peer", ServerMicros: b.serverMicros(before, float64(n), "hset")}
		switch kind {
		case rawWriteOp:
			b.rawPeers = r.PerSec
		case luaFloorWriteOp:
			r.ServerMicros = b.serverMicros(before, float64(n), "evalsha", "eval")
			fallthrough
		default:
			r.Baseline, r.Ratio = rawWriteOp, v*1000/b.rawPeers
		}
		b.add(r)
	}
	return nil
}

//go:embed lua/floor_write.lua
var floorWriteLua string

// scriptFloorWrite is the Lua floor of batched writes (see rawWrite).
var scriptFloorWrite = redis.NewScript(floorWriteLua)

// rawRow is a bench peer's row in the store's text form (keys.go), for the
// raw baselines.
func rawRow(p storage.Peer) string {
	return fmt.Sprintf("user|%d|%s|%s||%d", p.AccessHash.V, strings.Join(p.Usernames, " "), p.PhoneNumber, p.LastUpdateOn)
}

// benchPeersFrom returns n peers with ids from 1+first, 80% with a
// username and 30% with a phone, stamped now.
func benchPeersFrom(first int64, n int) []storage.Peer {
	peers := benchPeers(n, 0)
	for i := range peers {
		p := &peers[i]
		p.ID += first
		k := p.ID - 1
		p.AccessHash = storage.Some(p.ID * 2654435761)
		if p.Usernames != nil {
			p.Usernames = []string{"user_" + strconv.FormatInt(k, 10)}
		}
		if p.PhoneNumber != "" {
			p.PhoneNumber = strconv.FormatInt(15550000000+k, 10)
		}
	}
	return peers
}

// updatePeers measures UpdatePeers of one changed peer (against one raw
// HGET round trip) and of 100, 1000 and 10000 new peers a call, and 1000
// known peers again (against one raw HSET of 1000 new rows), each with the
// server's time per call (INFO commandstats).
func (b *bencher) updatePeers(s *redisstore.Store) error {
	one := benchPeers(1, 0)[0]
	before := b.serverStats()
	v, raw, n, err := b.interleaved(func(i int) error {
		one.AccessHash = storage.Some(int64(i)) // changed every call
		return s.UpdatePeers(b.ctx, []storage.Peer{one})
	})
	if err != nil {
		return err
	}
	b.add(benchRow{Op: "UpdatePeers(1), a changed peer", Goroutines: 1, PerSec: v, Unit: "peer", Baseline: rawHGetInterleaved(raw),
		Ratio: v / raw, MeanLatency: latency(v, 1), ServerMicros: b.serverMicros(before, float64(n), "evalsha", "eval")})
	next := int64(10_000_000)
	for _, size := range []int{100, 1000, 10000} {
		before := b.serverStats()
		v, n, err := measure(1, b.dur, func(int) error {
			batch := benchPeersFrom(next, size)
			next += int64(size)
			return s.UpdatePeers(b.ctx, batch)
		})
		if err != nil {
			return err
		}
		b.add(benchRow{Op: fmt.Sprintf("UpdatePeers(%d), new peers", size), Goroutines: 1, PerSec: v * float64(size), Unit: "peer",
			Baseline: rawWriteOp, Ratio: v * float64(size) / b.rawPeers, ServerMicros: b.serverMicros(before, float64(n), "evalsha", "eval")})
	}
	batches := [2][]storage.Peer{benchPeers(1000, 1), benchPeers(1000, 2)}
	before = b.serverStats()
	v, n, err = measure(1, b.dur, func(i int) error { return s.UpdatePeers(b.ctx, batches[i%2]) })
	if err != nil {
		return err
	}
	b.add(benchRow{Op: "UpdatePeers(1000), known peers", Goroutines: 1, PerSec: v * 1000, Unit: "peer",
		Baseline: rawWriteOp, Ratio: v * 1000 / b.rawPeers, ServerMicros: b.serverMicros(before, float64(n), "evalsha", "eval")})
	return nil
}

// benchLookups are the read operations bench measures.
var benchLookups = []struct {
	name string
	fn   func(ctx context.Context, st *redisstore.Store, i int) error
}{
	{"PeerByID", func(ctx context.Context, st *redisstore.Store, i int) error {
		_, err := st.PeerByID(ctx, int64(1+i%10000))
		return err
	}},
	{"PeerByUsername", func(ctx context.Context, st *redisstore.Store, i int) error {
		_, err := st.PeerByUsername(ctx, "user_"+strconv.Itoa((i%1000)*10))
		return err
	}},
	{"PeerByPhoneNumber", func(ctx context.Context, st *redisstore.Store, i int) error {
		_, err := st.PeerByPhoneNumber(ctx, strconv.Itoa(15550000000+(i%1000)*10))
		return err
	}},
	{"Session (whole load)", func(ctx context.Context, st *redisstore.Store, _ int) error {
		_, err := st.Session(ctx)
		return err
	}},
}

// lookups measures every lookup at 1, 8 and 64 goroutines against one raw
// round trip at the same concurrency.
func (b *bencher) lookups(s *redisstore.Store) error {
	for _, l := range benchLookups {
		for _, g := range []int{1, 8, 64} {
			if err := b.lookup(l.name, s, g, func(i int) error { return l.fn(b.ctx, s, i) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookup measures one lookup at g goroutines: peer lookups against one raw
// HGET, the whole session against one raw HGETALL, at the same concurrency.
// At one goroutine the lookup and the raw HGET run interleaved (see there).
func (b *bencher) lookup(op string, s *redisstore.Store, g int, fn func(int) error) error {
	before := b.serverStats()
	var v, raw float64
	var n int64
	var err error
	if g == 1 {
		v, raw, n, err = b.interleaved(fn)
	} else {
		raw = b.rawGet[g]
		v, n, err = measure(g, b.dur, fn)
	}
	if err != nil {
		return err
	}
	r := benchRow{Op: op, Goroutines: g, PerSec: v, Unit: "op", Baseline: rawHGetOp, Ratio: v / raw, MeanLatency: latency(v, g)}
	if g == 1 {
		r.Baseline = rawHGetInterleaved(raw)
	}
	switch {
	case strings.HasPrefix(op, "Session"):
		r.Baseline, r.Ratio = rawRoundTripOp, v/b.raw[g] // not interleaved: HGETALL of a small hash
		r.ServerMicros = b.serverMicros(before, float64(n), "hgetall")
	case op == "PeerByID":
		r.ServerMicros = b.serverMicros(before, float64(n), "hget")
	case !strings.Contains(op, "cache"):
		r.ServerMicros = b.serverMicros(before, float64(n), "evalsha", "eval")
	}
	b.add(r)
	return nil
}

// ownerCache measures PeerByID from a warm owner cache.
func (b *bencher) ownerCache() error {
	cached, err := b.open("bench-cached", true)
	if err != nil {
		return err
	}
	for i := 1; i <= 10000; i++ { // warm the cache
		if _, err := cached.PeerByID(b.ctx, int64(i)); err != nil {
			return err
		}
	}
	byID := benchLookups[0].fn
	for _, g := range []int{1, 8} {
		if err := b.lookup("PeerByID, owner cache", cached, g, func(i int) error { return byID(b.ctx, cached, i) }); err != nil {
			return err
		}
	}
	return nil
}

// memoryPerPeer loads n peers into a session and reports the server's
// used_memory growth per peer (n 0 skips it).
func (b *bencher) memoryPerPeer(n int) error {
	if n <= 0 {
		return nil
	}
	before, err := usedMemory(b.ctx, b.client)
	if err != nil {
		return err
	}
	m, err := redisstore.New(b.client, "bench-memory", redisstore.Options{Mode: redisstore.Leased, Create: true, Prefix: b.prefix})
	if err != nil {
		return err
	}
	if err := m.Open(b.ctx); err != nil {
		return err
	}
	b.stores = append(b.stores, m)
	all := benchPeers(n, 0)
	for i := 0; i < len(all); i += 1000 {
		if err := m.ImportPeers(b.ctx, all[i:min(i+1000, len(all))]); err != nil {
			return err
		}
	}
	after, err := usedMemory(b.ctx, b.client)
	if err != nil {
		return err
	}
	b.add(benchRow{Op: fmt.Sprintf("memory per peer at %d peers (80%% usernames, 30%% phones)", n), Goroutines: 1,
		PerSec: float64(after-before) / float64(n), Unit: "B/peer"})
	return nil
}

// table prints the rows for people.
func (b *bencher) table() error {
	tw := tabwriter.NewWriter(b.c.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tgoroutines\tper second\tunit\tmean latency\tserver µs\tvs raw Redis\tround trips\t")
	fmt.Fprintln(tw, "\t\t\t\t\tper op\t(throughput ratio)\tper op\t")
	for _, r := range b.rows {
		ratio, server, trips := "", "", ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx %s", r.Ratio, r.Baseline)
		}
		if r.ServerMicros > 0 {
			server = fmt.Sprintf("%.1f", r.ServerMicros)
		}
		if r.Unit == "update" {
			trips = fmt.Sprintf("%.2f", r.RoundTrips)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.Op, r.Goroutines, r.PerSec, r.Unit, r.MeanLatency, server, ratio, trips)
	}
	return tw.Flush()
}

func latency(perSec float64, g int) string {
	if perSec == 0 {
		return ""
	}
	return (time.Duration(float64(g) / perSec * float64(time.Second))).Round(100 * time.Nanosecond).String()
}
