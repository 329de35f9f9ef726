package redisstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/internal/redisutil"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
	"github.com/tgsession/redisstore/storage/storagetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain())
	}
	redistest.Main(m)
}

// hostileNames must all work as session names.
var hostileNames = []string{"", "{", "}", "a}:x", ":", "{a}", "%", "%25", "ünïcödé-会话", strings.Repeat("k", 1024), "tag}{x", "plain"}

// backend is a Redis server a test runs against.
type backend struct {
	name   string
	client func(t *testing.T) redis.UniversalClient
	mini   func(t *testing.T) *miniredis.Miniredis // nil for real servers
	prefix string                                  // the base of the tests' key prefixes ("" for any)
}

func miniBackend() backend {
	var m *miniredis.Miniredis
	return backend{
		name: "miniredis",
		client: func(t *testing.T) redis.UniversalClient {
			m = miniredis.RunT(t)
			c := redis.NewClient(&redis.Options{Addr: m.Addr()})
			t.Cleanup(func() { c.Close() })
			return c
		},
		mini: func(*testing.T) *miniredis.Miniredis { return m },
	}
}

func realBackend() backend {
	return backend{
		name: "redis-server",
		client: func(t *testing.T) redis.UniversalClient {
			srv := redistest.Require(t)
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

func sentinelBackend() backend {
	return backend{
		name: "sentinel",
		client: func(t *testing.T) redis.UniversalClient {
			c := redistest.RequireSentinel(t).Client()
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

func clusterBackend() backend {
	return backend{
		name: "cluster",
		client: func(t *testing.T) redis.UniversalClient {
			c := redistest.RequireCluster(t).Client()
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

// tlsBackend is a redis-server that requires a client certificate on its
// TLS port (redistest.StartTLS), reached over TLS with the generated CA.
func tlsBackend() backend {
	return backend{
		name: "tls",
		client: func(t *testing.T) redis.UniversalClient {
			redistest.Require(t)
			srv, err := redistest.StartTLS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Stop)
			c := redis.NewClient(&redis.Options{Addr: srv.TLSAddr, TLSConfig: clientTLS(t, srv.Files)})
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

// clientTLS is the TLS configuration a library user writes (README,
// "Deploying safely"): the CA and a client certificate.
func clientTLS(t *testing.T, f redistest.TLSFiles) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	ca.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca, Certificates: []tls.Certificate{cert}}
}

// aclBackend is a private redis-server reached as the worker user whose ACL
// README.md documents (the line is read from the README), so every test on
// it runs with exactly those permissions, under prefixes nested in the
// documented "tgsession".
func aclBackend() backend {
	return backend{
		name:   "acl-worker",
		prefix: DefaultPrefix + ":",
		client: func(t *testing.T) redis.UniversalClient {
			redistest.Require(t)
			srv, err := redistest.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Stop)
			user := redistest.READMEACL(t, srv, "README.md", "worker")
			c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: user, Password: "pw"})
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

// backends are miniredis, a single redis-server, Sentinel (primary, replica,
// 3 Sentinels) and a 3+3 Cluster, the last three started by the harness.
func backends() []backend {
	return []backend{miniBackend(), realBackend(), sentinelBackend(), clusterBackend()}
}

// deploymentBackends are backends() plus TLS and the README's worker ACL: the
// conformance suite and the lease tests run on them too.
func deploymentBackends() []backend {
	return append(backends(), tlsBackend(), aclBackend())
}

var nameSeq atomic.Int64

// uniqueName returns a session name no other test uses, built on one of the
// hostile names so the whole suite exercises them.
func uniqueName() string {
	n := nameSeq.Add(1)
	return fmt.Sprintf("%s|%d", hostileNames[int(n)%len(hostileNames)], n)
}

// testKeyring is a fixed two-key keyring ("t2" current, "t1" older).
func testKeyring() *keyring.Keyring {
	r, err := keyring.New([]string{"t2", "t1"}, [][]byte{bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		panic(err)
	}
	return r
}

// TestConformance runs the storagetest suite on miniredis and a real
// redis-server, each both Unfenced and with a lease (every write fenced).
func TestConformance(t *testing.T) {
	modes := []struct {
		name string
		opts Options
	}{
		{"unfenced", Options{Mode: Unfenced}},
		{"lease", Options{Mode: Leased, Create: true, Lease: lock.Options{TTL: 10 * time.Second}}},
		// A small cache, so the suite also runs through evictions.
		{"lease+cache", Options{Mode: Leased, Create: true, Lease: lock.Options{TTL: 10 * time.Second}, CacheSize: 50}},
		// Auth keys encrypted at rest (package keyring).
		{"lease+keys", Options{Mode: Leased, Create: true, Lease: lock.Options{TTL: 10 * time.Second}, Keys: testKeyring()}},
	}
	for _, b := range deploymentBackends() {
		t.Run(b.name, func(t *testing.T) {
			client := b.client(t)
			for _, mode := range modes {
				t.Run(mode.name, func(t *testing.T) {
					prefix := b.prefix + "conf-" + redistest.TempName(t)
					storagetest.Run(t, func(t *testing.T, clock func() time.Time) storage.Storage {
						o := mode.opts
						o.Prefix, o.Clock, o.BatchSize = prefix, clock, 700
						s, err := New(client, uniqueName(), o)
						if err != nil {
							t.Fatal(err)
						}
						return s
					})
				})
			}
		})
	}
}

// newStore opens an Unfenced store under a prefix of the test's own; more
// (may be nil) adds options.
func newStore(t *testing.T, c redis.UniversalClient, more func(*Options)) *Store {
	t.Helper()
	o := Options{Mode: Unfenced, Prefix: "t-" + redistest.TempName(t)}
	if more != nil {
		more(&o)
	}
	s, err := New(c, uniqueName(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(context.Background()) })
	return s
}

// crc16 is Redis Cluster's key hash (CRC16-CCITT/XMODEM).
func crc16(b string) uint16 {
	var crc uint16
	for i := 0; i < len(b); i++ {
		crc ^= uint16(b[i]) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slot computes a key's cluster slot the way Redis does.
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % 16384
}

func TestSlotMatchesRedis(t *testing.T) {
	t.Parallel()
	// Reference values from Redis's documentation and CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{"123456789": 12739 % 16384, "foo": 12182, "{user1000}.following": 3443, "foo{}{bar}": 8363} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d; want %d", key, got, want)
		}
	}
}

func TestKeysHostileNames(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	names := append(slices.Clone(hostileNames), "a", "A", "a%", "%41", "a:", "a:s", "p:1", "\x00", "\xff", " ")
	for _, prefix := range []string{DefaultPrefix, "tenant:7"} {
		for _, name := range names {
			k := newKeys(prefix, name)
			all := []string{k.session, k.peers, k.usernames, k.phones, k.lease}
			tag := escapeName(name)
			if tag == "" || strings.ContainsAny(tag, "{}:") {
				t.Errorf("escapeName(%q) = %q: empty or contains a brace or ':'", name, tag)
			}
			if back, err := unescapeName(tag); err != nil || back != name {
				t.Errorf("unescapeName(escapeName(%q)) = %q, %v", name, back, err)
			}
			for _, key := range all {
				if slot(key) != slot(k.session) {
					t.Errorf("name %q: key %q is in slot %d, session in %d", name, key, slot(key), slot(k.session))
				}
				if strings.Count(key, "{") != 1 || strings.Count(key, "}") != 1 {
					t.Errorf("name %q: key %q must have exactly one hash tag", name, key)
				}
				if other, dup := seen[key]; dup {
					t.Errorf("key %q of %q collides with %q", key, name, other)
				}
				seen[key] = prefix + "/" + name
			}
			if registryKey(prefix) == k.session || strings.Contains(registryKey(prefix), "{") {
				t.Errorf("registry key %q must be outside every session", registryKey(prefix))
			}
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   Options
	}{
		{"nil client", nil, Options{Mode: Unfenced}},
		{"no ownership mode", c, Options{}},
		{"unknown ownership mode", c, Options{Mode: Mode(3)}},
		{"prefix with brace", c, Options{Mode: Unfenced, Prefix: "a{b"}},
		{"prefix with close brace", c, Options{Mode: Unfenced, Prefix: "a}"}},
		{"negative batch", c, Options{Mode: Unfenced, BatchSize: -1}},
		{"negative cache", c, Options{Mode: Leased, Create: true, CacheSize: -1}},
		{"durability without timeout", c, Options{Mode: Unfenced, Durability: Durability{Replicas: 1}}},
	}
	for _, tc := range tests {
		if _, err := New(tc.client, "x", tc.opts); err == nil {
			t.Errorf("%s: New succeeded; want an error", tc.name)
		}
	}
}

// snapshot returns every key of a session with its full contents.
func snapshot(t *testing.T, c redis.UniversalClient, s *Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(key string) {
		typ, err := c.Type(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "hash":
			v, err = c.HGetAll(ctx, key).Result()
		case "set":
			var m []string
			m, err = c.SMembers(ctx, key).Result()
			slices.Sort(m)
			v = m
		case "string":
			v, err = c.Get(ctx, key).Result()
		case "none":
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		out[key] = fmt.Sprint(v)
	}
	for _, k := range []string{s.keys.session, s.keys.peers, s.keys.usernames, s.keys.phones} {
		add(k)
	}
	return out
}

// TestUpdatePeersScriptErrorMidBatch: a batch that meets a key of the wrong
// type (the phone index, read after the rows and the username index) fails
// inside the script, and nothing of the batch is written.
func TestUpdatePeersScriptErrorMidBatch(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			s := newStore(t, c, nil)
			before := []storage.Peer{
				{ID: 1, AccessHash: storage.Some[int64](1), Type: storage.PeerUser, Usernames: []string{"one"}, PhoneNumber: "111"},
				{ID: 2, AccessHash: storage.Some[int64](2), Type: storage.PeerUser, Usernames: []string{"two"}},
			}
			if err := s.UpdatePeers(ctx, before); err != nil {
				t.Fatal(err)
			}
			if err := c.Del(ctx, s.keys.phones).Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, s.keys.phones, "not a hash", 0).Err(); err != nil {
				t.Fatal(err)
			}
			want := snapshot(t, c, s)
			batch := []storage.Peer{
				{ID: 11, Type: storage.PeerUser, Usernames: []string{"one"}},   // steals "one"
				{ID: 12, Type: storage.PeerUser, PhoneNumber: "111"},           // steals the phone
				{ID: 13, Type: storage.PeerUser, Usernames: []string{"three"}}, // its phone index is a string: WRONGTYPE
				{ID: 1, Type: storage.PeerUser},                                // would drop "one"
				{ID: 14, Type: storage.PeerUser, Usernames: []string{"two"}},
			}
			err := s.UpdatePeers(ctx, batch)
			if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
				t.Fatalf("UpdatePeers = %v; want a WRONGTYPE error", err)
			}
			if got := snapshot(t, c, s); !mapsEqual(got, want) {
				t.Errorf("a failed batch changed data:\n got %v\nwant %v", got, want)
			}

			// The same through a raw script call whose fourth group is malformed
			// (bypassing Go's validation): BADARG, nothing written.
			raw := updatePeersCall(s.keys, "", batch[:2])
			raw.args = append(raw.args, "15|user||x|||1", "16|user||Bad Name|||1")
			err = raw.run(ctx, c).Err()
			if !redis.HasErrorPrefix(err, "BADARG") {
				t.Fatalf("raw script with a bad group = %v; want BADARG", err)
			}
			if got := snapshot(t, c, s); !mapsEqual(got, want) {
				t.Errorf("a rejected raw batch changed data:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkIndexIntegrity asserts that every index entry points at a peer whose
// row holds that name, and that no other holder of the name was written later.
func checkIndexIntegrity(t *testing.T, c redis.UniversalClient, s *Store) {
	t.Helper()
	ctx := context.Background()
	all, err := c.HGetAll(ctx, s.keys.peers).Result()
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]map[string]string{}
	for id, raw := range all {
		n, _ := strconv.ParseInt(id, 10, 64)
		p, err := decodeRow(n, raw)
		if err != nil {
			t.Fatalf("peer %s: %v", id, err)
		}
		rows[id] = map[string]string{"usernames": strings.Join(p.Usernames, " "), "phone_number": p.PhoneNumber,
			"last_update_on": strconv.FormatInt(p.LastUpdateOn, 10)}
	}
	check := func(index string, field string, split func(string) []string) {
		entries, _ := c.HGetAll(ctx, index).Result()
		for name, id := range entries {
			row, ok := rows[id]
			if !ok || !slices.Contains(split(row[field]), name) {
				t.Errorf("stale index entry %q -> %s (row: %q)", name, id, row[field])
				continue
			}
			for other, orow := range rows {
				if other != id && slices.Contains(split(orow[field]), name) && orow["last_update_on"] > row["last_update_on"] {
					t.Errorf("%q -> %s, but %s holds it and was written later", name, id, other)
				}
			}
		}
	}
	check(s.keys.usernames, "usernames", strings.Fields)
	check(s.keys.phones, "phone_number", func(v string) []string { return []string{v} })
}

// TestRenameIndexIntegrity renames usernames and phones back and forth
// between peers, in batches and singly, and checks after every step that no
// stale index entry survives.
func TestRenameIndexIntegrity(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			s := newStore(t, c, nil)
			rng := rand.New(rand.NewPCG(1, 2))
			names := []string{"n0", "n1", "n2", "n3", "n4"}
			phones := []string{"100", "200", "300"}
			for step := 0; step < 150; step++ {
				var batch []storage.Peer
				for range 1 + rng.IntN(4) {
					p := storage.Peer{ID: int64(1 + rng.IntN(6)), AccessHash: storage.Some(rng.Int64()), Type: storage.PeerUser, Min: rng.IntN(5) == 0}
					for range rng.IntN(3) {
						p.Usernames = append(p.Usernames, names[rng.IntN(len(names))])
					}
					if rng.IntN(2) == 0 {
						p.PhoneNumber = phones[rng.IntN(len(phones))]
					}
					batch = append(batch, p)
				}
				if err := s.UpdatePeers(ctx, batch); err != nil {
					t.Fatal(err)
				}
				checkIndexIntegrity(t, c, s)
				if t.Failed() {
					t.Fatalf("index broken after step %d (batch %+v)", step, batch)
				}
			}
		})
	}
}

func TestLayoutVersionChecked(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			s := newStore(t, c, nil)
			if v, err := c.HGet(ctx, s.keys.session, "layout").Result(); err != nil || v != "2" {
				t.Fatalf("stored layout = %q, %v; want 2", v, err)
			}
			if err := c.HSet(ctx, s.keys.session, "layout", "3").Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Session(ctx); !errors.Is(err, storage.ErrLayoutVersion) {
				t.Errorf("Session of a layout-3 session: %v; want ErrLayoutVersion", err)
			}
			if err := s.SetDCID(ctx, storage.Some(1)); !errors.Is(err, storage.ErrLayoutVersion) {
				t.Errorf("SetDCID on a layout-3 session: %v; want ErrLayoutVersion", err)
			}
			if err := s.UpdatePeers(ctx, []storage.Peer{{ID: 1, Type: storage.PeerUser}}); !errors.Is(err, storage.ErrLayoutVersion) {
				t.Errorf("UpdatePeers on a layout-3 session: %v; want ErrLayoutVersion", err)
			}
			_ = s.Close()
			if err := s.Open(ctx); !errors.Is(err, storage.ErrLayoutVersion) {
				t.Errorf("Open of a layout-3 session: %v; want ErrLayoutVersion", err)
			}
			if v, _ := c.HGet(ctx, s.keys.session, "dc_id").Result(); v != "2" {
				t.Errorf("refused writes changed dc_id to %q", v)
			}
		})
	}
}

func TestOpenExisting(t *testing.T) {
	ctx := context.Background()
	c := miniBackend().client(t)
	prefix := "oe-" + redistest.TempName(t)
	s, err := New(c, "absent", Options{Mode: Unfenced, Prefix: prefix, OpenExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); !errors.Is(err, storage.ErrSessionNotFound) {
		t.Errorf("Open(OpenExisting) of a missing session = %v; want ErrSessionNotFound", err)
	}
	if names, _ := ListSessions(ctx, c, prefix); len(names) != 0 {
		t.Errorf("OpenExisting registered %q", names)
	}
}

func TestRegistry(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			prefix := "reg-" + redistest.TempName(t)
			var stores []*Store
			for _, name := range hostileNames[:6] {
				s, err := New(c, name, Options{Mode: Unfenced, Prefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Open(ctx); err != nil {
					t.Fatal(err)
				}
				stores = append(stores, s)
			}
			got, err := ListSessions(ctx, c, prefix)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(hostileNames[:6]))
			if !slices.Equal(got, want) {
				t.Errorf("ListSessions = %q; want %q", got, want)
			}
			for _, s := range stores {
				if err := s.Delete(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := ListSessions(ctx, c, prefix); err != nil || len(got) != 0 {
				t.Errorf("after Delete: ListSessions = %q, %v; want none", got, err)
			}
			if n, _ := c.Exists(ctx, registryKey(prefix)).Result(); n != 0 {
				t.Errorf("registry key left behind")
			}
		})
	}
}

func TestDeleteAndResume(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			s := newStore(t, c, nil)
			var peers []storage.Peer
			for i := int64(1); i <= 1050; i++ {
				peers = append(peers, storage.Peer{ID: i, AccessHash: storage.Some(i), Type: storage.PeerUser, Usernames: []string{fmt.Sprintf("u%d", i)}, PhoneNumber: fmt.Sprint(i)})
			}
			if err := s.UpdatePeers(ctx, peers); err != nil {
				t.Fatal(err)
			}
			if n, err := s.PeerCount(ctx); err != nil || n != 1050 {
				t.Fatalf("PeerCount = %d, %v; want 1050", n, err)
			}
			if err := s.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			if snap := snapshot(t, c, s); len(snap) != 0 {
				t.Errorf("keys left after Delete: %d", len(snap))
			}
			if m := b.mini; m != nil {
				for _, key := range m(t).Keys() {
					if strings.HasPrefix(key, s.keys.base) {
						t.Errorf("key %q left after Delete", key)
					}
				}
			}
			// A registered session whose hash vanished (removed by hand,
			// evicted) is not recreated blank: Open reports it lost. With
			// RecreateLost the peers left behind are cleaned up and a fresh
			// session is created.
			_ = s.Close()
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdatePeers(ctx, peers[:300]); err != nil {
				t.Fatal(err)
			}
			if err := c.Del(ctx, s.keys.session).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Session(ctx); !errors.Is(err, storage.ErrSessionNotFound) {
				t.Errorf("session without its hash: %v", err)
			}
			_ = s.Close()
			if err := s.Open(ctx); !errors.Is(err, ErrSessionLost) {
				t.Fatalf("Open after the session hash vanished: %v; want ErrSessionLost", err)
			}
			if n, _ := c.HLen(ctx, s.keys.peers).Result(); n != 300 {
				t.Errorf("a refused Open changed the peers: %d left; want 300", n)
			}
			o := s.opts
			o.RecreateLost = true
			s, err := New(c, s.Name(), o)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if n, _ := s.PeerCount(ctx); n != 0 {
				t.Errorf("PeerCount after the cleanup = %d; want 0", n)
			}
			if snap := snapshot(t, c, s); len(snap) != 1 {
				t.Errorf("keys after the cleanup: %v (want only the new session hash)", snap)
			}
		})
	}
}

func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	hook := &redisutil.Counter{}
	c.AddHook(hook)
	s := newStore(t, c, func(o *Options) { o.BatchSize = 3 })
	// Load the scripts so EVALSHA does not fall back and double the count.
	for _, sc := range allScripts {
		if err := sc.Load(ctx, c).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var peers []storage.Peer
	for i := int64(1); i <= 10; i++ {
		peers = append(peers, storage.Peer{ID: i, Type: storage.PeerUser, Usernames: []string{fmt.Sprintf("rt%d", i)}})
	}
	tests := []struct {
		name string
		call func() error
		want int64
	}{
		{"empty batch", func() error { return s.UpdatePeers(ctx, nil) }, 0},
		{"10 peers in batches of 3", func() error { return s.UpdatePeers(ctx, peers) }, 4},
		{"whole session read", func() error { _, err := s.Session(ctx); return err }, 1},
		{"whole session write", func() error { return s.SetSession(ctx, storage.NewSession()) }, 1},
		{"one field", func() error { return s.SetAPIID(ctx, storage.Some[int64](5)) }, 1},
		{"peer by id", func() error { _, err := s.PeerByID(ctx, 3); return err }, 1},
		{"peer by username", func() error { _, err := s.PeerByUsername(ctx, "rt3"); return err }, 1},
		{"invalid username lookup", func() error { _, err := s.PeerByUsername(ctx, "a b"); return ignoreMiss(err) }, 0},
		{"peer by phone", func() error { _, err := s.PeerByPhoneNumber(ctx, "1"); return ignoreMiss(err) }, 1},
		{"peer count", func() error { _, err := s.PeerCount(ctx); return err }, 1},
		// A store that opened the session before runs open.lua only: it
		// does not register the name again (its absence would be a loss).
		{"open an existing session again", func() error { _ = s.Close(); return s.Open(ctx) }, 1},
		{"scan a batch of peers", func() error { _, _, err := s.ScanPeers(ctx, "", 100); return err }, 1},
		{"invalid peer batch", func() error {
			return ignoreInvalid(s.UpdatePeers(ctx, []storage.Peer{{ID: -1, Type: storage.PeerUser}}))
		}, 0},
	}
	for _, tc := range tests {
		before := hook.Commands()
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := hook.Commands() - before; got != tc.want {
			t.Errorf("%s: %d commands; want %d", tc.name, got, tc.want)
		}
	}
}

func ignoreMiss(err error) error {
	if errors.Is(err, storage.ErrPeerNotFound) {
		return nil
	}
	return err
}

func ignoreInvalid(err error) error {
	if errors.Is(err, storage.ErrInvalid) {
		return nil
	}
	return err
}

// TestScriptCacheFlushed: after SCRIPT FLUSH (as on a restarted server or a
// promoted replica) every call still works (EVALSHA falls back to EVAL).
func TestScriptCacheFlushed(t *testing.T) {
	for _, b := range []backend{miniBackend(), realBackend(), sentinelBackend()} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			s := newStore(t, c, nil)
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdatePeers(ctx, []storage.Peer{{ID: 7, Type: storage.PeerUser, Usernames: []string{"after_flush"}}}); err != nil {
				t.Fatalf("UpdatePeers after SCRIPT FLUSH: %v", err)
			}
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if p, err := s.PeerByUsername(ctx, "after_flush"); err != nil || p.ID != 7 {
				t.Fatalf("PeerByUsername after SCRIPT FLUSH = %+v, %v", p, err)
			}
		})
	}
}

