package filestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/storage"
	"github.com/tgsession/redisstore/storage/storagetest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// fixtureCopy copies testdata/hydrogram_v3.session (written by Hydrogram's own
// SQLiteStorage; a copy of ../shared/vectors) to a temporary directory.
func fixtureCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/hydrogram_v3.session")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hydrogram_v3.session")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openFile(t *testing.T, path string, clock *storagetest.Clock) *filestore.Store {
	t.Helper()
	s := filestore.New(path, filestore.Options{Clock: clock.Now})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestHydrogramFile: Hydrogram's own file opens, and every expected lookup of
// the fixture, the session fields and the exported string are reproduced.
func TestHydrogramFile(t *testing.T) {
	t.Parallel()
	clock := storagetest.NewClock(storagetest.HydrogramReferenceNow())
	s := openFile(t, fixtureCopy(t), clock)
	storagetest.CheckHydrogramFixture(t, s, clock)
}

type dump struct {
	master   [][]any
	journal  string
	version  [][]any
	sessions [][]any
	peers    [][]any
}

func query(t *testing.T, db *sql.DB, q string) [][]any {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	return out
}

// dumpFile reads a session file's schema and every row, read-only.
func dumpFile(t *testing.T, path string) dump {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var d dump
	d.master = query(t, db, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&d.journal); err != nil {
		t.Fatal(err)
	}
	d.version = query(t, db, "SELECT number FROM version")
	d.sessions = query(t, db, "SELECT dc_id, api_id, test_mode, auth_key, date, user_id, is_bot, typeof(test_mode), typeof(auth_key) FROM sessions")
	d.peers = query(t, db, "SELECT id, access_hash, type, username, phone_number, last_update_on, typeof(type) FROM peers ORDER BY id")
	return d
}

// TestRoundTripThroughRedis: Hydrogram's file -> Redis store -> a new file.
// The new file's sqlite_master equals the original's and every row equals the
// original row, last_update_on included.
func TestRoundTripThroughRedis(t *testing.T) {
	t.Parallel()
	clients := map[string]func(t *testing.T) redis.UniversalClient{
		"miniredis": func(t *testing.T) redis.UniversalClient {
			m := miniredis.RunT(t)
			return redis.NewClient(&redis.Options{Addr: m.Addr()})
		},
		"redis-server": func(t *testing.T) redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: redistest.Require(t).Addr})
		},
	}
	for name, newClient := range clients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := storagetest.NewClock(storagetest.HydrogramReferenceNow())
			original := fixtureCopy(t)
			want := dumpFile(t, original)
			src := openFile(t, original, clock)

			c := newClient(t)
			defer c.Close()
			mid, err := redisstore.New(c, "roundtrip-"+redistest.TempName(t), redisstore.Options{Mode: redisstore.Unfenced, Clock: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if err := mid.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer mid.Delete(ctx)
			if n, err := storage.Copy(ctx, mid, src, storage.CopyOptions{BatchSize: 7}); err != nil || n != 24 {
				t.Fatalf("file -> Redis: %d peers, %v", n, err)
			}
			storagetest.CheckHydrogramFixture(t, mid, clock)

			out := filepath.Join(t.TempDir(), "copy.session")
			dst := openFile(t, out, clock)
			if n, err := storage.Copy(ctx, dst, mid, storage.CopyOptions{BatchSize: 5}); err != nil || n < 24 {
				t.Fatalf("Redis -> file: %d peers, %v", n, err)
			}
			if err := dst.Close(); err != nil {
				t.Fatal(err)
			}
			got := dumpFile(t, out)
			if !reflect.DeepEqual(got.master, want.master) {
				t.Errorf("sqlite_master differs:\n got %v\nwant %v", got.master, want.master)
			}
			for _, part := range []struct {
				name      string
				got, want any
			}{
				{"journal_mode", got.journal, want.journal},
				{"version", got.version, want.version},
				{"sessions", got.sessions, want.sessions},
				{"peers", got.peers, want.peers},
			} {
				if !reflect.DeepEqual(part.got, part.want) {
					t.Errorf("%s differs:\n got %v\nwant %v", part.name, part.got, part.want)
				}
			}
			if len(got.peers) != 24 {
				t.Errorf("%d peer rows; want 24", len(got.peers))
			}
		})
	}
}

