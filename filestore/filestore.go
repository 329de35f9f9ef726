// Package filestore is a storage.Storage on Hydrogram's own session file: a
// SQLite database (schema version 3) written with the pure-Go driver
// modernc.org/sqlite (no cgo). A file it creates has exactly the
// sqlite_master of a file Hydrogram creates, so Hydrogram and Pyrogram open it
// as their own; it opens Hydrogram's files, and migrates version 2 (Pyrogram
// 1.x, no api_id) and version 1 files the way Hydrogram does.
//
// What the format keeps and drops: session fields, and per peer the id,
// access hash, type (as text), ONE username (the primary), phone number and
// last_update_on. Dropped, because the schema has no place for them and extra
// tables would change sqlite_master: collectible usernames beyond the first,
// and the min flag (a min peer still never replaces a known access hash:
// without the flag every stored hash counts as full). dc_id cannot be NULL
// (it is the table's INTEGER PRIMARY KEY). The store reports these through
// storage.Limited. Lookups use Hydrogram's queries: several rows may list a
// username, and the one with the latest last_update_on answers.
package filestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tgsession/redisstore/storage"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// SchemaVersion is the Hydrogram schema version this store reads and writes.
const SchemaVersion = 3

// Hydrogram's schema, statement by statement, byte for byte as Hydrogram
// creates it (SQLite stores this text in sqlite_master).
var schema = []string{
	"CREATE TABLE sessions\n(\n    dc_id     INTEGER PRIMARY KEY,\n    api_id    INTEGER,\n    test_mode INTEGER,\n    auth_key  BLOB,\n    date      INTEGER NOT NULL,\n    user_id   INTEGER,\n    is_bot    INTEGER\n)",
	"CREATE TABLE peers\n(\n    id             INTEGER PRIMARY KEY,\n    access_hash    INTEGER,\n    type           INTEGER NOT NULL,\n    username       TEXT,\n    phone_number   TEXT,\n    last_update_on INTEGER NOT NULL DEFAULT (CAST(STRFTIME('%s', 'now') AS INTEGER))\n)",
	"CREATE TABLE version\n(\n    number INTEGER PRIMARY KEY\n)",
	"CREATE INDEX idx_peers_id ON peers (id)",
	"CREATE INDEX idx_peers_username ON peers (username)",
	"CREATE INDEX idx_peers_phone_number ON peers (phone_number)",
	"CREATE TRIGGER trg_peers_last_update_on\n    AFTER UPDATE\n    ON peers\nBEGIN\n    UPDATE peers\n    SET last_update_on = CAST(STRFTIME('%s', 'now') AS INTEGER)\n    WHERE id = NEW.id;\nEND",
}

// Path returns Hydrogram's file name for a session: <workdir>/<name>.session.
func Path(workdir, name string) string { return filepath.Join(workdir, name+".session") }

// Store is one Hydrogram session file.
type Store struct {
	storage.Accessors

	path  string
	clock storage.Clock

	readOnly bool

	mu      sync.Mutex
	db      *sql.DB // nil when closed or deleted
	opened  bool
	version atomic.Int32 // the file's schema version (a read-only store does not migrate)
}

var (
	_ storage.Storage      = (*Store)(nil)
	_ storage.PeerScanner  = (*Store)(nil)
	_ storage.PeerImporter = (*Store)(nil)
	_ storage.Limited      = (*Store)(nil)
	_ storage.Replacer     = (*Store)(nil)
)

// ErrReadOnly reports a write to a store opened with Options.ReadOnly.
var ErrReadOnly = errors.New("the session file was opened read-only (Options.ReadOnly): nothing is written to it")

// ErrNotSessionFile reports a file that is not a Hydrogram or Pyrogram
// session database (another SQLite database, or a non-empty file of another
// kind). The file is left as it was.
var ErrNotSessionFile = errors.New("not a Hydrogram/Pyrogram session file (no sessions and version tables); the file was not changed")