// TestStoredForm pins the on-Redis encoding: integers as exact decimal
// strings (never doubles) and the auth key in its envelope.
func TestStoredForm(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := b.client(t)
			s := newStore(t, c, nil)
			key := make(storage.AuthKey, 256)
			for i := range key {
				key[i] = byte(255 - i)
			}
			if err := s.SetSession(ctx, storage.Session{DCID: storage.Some(4), APIID: storage.Some[int64](2040), AuthKey: key,
				UserID: storage.Some[int64](9007199254740993), TestMode: storage.Some(true), Date: 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdatePeers(ctx, []storage.Peer{{ID: -1001234567890, AccessHash: storage.Some[int64](-9223372036854775807), Type: storage.PeerChannel}}); err != nil {
				t.Fatal(err)
			}
			row, _ := c.HGetAll(ctx, s.keys.session).Result()
			want := map[string]string{"layout": "2", "dc_id": "4", "api_id": "2040", "auth_key": "raw:" + string(key),
				"user_id": "9007199254740993", "test_mode": "1", "date": "1"}
			if !mapsEqual(row, want) {
				t.Errorf("session hash = %q; want %q", row, want)
			}
			peerRow, _ := c.HGet(ctx, s.keys.peers, "-1001234567890").Result()
			if !regexp.MustCompile(`^channel\|-9223372036854775807\|\|\|\|\d{10}$`).MatchString(peerRow) {
				t.Errorf("peer row = %q", peerRow)
			}
			// An envelope this code does not know is refused, without the key in the error.
			if err := c.HSet(ctx, s.keys.session, "auth_key", "aes1:"+string(key)).Err(); err != nil {
				t.Fatal(err)
			}
			_, err := s.Session(ctx)
			if !errors.Is(err, storage.ErrLayoutVersion) {
				t.Errorf("unknown auth key envelope: %v; want ErrLayoutVersion", err)
			}
			if err != nil && strings.Contains(err.Error(), string(key[:16])) {
				t.Errorf("error reveals the key")
			}
		})
	}
}