// TestReadBackWithSQLite3: a file written by this store is read by the sqlite3
// command-line tool with Hydrogram's own SELECT statements.
func TestReadBackWithSQLite3(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		if redistest.InCI() {
			t.Fatalf("sqlite3 (Debian package sqlite3) is needed in CI: %v", err)
		}
		t.Skipf("sqlite3 not installed: %v", err)
	}
	clock := storagetest.NewClock(storagetest.HydrogramReferenceNow())
	path := filepath.Join(t.TempDir(), "ours.session")
	s := openFile(t, path, clock)
	storagetest.LoadHydrogramFixture(t, s, clock)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Hydrogram's statements (hydrogram/storage/sqlite_storage.py), literal values.
	tests := []struct{ sql, want string }{
		{"SELECT number FROM version", "3"},
		{"SELECT dc_id FROM sessions", "2"},
		{"SELECT api_id FROM sessions", "12345"},
		{"SELECT test_mode FROM sessions", "0"},
		{"SELECT hex(auth_key) FROM sessions", "13231A5A10CDAC53"},
		{"SELECT user_id FROM sessions", "777000123"},
		{"SELECT is_bot FROM sessions", "0"},
		{"SELECT id, access_hash, type FROM peers WHERE id = 93372553", "93372553|9223372036854775807|bot"},
		{"SELECT id, access_hash, type FROM peers WHERE id = -1001234567890", "-1001234567890|-6666666666666666666|channel"},
		{"SELECT id, access_hash, type FROM peers WHERE id = 1000005", "1000005||user"},
		{"SELECT id, access_hash, type, last_update_on FROM peers WHERE username = 'moved_name' ORDER BY last_update_on DESC", "2000004|5544332211|bot|1795631427\n2000003|1122334455|user|1795599087"},
		{"SELECT id, access_hash, type FROM peers WHERE phone_number = '42777'", "777000|-3326571227383497089|user"},
		{"SELECT typeof(type), typeof(test_mode) FROM peers, sessions WHERE id = 777000", "text|integer"},
		{"PRAGMA journal_mode", "wal"},
	}
	for _, tc := range tests {
		out, err := exec.Command(bin, "-readonly", path, tc.sql).CombinedOutput()
		if err != nil {
			t.Errorf("sqlite3 %q: %v: %s", tc.sql, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, tc.want) {
			t.Errorf("sqlite3 %q = %q; want %q", tc.sql, got, tc.want)
		}
	}
}

// makeOld writes a session file of an older schema version, as Pyrogram 1.x
// did (version 2: sessions without api_id).
func makeOld(t *testing.T, version int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.session", version))
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		"CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, test_mode INTEGER, auth_key BLOB, date INTEGER NOT NULL, user_id INTEGER, is_bot INTEGER)",
		"CREATE TABLE peers (id INTEGER PRIMARY KEY, access_hash INTEGER, type INTEGER NOT NULL, username TEXT, phone_number TEXT, last_update_on INTEGER NOT NULL DEFAULT (CAST(STRFTIME('%s', 'now') AS INTEGER)))",
		"CREATE TABLE version (number INTEGER PRIMARY KEY)",
		fmt.Sprintf("INSERT INTO version VALUES (%d)", version),
		"INSERT INTO sessions VALUES (4, 0, zeroblob(256), 1600000000, 42, 1)",
		"INSERT INTO peers VALUES (42, 7, 'user', 'old_user', '123', 1600000000)",
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := storagetest.NewClock(1600000000)
	for _, tc := range []struct {
		version   int
		wantPeers bool
	}{{2, true}, {1, false}} {
		path := makeOld(t, tc.version)
		s := openFile(t, path, clock)
		got, err := s.Session(ctx)
		if err != nil {
			t.Fatalf("v%d: %v", tc.version, err)
		}
		if got.DCID != storage.Some(4) || got.APIID.Valid || got.UserID != storage.Some[int64](42) || len(got.AuthKey) != 256 {
			t.Errorf("v%d session after migration = %v; want api_id NULL and the rest kept", tc.version, got)
		}
		if err := s.SetAPIID(ctx, storage.Some[int64](99)); err != nil {
			t.Errorf("v%d: api_id not writable after migration: %v", tc.version, err)
		}
		_, err = s.PeerByID(ctx, 42)
		if tc.wantPeers != (err == nil) {
			t.Errorf("v%d: peer after migration: %v (Hydrogram clears peers of v1 files only)", tc.version, err)
		}
		s.Close()
		if d := dumpFile(t, path); fmt.Sprint(d.version) != "[[3]]" {
			t.Errorf("v%d: version after migration = %v", tc.version, d.version)
		}
	}
	// A newer version is refused, and the file left alone.
	path := makeOld(t, 4)
	err := filestore.New(path, filestore.Options{}).Open(ctx)
	if !errors.Is(err, storage.ErrLayoutVersion) {
		t.Errorf("Open of a version-4 file: %v; want ErrLayoutVersion", err)
	}
}

// TestNewFileLikeHydrogram: a new file starts as Hydrogram's does.
func TestNewFileLikeHydrogram(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new.session")
	s := openFile(t, path, storagetest.NewClock(storagetest.HydrogramReferenceNow()))
	s.Close()
	want := dumpFile(t, fixtureCopy(t))
	got := dumpFile(t, path)
	if !reflect.DeepEqual(got.master, want.master) || got.journal != "wal" {
		t.Errorf("new file schema differs from Hydrogram's:\n got %v %s\nwant %v", got.master, got.journal, want.master)
	}
	if fmt.Sprint(got.sessions) != "[[2 <nil> <nil> <nil> 0 <nil> <nil> null null]]" || fmt.Sprint(got.version) != "[[3]]" {
		t.Errorf("new file rows: sessions %v version %v; want Hydrogram's (2, NULL, NULL, NULL, 0, NULL, NULL)", got.sessions, got.version)
	}
}
