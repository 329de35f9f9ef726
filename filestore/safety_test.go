package filestore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/storage"
)

// state is a file's hash and the names in its directory.
func state(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return fmt.Sprintf("%x %q", sha256.Sum256(b), names)
}

// TestLiteralPaths: '?', '#', '%' and spaces are part of the file name; the
// file and SQLite's companions are 0600 under umask 022.
func TestLiteralPaths(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	for _, name := range []string{"a?b", "o#ut", "o%41ut", "x?mode=ro", "sp ace", "ü.session"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, name)
			s := filestore.New(p, filestore.Options{})
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.SetAPIID(ctx, storage.Some[int64](42)); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{p, p + "-wal", p + "-shm"} {
				if fi, err := os.Stat(f); err == nil && fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v; want 0600", filepath.Base(f), fi.Mode().Perm())
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 || entries[0].Name() != name {
				t.Errorf("files: %v; want exactly %q", entries, name)
			}
			r := filestore.New(p, filestore.Options{ReadOnly: true})
			if err := r.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if v, err := r.APIID(ctx); err != nil || v.V != 42 {
				t.Errorf("read back api_id %v, %v", v, err)
			}
		})
	}
}

// TestReadOnlyNeverWrites: a read-only store reads Hydrogram's file and the
// older schemas as Hydrogram reads them after migrating, refuses every write,
// and leaves the file and its directory exactly as they were.
func TestReadOnlyNeverWrites(t *testing.T) {
	ctx := context.Background()
	fixture, err := os.ReadFile("testdata/hydrogram_v3.session")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		stmts   []string
		peers   int64
		noAPIID bool
	}{
		{"v3", nil, 24, false},
		{"v2", []string{"ALTER TABLE sessions DROP COLUMN api_id", "UPDATE version SET number = 2"}, 24, true},
		{"v1", []string{"UPDATE version SET number = 1"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "my.session")
			if err := os.WriteFile(p, fixture, 0o600); err != nil {
				t.Fatal(err)
			}
			if len(tc.stmts) > 0 {
				db, err := sql.Open("sqlite", p)
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range append(tc.stmts, "PRAGMA wal_checkpoint(TRUNCATE)") {
					if _, err := db.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				db.Close()
			}
			before := state(t, p)
			s := filestore.New(p, filestore.Options{ReadOnly: true})
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			sess, err := s.Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sess.APIID.Valid == tc.noAPIID {
				t.Errorf("api_id = %v", sess.APIID)
			}
			if n, err := s.PeerCount(ctx); err != nil || n != tc.peers {
				t.Errorf("PeerCount = %d, %v; want %d", n, err, tc.peers)
			}
			for what, err := range map[string]error{
				"SetAPIID":    s.SetAPIID(ctx, storage.Some[int64](1)),
				"UpdatePeers": s.UpdatePeers(ctx, []storage.Peer{{ID: 5, Type: storage.PeerUser}}),
				"Delete":      s.Delete(ctx),
			} {
				if !errors.Is(err, filestore.ErrReadOnly) {
					t.Errorf("%s: %v; want ErrReadOnly", what, err)
				}
			}
			if _, err := s.Replace(ctx); !errors.Is(err, filestore.ErrReadOnly) {
				t.Errorf("Replace: %v; want ErrReadOnly", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if after := state(t, p); after != before {
				t.Errorf("the file or its directory changed:\n%s\n%s", before, after)
			}
		})
	}
}

// TestRefusesOtherFiles: a non-empty file that is not a session database
// is refused (ErrNotSessionFile) and left unchanged, read-only or not; an
// empty file becomes a new session file.
func TestRefusesOtherFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	other := filepath.Join(dir, "app.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE notes (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("just some text, long enough to be read as a header by SQLite"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{other, text} {
		for _, ro := range []bool{false, true} {
			before := state(t, p)
			s := filestore.New(p, filestore.Options{ReadOnly: ro})
			if err := s.Open(ctx); err == nil {
				s.Close()
				t.Errorf("Open(%s, read-only %v) succeeded", filepath.Base(p), ro)
			} else if p == other && !errors.Is(err, filestore.ErrNotSessionFile) {
				t.Errorf("Open(%s, read-only %v): %v; want ErrNotSessionFile", filepath.Base(p), ro, err)
			}
			if after := state(t, p); after != before {
				t.Errorf("%s (read-only %v) changed", filepath.Base(p), ro)
			}
		}
	}
	empty := filepath.Join(t.TempDir(), "new.session")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := filestore.New(empty, filestore.Options{ReadOnly: true}).Open(ctx); !errors.Is(err, filestore.ErrNotSessionFile) {
		t.Errorf("read-only Open of an empty file: %v; want ErrNotSessionFile", err)
	}
	s := filestore.New(empty, filestore.Options{})
	if err := s.Open(ctx); err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	defer s.Close()
	if sess, err := s.Session(ctx); err != nil || !slices.Equal([]int{sess.DCID.V}, []int{storage.DefaultDCID}) {
		t.Errorf("new session = %v, %v", sess, err)
	}
}