func TestCorruptDataIsAnErrorNotAPanic(t *testing.T) {
	ctx := context.Background()
	c := miniBackend().client(t)
	s := newStore(t, c, nil)
	session := func() error { _, err := s.Session(ctx); return err }
	peer := func() error { _, err := s.PeerByID(ctx, 5); return err }
	byName := func() error { _, err := s.PeerByUsername(ctx, "x"); return err }
	tests := []struct {
		key, field, value string
		read              func() error
	}{
		{s.keys.session, "dc_id", "two", session},
		{s.keys.session, "test_mode", "yes", session},
		{s.keys.session, "auth_key", "raw:short", session},
		{s.keys.session, "user_id", "99999999999999999999999", session},
		{s.keys.peers, "5", "martian||||||1", peer},
		{s.keys.peers, "5", "user|1e18||||1", peer},
		{s.keys.peers, "5", "user|1|||", peer},
		{s.keys.peers, "5", "user|1||||soon", peer},
		{s.keys.usernames, "x", "not-a-number", byName},
	}
	for _, tc := range tests {
		if err := c.HSet(ctx, tc.key, tc.field, tc.value).Err(); err != nil {
			t.Fatal(err)
		}
		if err := tc.read(); err == nil {
			t.Errorf("%s=%q read without error", tc.field, tc.value)
		}
		c.HDel(ctx, tc.key, tc.field)
	}
}