// Options configure a Store; the zero value uses the defaults.
type Options struct {
	// Clock is read for last_update_on, username expiry and Save (default
	// time.Now).
	Clock func() time.Time
	// ReadOnly opens an existing file without ever writing to it (SQLite's
	// mode=ro): nothing is created, no schema is migrated (a version 1 or 2
	// file reads as Hydrogram reads it after migrating: version 2 without
	// api_id, version 1 without peers), and every write and Delete fail
	// with ErrReadOnly. Imports open their source this way.
	ReadOnly bool
}

// New returns an unopened store for the file at path (see Path). The path
// is taken literally: '?', '#' and '%' in it are part of the file name, never
// SQLite URI syntax. A file the store creates has mode 0600 (it holds the
// auth key), as do SQLite's -wal and -shm files beside it.
func New(path string, opts Options) *Store {
	s := &Store{path: path, clock: opts.Clock, readOnly: opts.ReadOnly}
	s.Accessors = storage.Accessors{IO: s}
	return s
}

// String names the store.
func (s *Store) String() string { return fmt.Sprintf("filestore(%q)", s.path) }

// Limits reports what the file format cannot keep.
func (s *Store) Limits() storage.Limits {
	// Hydrogram's schema has no place for update state or client data, and
	// extra tables would change sqlite_master.
	return storage.Limits{OneUsername: true, NoMinFlag: true, DCIDNotNull: true, NoUpdateState: true}
}

func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("filestore: %s %s: %w", op, s.path, err)
}

// Open opens (or creates, as mode 0600) the file, migrates it to version 3
// like Hydrogram, and refuses a newer version (storage.ErrLayoutVersion) and
// a file that is not a session database (ErrNotSessionFile). Only an empty
// or new file gets Hydrogram's schema. With Options.ReadOnly the file must
// exist and is never written.
func (s *Store) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		if !s.readOnly {
			// Create the file first so that it (and SQLite's -wal and -shm
			// files, which take the database's mode) is 0600 whatever the umask.
			f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err == nil {
				err = f.Close()
			}
			if err != nil && !errors.Is(err, os.ErrExist) {
				return s.fail("open", err)
			}
		} else if _, err := os.Stat(s.path); err != nil {
			return s.fail("open", err)
		}
		// Read-only: a file without a -wal beside it is opened immutable
		// (SQLite then creates no -wal or -shm files next to it); with one
		// (a running client, or an unclean stop), mode=ro reads through it.
		immutable := false
		if s.readOnly {
			_, err := os.Stat(s.path + "-wal")
			immutable = errors.Is(err, os.ErrNotExist)
		}
		name, err := dsn(s.path, s.readOnly, immutable)
		if err != nil {
			return s.fail("open", err)
		}
		db, err := sql.Open("sqlite", name)
		if err != nil {
			return s.fail("open", err)
		}
		db.SetMaxOpenConns(1) // one writer; no "database is locked" within the process
		version, err := s.prepare(ctx, db)
		if err != nil {
			db.Close()
			return s.fail("open", err)
		}
		s.db = db
		s.version.Store(int32(version))
	}
	s.opened = true
	return nil
}

// dsn returns the SQLite URI for the literal path: "file://" and the
// absolute path with every byte outside [A-Za-z0-9/._~-] percent-encoded, so
// SQLite decodes exactly the path back and the driver's query string (after
// the first literal '?') is ours alone.
func dsn(path string, readOnly, immutable bool) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("file://")
	for i := 0; i < len(abs); i++ {
		c := abs[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._~-", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	b.WriteString("?_pragma=busy_timeout(5000)")
	if readOnly {
		b.WriteString("&mode=ro")
	}
	if immutable {
		b.WriteString("&immutable=1")
	}
	return b.String(), nil
}

// prepare checks the file's schema and returns its version: it creates
// Hydrogram's schema in an empty database and migrates older versions,
// unless read-only.
func (s *Store) prepare(ctx context.Context, db *sql.DB) (int, error) {
	var objects, tables int
	if err := db.QueryRowContext(ctx, "SELECT count(*), count(CASE WHEN type = 'table' AND name IN ('sessions', 'version') THEN 1 END) FROM sqlite_master").Scan(&objects, &tables); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotSessionFile, err)
	}
	switch {
	case objects == 0 && !s.readOnly:
		return SchemaVersion, create(ctx, db)
	case tables != 2:
		return 0, ErrNotSessionFile
	}
	var version int
	if err := db.QueryRowContext(ctx, "SELECT number FROM version").Scan(&version); err != nil {
		return 0, fmt.Errorf("%w: read schema version: %w", ErrNotSessionFile, err)
	}
	if version > SchemaVersion || version < 1 {
		return 0, fmt.Errorf("%w: the file has schema version %d, this code reads versions 1-%d: upgrade tgsession", storage.ErrLayoutVersion, version, SchemaVersion)
	}
	if s.readOnly {
		return version, nil
	}
	// Hydrogram's SQLiteStorage.update(): v1 drops the peer cache, v2 gains
	// api_id; in one transaction, so a failure leaves the file as it was.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	v := version
	if v == 1 {
		if _, err := tx.ExecContext(ctx, "DELETE FROM peers"); err != nil {
			return 0, err
		}
		v++
	}
	if v == 2 {
		if _, err := tx.ExecContext(ctx, "ALTER TABLE sessions ADD api_id INTEGER"); err != nil {
			return 0, err
		}
		v++
	}
	if v != version {
		if _, err := tx.ExecContext(ctx, "UPDATE version SET number = ?", v); err != nil {
			return 0, err
		}
	}
	return v, tx.Commit()
}

// create writes Hydrogram's schema into an empty database, exactly as
// Hydrogram's SQLiteStorage.create() makes it.
func create(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO version VALUES (?)", SchemaVersion); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)", 2, nil, nil, nil, 0, nil, nil); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the file; the data stays for the next Open.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opened = false
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return s.fail("close", err)
}

// Delete removes the file (and its WAL and shared-memory files), like
// Hydrogram's delete(). It works on a closed store.
func (s *Store) Delete(context.Context) error {
	if s.readOnly {
		return s.fail("delete", ErrReadOnly)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
	for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm", s.path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return s.fail("delete", err)
		}
	}
	return nil
}

// conn returns the database for a call; deleted is true after Delete.
func (s *Store) conn(op string) (db *sql.DB, deleted bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opened {
		return nil, false, s.fail(op, storage.ErrClosed)
	}
	return s.db, s.db == nil, nil
}

// writable returns the database for a write: ErrReadOnly on a read-only
// store, ErrSessionNotFound after Delete.
func (s *Store) writable(op string) (*sql.DB, error) {
	if s.readOnly {
		return nil, s.fail(op, ErrReadOnly)
	}
	db, deleted, err := s.conn(op)
	if err != nil {
		return nil, err
	}
	if deleted {
		return nil, s.fail(op, storage.ErrSessionNotFound)
	}
	return db, nil
}

// Save stamps date with the clock.
func (s *Store) Save(ctx context.Context) error { return s.SetDate(ctx, s.clock.Now().Unix()) }

// Session reads the session row by column name.
func (s *Store) Session(ctx context.Context) (storage.Session, error) {
	db, deleted, err := s.conn("read session")
	if err != nil {
		return storage.Session{}, err
	}
	if deleted {
		return storage.Session{}, s.fail("read session", storage.ErrSessionNotFound)
	}
	var dc, api, test, date, user, bot sql.NullInt64
	var key []byte
	apiCol := "api_id"
	if s.version.Load() == 2 { // read-only: Pyrogram 1.x has no api_id (NULL after Hydrogram's migration)
		apiCol = "NULL"
	}
	err = db.QueryRowContext(ctx, "SELECT dc_id, "+apiCol+", test_mode, auth_key, date, user_id, is_bot FROM sessions").
		Scan(&dc, &api, &test, &key, &date, &user, &bot)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Session{}, s.fail("read session", storage.ErrSessionNotFound)
	}
	if err != nil {
		return storage.Session{}, s.fail("read session", err)
	}
	out := storage.Session{Date: date.Int64}
	if dc.Valid {
		out.DCID = storage.Some(int(dc.Int64))
	}
	if api.Valid {
		out.APIID = storage.Some(api.Int64)
	}
	if test.Valid {
		out.TestMode = storage.Some(test.Int64 != 0)
	}
	if key != nil {
		out.AuthKey = storage.AuthKey(key)
	}
	if user.Valid {
		out.UserID = storage.Some(user.Int64)
	}
	if bot.Valid {
		out.IsBot = storage.Some(bot.Int64 != 0)
	}
	if err := out.Validate(storage.AllFields); err != nil {
		return storage.Session{}, s.fail("read session", err)
	}
	return out, nil
}