// TestLayoutErrorSaysWhatToDo: a layout-version error names the version
// found and the remedy that fits it (upgrade only for a newer layout).
func TestLayoutErrorSaysWhatToDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := miniBackend().client(t)
	tests := []struct {
		stored string
		want   string
		not    string
	}{
		{"1", "stored in layout 1, this code reads layout 2: export it with the tgsession that wrote it", "upgrade"},
		{"3", "stored in layout 3, this code reads layout 2: upgrade tgsession", "export"},
		{"x", `records layout "x", which no tgsession writes`, "upgrade"},
	}
	for _, tc := range tests {
		s := newStore(t, c, nil)
		if err := c.HSet(ctx, s.keys.session, "layout", tc.stored).Err(); err != nil {
			t.Fatal(err)
		}
		for what, err := range map[string]error{
			"Session":     func() error { _, err := s.Session(ctx); return err }(),
			"UpdatePeers": s.UpdatePeers(ctx, []storage.Peer{{ID: 1, Type: storage.PeerUser}}),
			"Open":        func() error { _ = s.Close(); return s.Open(ctx) }(),
		} {
			if !errors.Is(err, storage.ErrLayoutVersion) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.not) {
				t.Errorf("layout %s, %s: %v; want ErrLayoutVersion saying %q, not %q", tc.stored, what, err, tc.want, tc.not)
			}
		}
	}
}