// SetFields writes the named fields in one UPDATE.
func (s *Store) SetFields(ctx context.Context, v storage.Session, which storage.Field) error {
	if err := checkFields(v, which); err != nil {
		return s.fail("write session", err)
	}
	db, err := s.writable("write session")
	if err != nil {
		return err
	}
	return s.fail("write session", setFields(ctx, db, v, which))
}

// checkFields validates the fields named by which for the file format.
func checkFields(v storage.Session, which storage.Field) error {
	if err := v.Validate(which); err != nil {
		return err
	}
	if which.Has(storage.FieldDCID) && !v.DCID.Valid {
		return fmt.Errorf("%w: a Hydrogram session file cannot hold a NULL dc_id (it is the sessions table's primary key)", storage.ErrInvalid)
	}
	return nil
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// setFields writes checked fields in one UPDATE.
func setFields(ctx context.Context, db execer, v storage.Session, which storage.Field) error {
	var sets string
	var args []any
	add := func(f storage.Field, col string, val any) {
		if which.Has(f) {
			if sets != "" {
				sets += ", "
			}
			sets += col + " = ?"
			args = append(args, val)
		}
	}
	add(storage.FieldDCID, "dc_id", nullable(int64(v.DCID.V), v.DCID.Valid))
	add(storage.FieldAPIID, "api_id", nullable(v.APIID.V, v.APIID.Valid))
	add(storage.FieldTestMode, "test_mode", nullable(boolInt(v.TestMode.V), v.TestMode.Valid))
	var key any
	if v.AuthKey != nil {
		key = []byte(v.AuthKey)
	}
	add(storage.FieldAuthKey, "auth_key", key)
	add(storage.FieldDate, "date", v.Date)
	add(storage.FieldUserID, "user_id", nullable(v.UserID.V, v.UserID.Valid))
	add(storage.FieldIsBot, "is_bot", nullable(boolInt(v.IsBot.V), v.IsBot.Valid))
	if sets == "" {
		return nil
	}
	res, err := db.ExecContext(ctx, "UPDATE sessions SET "+sets, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return storage.ErrSessionNotFound
	}
	return nil
}

func nullable(v int64, ok bool) any {
	if !ok {
		return nil
	}
	return v
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// UpdatePeers caches a batch in one transaction, stamped with the clock.
func (s *Store) UpdatePeers(ctx context.Context, peers []storage.Peer) error {
	return s.write(ctx, "update peers", peers, true)
}

// ImportPeers caches a batch keeping each peer's LastUpdateOn.
func (s *Store) ImportPeers(ctx context.Context, peers []storage.Peer) error {
	return s.write(ctx, "import peers", peers, false)
}

func (s *Store) write(ctx context.Context, op string, peers []storage.Peer, stamp bool) error {
	db, err := s.writable(op)
	if err != nil || len(peers) == 0 {
		return err
	}
	norm, err := storage.NormalizePeers(peers)
	if err != nil {
		return s.fail(op, err)
	}
	if stamp {
		now := s.clock.Now().Unix()
		for i := range norm {
			norm[i].LastUpdateOn = now
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, err)
	}
	defer tx.Rollback()
	if err := putPeers(ctx, tx, norm); err != nil {
		return s.fail(op, err)
	}
	return s.fail(op, tx.Commit())
}

// putPeers writes normalized, stamped peers in the transaction tx.
func putPeers(ctx context.Context, tx *sql.Tx, norm []storage.Peer) error {
	for _, p := range norm {
		if p.LastUpdateOn < 0 {
			return fmt.Errorf("%w: peer %d: last_update_on before 1970", storage.ErrInvalid, p.ID)
		}
		hash := nullable(p.AccessHash.V, p.AccessHash.Valid)
		if p.Min {
			var known sql.NullInt64
			err := tx.QueryRowContext(ctx, "SELECT access_hash FROM peers WHERE id = ?", p.ID).Scan(&known)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if known.Valid {
				hash = known.Int64 // without a min flag, every stored hash counts as full
			}
		}
		var username, phone any
		if len(p.Usernames) > 0 {
			username = p.Usernames[0]
		}
		if p.PhoneNumber != "" {
			phone = p.PhoneNumber
		}
		if _, err := tx.ExecContext(ctx,
			"REPLACE INTO peers (id, access_hash, type, username, phone_number, last_update_on) VALUES (?, ?, ?, ?, ?, ?)",
			p.ID, hash, string(p.Type), username, phone, p.LastUpdateOn); err != nil {
			return err
		}
	}
	return nil
}

const peerColumns = "id, access_hash, type, username, phone_number, last_update_on"

func scanPeer(row interface{ Scan(...any) error }) (storage.Peer, error) {
	var (
		p               storage.Peer
		hash            sql.NullInt64
		typ             string
		username, phone sql.NullString
	)
	if err := row.Scan(&p.ID, &hash, &typ, &username, &phone, &p.LastUpdateOn); err != nil {
		return p, err
	}
	p.Type = storage.PeerType(typ)
	if !p.Type.Valid() {
		return p, fmt.Errorf("peer %d: %w: Invalid peer type: %s", p.ID, storage.ErrInvalid, typ)
	}
	if hash.Valid {
		p.AccessHash = storage.Some(hash.Int64)
	}
	if username.Valid && username.String != "" {
		p.Usernames = []string{username.String}
	}
	p.PhoneNumber = phone.String
	return p, nil
}

func (s *Store) lookup(ctx context.Context, op, query string, arg any) (storage.Peer, bool, error) {
	db, deleted, err := s.conn(op)
	if err != nil || deleted || s.version.Load() == 1 { // read-only v1: Hydrogram drops its peers
		return storage.Peer{}, false, err
	}
	p, err := scanPeer(db.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Peer{}, false, nil
	}
	if err != nil {
		return storage.Peer{}, false, s.fail(op, err)
	}
	return p, true, nil
}

// PeerByID is Hydrogram's lookup by id.
func (s *Store) PeerByID(ctx context.Context, id int64) (storage.Peer, error) {
	p, ok, err := s.lookup(ctx, "peer by id", "SELECT "+peerColumns+" FROM peers WHERE id = ?", id)
	if err == nil && !ok {
		err = storage.NotFoundByID(id)
	}
	return p, err
}

// PeerByUsername is Hydrogram's lookup (latest holder first), with the
// storage package's normalization and storage.UsernameTTL expiry.
func (s *Store) PeerByUsername(ctx context.Context, username string) (storage.Peer, error) {
	n := storage.NormalizeUsername(username)
	p, ok, err := s.lookup(ctx, "peer by username",
		"SELECT "+peerColumns+" FROM peers WHERE username = ? ORDER BY last_update_on DESC LIMIT 1", n)
	switch {
	case err != nil:
		return p, err
	case !ok:
		return p, storage.NotFoundByUsername(username)
	case storage.UsernameExpired(s.clock.Now().Unix(), p.LastUpdateOn):
		return storage.Peer{}, storage.ExpiredUsername(username)
	}
	return p, nil
}

// PeerByPhoneNumber is Hydrogram's lookup by phone (latest holder first).
func (s *Store) PeerByPhoneNumber(ctx context.Context, phone string) (storage.Peer, error) {
	n := storage.NormalizePhoneNumber(phone)
	p, ok, err := s.lookup(ctx, "peer by phone number",
		"SELECT "+peerColumns+" FROM peers WHERE phone_number = ? ORDER BY last_update_on DESC LIMIT 1", n)
	if err == nil && !ok {
		err = storage.NotFoundByPhoneNumber(phone)
	}
	return p, err
}

// PeerCount returns how many peers the file caches.
func (s *Store) PeerCount(ctx context.Context) (int64, error) {
	db, deleted, err := s.conn("count peers")
	if err != nil || deleted || s.version.Load() == 1 {
		return 0, err
	}
	var n int64
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM peers").Scan(&n)
	return n, s.fail("count peers", err)
}

// ScanPeers returns up to count peers in id order after cursor ("" starts).
func (s *Store) ScanPeers(ctx context.Context, cursor string, count int) ([]storage.Peer, string, error) {
	db, deleted, err := s.conn("scan peers")
	if err != nil || deleted || s.version.Load() == 1 {
		return nil, "", err
	}
	after := int64(math.MinInt64)
	if cursor != "" {
		if after, err = strconv.ParseInt(cursor, 10, 64); err != nil {
			return nil, "", s.fail("scan peers", fmt.Errorf("%w: bad cursor %q", storage.ErrInvalid, cursor))
		}
	}
	count = max(count, 1)
	rows, err := db.QueryContext(ctx, "SELECT "+peerColumns+" FROM peers WHERE id > ? ORDER BY id LIMIT ?", after, count)
	if err != nil {
		return nil, "", s.fail("scan peers", err)
	}
	defer rows.Close()
	peers := make([]storage.Peer, 0, count)
	for rows.Next() {
		p, err := scanPeer(rows)
		if err != nil {
			return nil, "", s.fail("scan peers", err)
		}
		peers = append(peers, p)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.fail("scan peers", err)
	}
	next := ""
	if len(peers) == count {
		next = strconv.FormatInt(peers[len(peers)-1].ID, 10)
	}
	return peers, next, nil
}

// Replace begins replacing the whole session (storage.Replacer) in one
// SQLite transaction: the peer cache is emptied and refilled inside it and
// Commit writes the fields and commits, so other readers of the file see the
// old session until then. The store's single connection belongs to the
// replacement until Commit or Abort: other calls on this store wait.
func (s *Store) Replace(ctx context.Context) (storage.Replacement, error) {
	db, err := s.writable("replace")
	if err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.fail("replace", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM peers"); err != nil {
		_ = tx.Rollback()
		return nil, s.fail("replace", err)
	}
	return &replacement{s: s, tx: tx}, nil
}

// replacement is a Replace in progress: an open transaction.
type replacement struct {
	s    *Store
	tx   *sql.Tx
	done bool
}

var errReplaceDone = errors.New("this replacement was committed or aborted already")

// ImportPeers adds peers to the new content, keeping their LastUpdateOn.
func (r *replacement) ImportPeers(ctx context.Context, peers []storage.Peer) error {
	if r.done {
		return r.s.fail("replace", errReplaceDone)
	}
	norm, err := storage.NormalizePeers(peers)
	if err != nil {
		return r.s.fail("replace", err)
	}
	return r.s.fail("replace", putPeers(ctx, r.tx, norm))
}

// Commit writes v and commits the transaction.
func (r *replacement) Commit(ctx context.Context, v storage.Session) error {
	if r.done {
		return r.s.fail("replace", errReplaceDone)
	}
	if err := checkFields(v, storage.AllFields); err != nil {
		return r.s.fail("replace", err)
	}
	if err := setFields(ctx, r.tx, v, storage.AllFields); err != nil {
		return r.s.fail("replace", err)
	}
	r.done = true
	return r.s.fail("replace", r.tx.Commit())
}

// Abort rolls the transaction back.
func (r *replacement) Abort(context.Context) error {
	if r.done {
		return nil
	}
	r.done = true
	return r.s.fail("replace", r.tx.Rollback())
}
