// Package storagetest is the conformance suite for storage.Storage
// implementations, in the spirit of testing/fstest.TestFS: one call runs every
// check of the contract against any engine, ours or a user's.
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T, clock func() time.Time) storage.Storage {
//			return mystore.New(uniqueName(t), mystore.Options{Clock: clock})
//		})
//	}
//
// The suite includes Hydrogram's own fixture (a session written by
// Hydrogram's SQLiteStorage and the result of every lookup at a fixed time).
package storagetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgsession/redisstore/sessionstring"
	"github.com/tgsession/redisstore/storage"
)

// Factory returns a new, unopened store for a session that no other call of
// the factory uses. The store must read time from clock (last_update_on,
// username expiry, Save). The suite opens, deletes and closes the store.
type Factory func(t *testing.T, clock func() time.Time) storage.Storage

// Clock is a settable clock for tests. The zero value reads the Unix epoch.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to unix seconds sec.
func NewClock(sec int64) *Clock { return &Clock{now: time.Unix(sec, 0)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to unix seconds sec.
func (c *Clock) Set(sec int64) {
	c.mu.Lock()
	c.now = time.Unix(sec, 0)
	c.mu.Unlock()
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startTime is the suite's default clock reading (2026-11-25 00:00:00 UTC).
const startTime = 1795564800

type suite struct {
	newStore Factory
}

// Run runs the conformance suite as parallel subtests of t.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	s := suite{newStore: newStore}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"OpenCreatesDefaults", s.testOpenCreatesDefaults},
		{"OpenCloseReopen", s.testOpenCloseReopen},
		{"Fields", s.testFields},
		{"SetSessionRoundTrip", s.testSetSessionRoundTrip},
		{"Save", s.testSave},
		{"ExportSessionString", s.testExportSessionString},
		{"ImportSessionString", s.testImportSessionString},
		{"AuthKeyNeverPrinted", s.testAuthKeyNeverPrinted},
		{"PeerRoundTrip", s.testPeerRoundTrip},
		{"WholeRowReplace", s.testWholeRowReplace},
		{"DuplicatesLastWins", s.testDuplicatesLastWins},
		{"EmptyBatch", s.testEmptyBatch},
		{"InvalidBatchWritesNothing", s.testInvalidBatchWritesNothing},
		{"UsernameMoves", s.testUsernameMoves},
		{"PhoneNumberMoves", s.testPhoneNumberMoves},
		{"RenameBackAndForth", s.testRenameBackAndForth},
		{"MultipleUsernames", s.testMultipleUsernames},
		{"MinPeers", s.testMinPeers},
		{"LookupNormalization", s.testLookupNormalization},
		{"UsernameTTL", s.testUsernameTTL},
		{"BatchMatchesSingles", s.testBatchMatchesSingles},
		{"LargeBatch", s.testLargeBatch},
		{"Concurrent", s.testConcurrent},
		{"Delete", s.testDelete},
		{"HydrogramFixture", s.testHydrogramFixture},
		{"ImportPeers", s.testImportPeers},
		{"ScanPeers", s.testScanPeers},
		{"Copy", s.testCopy},
		{"Replace", s.testReplace},
		{"CopyReplace", s.testCopyReplace},
		{"UpdateState", s.testUpdateState},
		{"ClientData", s.testClientData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

// open builds and opens a store on clock and registers Delete+Close.
func (s suite) open(t *testing.T, clock *Clock) storage.Storage {
	t.Helper()
	st := s.newStore(t, clock.Now)
	if st == nil {
		t.Fatal("factory returned a nil store")
	}
	ctx := context.Background()
	if err := st.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Delete(context.Background()); err != nil {
			t.Errorf("cleanup Delete: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("cleanup Close: %v", err)
		}
	})
	return st
}

// limitsOf returns what the engine cannot keep (storage.Limited).
func limitsOf(st storage.Storage) storage.Limits {
	if l, ok := st.(storage.Limited); ok {
		return l.Limits()
	}
	return storage.Limits{}
}

// expect returns what the engine should read back for a written peer:
// normalized, and cut to what the engine keeps.
func expect(t *testing.T, st storage.Storage, p storage.Peer) storage.Peer {
	t.Helper()
	p = norm(t, p)
	lim := limitsOf(st)
	if lim.OneUsername && len(p.Usernames) > 1 {
		p.Usernames = p.Usernames[:1]
	}
	if lim.NoMinFlag {
		p.Min = false
	}
	return p
}

func testKey(seed byte) storage.AuthKey {
	k := make(storage.AuthKey, storage.AuthKeySize)
	for i := range k {
		k[i] = seed + byte(i*7)
	}
	return k
}

func sessionsEqual(a, b storage.Session) bool {
	return a.DCID == b.DCID && a.APIID == b.APIID && a.TestMode == b.TestMode &&
		bytes.Equal(a.AuthKey, b.AuthKey) && (a.AuthKey == nil) == (b.AuthKey == nil) &&
		a.Date == b.Date && a.UserID == b.UserID && a.IsBot == b.IsBot
}

func mustSession(t *testing.T, st storage.Storage) storage.Session {
	t.Helper()
	got, err := st.Session(context.Background())
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	return got
}

// checkGetters compares every per-field getter with want (the fast whole
// read and the per-field reads must agree).
func checkGetters(t *testing.T, st storage.Storage, want storage.Session) {
	t.Helper()
	ctx := context.Background()
	if v, err := st.DCID(ctx); err != nil || v != want.DCID {
		t.Errorf("DCID() = %v, %v; want %v", v, err, want.DCID)
	}
	if v, err := st.APIID(ctx); err != nil || v != want.APIID {
		t.Errorf("APIID() = %v, %v; want %v", v, err, want.APIID)
	}
	if v, err := st.TestMode(ctx); err != nil || v != want.TestMode {
		t.Errorf("TestMode() = %v, %v; want %v", v, err, want.TestMode)
	}
	if v, err := st.AuthKey(ctx); err != nil || !bytes.Equal(v, want.AuthKey) || (v == nil) != (want.AuthKey == nil) {
		t.Errorf("AuthKey() = %v, %v; want %v", v, err, want.AuthKey)
	}
	if v, err := st.Date(ctx); err != nil || v != want.Date {
		t.Errorf("Date() = %v, %v; want %v", v, err, want.Date)
	}
	if v, err := st.UserID(ctx); err != nil || v != want.UserID {
		t.Errorf("UserID() = %v, %v; want %v", v, err, want.UserID)
	}
	if v, err := st.IsBot(ctx); err != nil || v != want.IsBot {
		t.Errorf("IsBot() = %v, %v; want %v", v, err, want.IsBot)
	}
}

func (s suite) testOpenCreatesDefaults(t *testing.T) {
	st := s.open(t, NewClock(startTime))
	want := storage.NewSession()
	if got := mustSession(t, st); !sessionsEqual(got, want) {
		t.Errorf("new session = %v; want %v (Hydrogram's new row: dc_id 2, date 0, rest NULL)", got, want)
	}
	checkGetters(t, st, want)
}

func (s suite) testOpenCloseReopen(t *testing.T) {
	ctx := context.Background()
	st := s.newStore(t, NewClock(startTime).Now)
	if _, err := st.Session(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Session before Open: err = %v; want ErrClosed", err)
	}
	if err := st.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Delete(context.Background()); _ = st.Close() })
	if err := st.SetAPIID(ctx, storage.Some[int64](4242)); err != nil {
		t.Fatalf("SetAPIID: %v", err)
	}
	if err := st.UpdatePeers(ctx, []storage.Peer{{ID: 5, Type: storage.PeerUser, AccessHash: storage.Some[int64](9)}}); err != nil {
		t.Fatalf("UpdatePeers: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := st.PeerByID(ctx, 5); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("PeerByID after Close: err = %v; want ErrClosed", err)
	}
	if err := st.SetAPIID(ctx, storage.Some[int64](1)); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("SetAPIID after Close: err = %v; want ErrClosed", err)
	}
	if err := st.Open(ctx); err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if v, err := st.APIID(ctx); err != nil || v != storage.Some[int64](4242) {
		t.Errorf("APIID after reopen = %v, %v; want 4242", v, err)
	}
	if p, err := st.PeerByID(ctx, 5); err != nil || p.AccessHash != storage.Some[int64](9) {
		t.Errorf("PeerByID after reopen = %+v, %v", p, err)
	}
}

func (s suite) testFields(t *testing.T) {
	ctx := context.Background()
	key := testKey(3)
	tests := []struct {
		name  string
		set   func(storage.Storage, bool) error // true: set the value, false: set NULL
		field func(*storage.Session, bool)
		bad   []func(storage.Storage) error
	}{
		{
			name: "dc_id",
			set: func(st storage.Storage, v bool) error {
				if v {
					return st.SetDCID(ctx, storage.Some(4))
				}
				return st.SetDCID(ctx, storage.Null[int]{})
			},
			field: func(s *storage.Session, v bool) { s.DCID = map[bool]storage.Null[int]{true: storage.Some(4)}[v] },
			bad: []func(storage.Storage) error{
				func(st storage.Storage) error { return st.SetDCID(ctx, storage.Some(0)) },
				func(st storage.Storage) error { return st.SetDCID(ctx, storage.Some(-1)) },
				func(st storage.Storage) error { return st.SetDCID(ctx, storage.Some(256)) },
			},
		},
		{
			name: "api_id",
			set: func(st storage.Storage, v bool) error {
				if v {
					return st.SetAPIID(ctx, storage.Some[int64](4294967295))
				}
				return st.SetAPIID(ctx, storage.Null[int64]{})
			},
			field: func(s *storage.Session, v bool) {
				s.APIID = map[bool]storage.Null[int64]{true: storage.Some[int64](4294967295)}[v]
			},
			bad: []func(storage.Storage) error{
				func(st storage.Storage) error { return st.SetAPIID(ctx, storage.Some[int64](0)) },
				func(st storage.Storage) error { return st.SetAPIID(ctx, storage.Some[int64](-5)) },
				func(st storage.Storage) error { return st.SetAPIID(ctx, storage.Some[int64](4294967296)) },
			},
		},
		{
			name: "test_mode",
			set: func(st storage.Storage, v bool) error {
				if v {
					return st.SetTestMode(ctx, storage.Some(true))
				}
				return st.SetTestMode(ctx, storage.Null[bool]{})
			},
			field: func(s *storage.Session, v bool) {
				s.TestMode = map[bool]storage.Null[bool]{true: storage.Some(true)}[v]
			},
		},
		{
			name: "auth_key",
			set: func(st storage.Storage, v bool) error {
				if v {
					return st.SetAuthKey(ctx, key)
				}
				return st.SetAuthKey(ctx, nil)
			},
			field: func(s *storage.Session, v bool) {
				if v {
					s.AuthKey = key
				} else {
					s.AuthKey = nil
				}
			},
			bad: []func(storage.Storage) error{
				func(st storage.Storage) error { return st.SetAuthKey(ctx, storage.AuthKey{}) },
				func(st storage.Storage) error { return st.SetAuthKey(ctx, make(storage.AuthKey, 255)) },
				func(st storage.Storage) error { return st.SetAuthKey(ctx, make(storage.AuthKey, 257)) },
			},
		},
		{
			name: "user_id",
			set: func(st storage.Storage, v bool) error {
				if v {
					return st.SetUserID(ctx, storage.Some[int64](9007199254740993)) // 2^53+1: not a double
				}
				return st.SetUserID(ctx, storage.Null[int64]{})
			},
			field: func(s *storage.Session, v bool) {
				s.UserID = map[bool]storage.Null[int64]{true: storage.Some[int64](9007199254740993)}[v]
			},
			bad: []func(storage.Storage) error{
				func(st storage.Storage) error { return st.SetUserID(ctx, storage.Some[int64](0)) },
				func(st storage.Storage) error { return st.SetUserID(ctx, storage.Some[int64](-7)) },
			},
		},
		{
			name: "is_bot",
			set: func(st storage.Storage, v bool) error {
				if v {
					return st.SetIsBot(ctx, storage.Some(false))
				}
				return st.SetIsBot(ctx, storage.Null[bool]{})
			},
			field: func(s *storage.Session, v bool) { s.IsBot = map[bool]storage.Null[bool]{true: storage.Some(false)}[v] },
		},
		{
			name: "date",
			set: func(st storage.Storage, v bool) error {
				if v {
					return st.SetDate(ctx, 1700000000)
				}
				return st.SetDate(ctx, 0)
			},
			field: func(s *storage.Session, v bool) {
				if v {
					s.Date = 1700000000
				} else {
					s.Date = 0
				}
			},
			bad: []func(storage.Storage) error{
				func(st storage.Storage) error { return st.SetDate(ctx, -1) },
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t, NewClock(startTime))
			want := storage.NewSession()
			values := []bool{true, false, true}
			if tc.name == "dc_id" && limitsOf(st).DCIDNotNull {
				if err := tc.set(st, false); !errors.Is(err, storage.ErrInvalid) {
					t.Errorf("NULL dc_id on an engine that cannot store it: %v; want ErrInvalid", err)
				}
				values = []bool{true}
			}
			for _, v := range values {
				if err := tc.set(st, v); err != nil {
					t.Fatalf("set (value=%v): %v", v, err)
				}
				tc.field(&want, v)
				if got := mustSession(t, st); !sessionsEqual(got, want) {
					t.Fatalf("after set (value=%v): Session() = %v; want %v", v, got, want)
				}
				checkGetters(t, st, want)
			}
			for i, bad := range tc.bad {
				err := bad(st)
				if !errors.Is(err, storage.ErrInvalid) {
					t.Errorf("bad value #%d: err = %v; want ErrInvalid", i, err)
				}
				if got := mustSession(t, st); !sessionsEqual(got, want) {
					t.Errorf("bad value #%d changed the session: %v; want %v", i, got, want)
				}
			}
		})
	}
}

func fullSession() storage.Session {
	return storage.Session{
		DCID:     storage.Some(5),
		APIID:    storage.Some[int64](611335),
		TestMode: storage.Some(false),
		AuthKey:  testKey(9),
		Date:     1795000000,
		UserID:   storage.Some[int64](6123456789),
		IsBot:    storage.Some(true),
	}
}

func (s suite) testSetSessionRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	want := fullSession()
	if err := st.SetSession(ctx, want); err != nil {
		t.Fatalf("SetSession: %v", err)
	}
	if got := mustSession(t, st); !sessionsEqual(got, want) {
		t.Errorf("Session() = %v; want %v", got, want)
	}
	checkGetters(t, st, want)

	// The Client's login reset: user_id and is_bot back to NULL together.
	if err := st.SetFields(ctx, storage.Session{}, storage.FieldUserID|storage.FieldIsBot); err != nil {
		t.Fatalf("SetFields(NULL user_id, is_bot): %v", err)
	}
	want.UserID, want.IsBot = storage.Null[int64]{}, storage.Null[bool]{}
	if got := mustSession(t, st); !sessionsEqual(got, want) {
		t.Errorf("after NULL reset: Session() = %v; want %v", got, want)
	}

	// A whole write with one bad field writes nothing.
	bad := fullSession()
	bad.APIID = storage.Some[int64](77)
	bad.AuthKey = make(storage.AuthKey, 10)
	if err := st.SetSession(ctx, bad); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("SetSession with a 10-byte key: err = %v; want ErrInvalid", err)
	}
	if got := mustSession(t, st); !sessionsEqual(got, want) {
		t.Errorf("a rejected SetSession changed the session: %v; want %v", got, want)
	}
}

func (s suite) testSave(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.open(t, clock)
	clock.Set(1795631487)
	if err := st.Save(ctx); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if d, err := st.Date(ctx); err != nil || d != 1795631487 {
		t.Errorf("Date after Save = %d, %v; want the clock's 1795631487", d, err)
	}
}

func (s suite) testExportSessionString(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	if _, err := st.ExportSessionString(ctx); !errors.Is(err, storage.ErrIncomplete) {
		t.Errorf("export of a new session: err = %v; want ErrIncomplete", err)
	}
	f, sess := mustFixture(t)
	if err := st.SetSession(ctx, sess); err != nil {
		t.Fatalf("SetSession: %v", err)
	}
	got, err := st.ExportSessionString(ctx)
	if err != nil {
		t.Fatalf("ExportSessionString: %v", err)
	}
	if got != f.ExportSessionString {
		t.Errorf("ExportSessionString =\n%s\nwant Hydrogram's\n%s", got, f.ExportSessionString)
	}
	if len(got) != 362 {
		t.Errorf("len = %d; want 362", len(got))
	}
	if err := st.SetUserID(ctx, storage.Null[int64]{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExportSessionString(ctx); !errors.Is(err, storage.ErrIncomplete) {
		t.Errorf("export without user_id: err = %v; want ErrIncomplete", err)
	}
}

func (s suite) testImportSessionString(t *testing.T) {
	ctx := context.Background()
	f, fixture := mustFixture(t)
	key := testKey(40)
	legacy, err := sessionstring.EncodePyrogramLegacy(sessionstring.Session{DCID: 4, TestMode: true, AuthKey: key, UserID: 5000000000, IsBot: true})
	if err != nil {
		t.Fatal(err)
	}
	telethon, err := sessionstring.EncodeTelethon(sessionstring.Session{DCID: 5, AuthKey: key, Addr: netip.MustParseAddrPort("91.108.56.130:443")})
	if err != nil {
		t.Fatal(err)
	}
	want := fixture
	want.Date = 0 // loading a string sets date 0, as Hydrogram does
	tests := []struct {
		name string
		str  string
		want storage.Session
	}{
		{"hydrogram", f.ExportSessionString, want},
		{"hydrogram wrapped", f.ExportSessionString[:180] + "\n" + f.ExportSessionString[180:] + "\n", want},
		{"legacy pyrogram", legacy, storage.Session{DCID: storage.Some(4), TestMode: storage.Some(true), AuthKey: key,
			UserID: storage.Some[int64](5000000000), IsBot: storage.Some(true)}},
		{"telethon", telethon, storage.Session{DCID: storage.Some(5), AuthKey: key}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t, NewClock(startTime))
			if err := st.SetSession(ctx, fullSession()); err != nil {
				t.Fatal(err)
			}
			if _, err := storage.ImportSessionString(ctx, st, tc.str); err != nil {
				t.Fatalf("ImportSessionString: %v", err)
			}
			if got := mustSession(t, st); !sessionsEqual(got, tc.want) {
				t.Errorf("after import: %v; want %v", got, tc.want)
			}
		})
	}

	t.Run("bad string changes nothing", func(t *testing.T) {
		t.Parallel()
		st := s.open(t, NewClock(startTime))
		if err := st.SetSession(ctx, fullSession()); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"", "AAAA", f.ExportSessionString[:300], "2" + telethon[1:]} {
			if _, err := storage.ImportSessionString(ctx, st, bad); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("import of a bad string: err = %v; want ErrInvalid", err)
			}
		}
		if got := mustSession(t, st); !sessionsEqual(got, fullSession()) {
			t.Errorf("a refused import changed the session: %v", got)
		}
	})

	t.Run("peer cache kept only for the same account", func(t *testing.T) {
		t.Parallel()
		st := s.open(t, NewClock(startTime))
		peer := storage.Peer{ID: 42, AccessHash: hash(42), Type: storage.PeerUser}
		if err := st.SetSession(ctx, fixture); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdatePeers(ctx, []storage.Peer{peer}); err != nil {
			t.Fatal(err)
		}
		// The same account (a re-exported string): the cache stays.
		if _, err := storage.ImportSessionString(ctx, st, f.ExportSessionString); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PeerByID(ctx, 42); err != nil {
			t.Errorf("same account: peer cache lost: %v", err)
		}
		// Another account: access hashes are per account, so the cache goes.
		if _, err := storage.ImportSessionString(ctx, st, legacy); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PeerByID(ctx, 42); !errors.Is(err, storage.ErrPeerNotFound) {
			t.Errorf("other account: err = %v; want the old account's peers gone", err)
		}
	})
}

// secretForms are renderings of a key that must never appear in output.
func secretForms(k []byte) []string {
	return []string{
		string(k[:32]),
		hex.EncodeToString(k[:16]),
		strings.ToUpper(hex.EncodeToString(k[:16])),
		base64.StdEncoding.EncodeToString(k[:30]),
		base64.RawURLEncoding.EncodeToString(k[:30]),
		fmt.Sprint([]byte(k[:8]))[1:20],
	}
}

func (s suite) testAuthKeyNeverPrinted(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	sess := fullSession()
	if err := st.SetSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got := mustSession(t, st)
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
		outputs = append(outputs, fmt.Sprintf(verb, got), fmt.Sprintf(verb, got.AuthKey), fmt.Sprintf(verb, st))
	}
	outputs = append(outputs, got.String(), got.AuthKey.String())
	// Errors that involve the key must not carry it either.
	tooLong := append(storage.AuthKey{}, sess.AuthKey...)
	tooLong = append(tooLong, 1)
	if err := st.SetAuthKey(ctx, tooLong); err != nil {
		outputs = append(outputs, err.Error())
	}
	for _, out := range outputs {
		for _, secret := range secretForms(sess.AuthKey) {
			if strings.Contains(out, secret) {
				t.Errorf("output reveals the auth key: %q", out)
			}
		}
	}
}

func hash(v int64) storage.Null[int64] { return storage.Some(v) }

func (s suite) testPeerRoundTrip(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.open(t, clock)
	tests := []struct {
		peer storage.Peer
		want storage.InputPeer
	}{
		{storage.Peer{ID: 1, AccessHash: hash(-9223372036854775808), Type: storage.PeerUser, Usernames: []string{"min_hash"}},
			storage.InputPeer{Kind: storage.InputPeerUser, ID: 1, AccessHash: hash(-9223372036854775808)}},
		{storage.Peer{ID: 999999999999, AccessHash: hash(9223372036854775807), Type: storage.PeerBot, Usernames: []string{"max_bot"}, PhoneNumber: "123"},
			storage.InputPeer{Kind: storage.InputPeerUser, ID: 999999999999, AccessHash: hash(9223372036854775807)}},
		{storage.Peer{ID: 9007199254740993 % 999999999999, AccessHash: hash(9007199254740993), Type: storage.PeerUser},
			storage.InputPeer{Kind: storage.InputPeerUser, ID: 9007199254740993 % 999999999999, AccessHash: hash(9007199254740993)}},
		{storage.Peer{ID: 777, Type: storage.PeerUser},
			storage.InputPeer{Kind: storage.InputPeerUser, ID: 777}},
		{storage.Peer{ID: -1, AccessHash: hash(0), Type: storage.PeerGroup},
			storage.InputPeer{Kind: storage.InputPeerChat, ID: 1}},
		{storage.Peer{ID: -999999999999, AccessHash: hash(0), Type: storage.PeerGroup},
			storage.InputPeer{Kind: storage.InputPeerChat, ID: 999999999999}},
		{storage.Peer{ID: -1000000000001, AccessHash: hash(77), Type: storage.PeerChannel, Usernames: []string{"chan"}},
			storage.InputPeer{Kind: storage.InputPeerChannel, ID: 1, AccessHash: hash(77)}},
		{storage.Peer{ID: -1007852516352, AccessHash: hash(-42), Type: storage.PeerSupergroup, PhoneNumber: "88"},
			storage.InputPeer{Kind: storage.InputPeerChannel, ID: 7852516352, AccessHash: hash(-42)}},
	}
	var batch []storage.Peer
	for _, tc := range tests {
		batch = append(batch, tc.peer)
	}
	if err := st.UpdatePeers(ctx, batch); err != nil {
		t.Fatalf("UpdatePeers: %v", err)
	}
	for _, tc := range tests {
		want := expect(t, st, tc.peer)
		want.LastUpdateOn = startTime
		got, err := st.PeerByID(ctx, tc.peer.ID)
		if err != nil {
			t.Errorf("PeerByID(%d): %v", tc.peer.ID, err)
			continue
		}
		checkPeer(t, fmt.Sprintf("PeerByID(%d)", tc.peer.ID), got, want)
		if ip := got.InputPeer(); ip != tc.want {
			t.Errorf("PeerByID(%d).InputPeer() = %v; want %v", tc.peer.ID, ip, tc.want)
		}
		for _, u := range tc.peer.Usernames {
			if got, err := st.PeerByUsername(ctx, u); err != nil || got.ID != tc.peer.ID {
				t.Errorf("PeerByUsername(%q) = %d, %v; want %d", u, got.ID, err, tc.peer.ID)
			}
		}
		if ph := tc.peer.PhoneNumber; ph != "" {
			if got, err := st.PeerByPhoneNumber(ctx, ph); err != nil || got.ID != tc.peer.ID {
				t.Errorf("PeerByPhoneNumber(%q) = %d, %v; want %d", ph, got.ID, err, tc.peer.ID)
			}
		}
	}
}

func checkPeer(t *testing.T, what string, got, want storage.Peer) {
	t.Helper()
	if got.ID != want.ID || got.AccessHash != want.AccessHash || got.Type != want.Type ||
		got.PhoneNumber != want.PhoneNumber || got.Min != want.Min || got.LastUpdateOn != want.LastUpdateOn ||
		strings.Join(got.Usernames, " ") != strings.Join(want.Usernames, " ") {
		t.Errorf("%s = %+v; want %+v", what, got, want)
	}
}

func expectMiss(t *testing.T, what string, err error, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v; want %v", what, err, target)
	}
}

func (s suite) testWholeRowReplace(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.open(t, clock)
	first := storage.Peer{ID: 100, AccessHash: hash(1), Type: storage.PeerUser, Usernames: []string{"first_name"}, PhoneNumber: "111"}
	if err := st.UpdatePeers(ctx, []storage.Peer{first}); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	second := storage.Peer{ID: 100, Type: storage.PeerBot}
	if err := st.UpdatePeers(ctx, []storage.Peer{second}); err != nil {
		t.Fatal(err)
	}
	got, err := st.PeerByID(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := second
	want.LastUpdateOn = startTime + 60
	checkPeer(t, "after replace", got, want)
	_, err = st.PeerByUsername(ctx, "first_name")
	expectMiss(t, "old username", err, storage.ErrPeerNotFound)
	_, err = st.PeerByPhoneNumber(ctx, "111")
	expectMiss(t, "old phone", err, storage.ErrPeerNotFound)
}

func (s suite) testDuplicatesLastWins(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	batch := []storage.Peer{
		{ID: 200, AccessHash: hash(1), Type: storage.PeerUser, Usernames: []string{"dup_a"}},
		{ID: 201, AccessHash: hash(5), Type: storage.PeerUser},
		{ID: 200, AccessHash: hash(2), Type: storage.PeerUser, Usernames: []string{"dup_b"}},
	}
	if err := st.UpdatePeers(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := st.PeerByID(ctx, 200)
	if err != nil || got.AccessHash != hash(2) || got.Username() != "dup_b" {
		t.Errorf("PeerByID(200) = %+v, %v; want the last occurrence (hash 2, dup_b)", got, err)
	}
	_, err = st.PeerByUsername(ctx, "dup_a")
	expectMiss(t, "username of the overridden occurrence", err, storage.ErrPeerNotFound)
	if got, err := st.PeerByID(ctx, 201); err != nil || got.AccessHash != hash(5) {
		t.Errorf("PeerByID(201) = %+v, %v", got, err)
	}
}

func (s suite) testEmptyBatch(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	if err := st.UpdatePeers(ctx, nil); err != nil {
		t.Errorf("UpdatePeers(nil) = %v", err)
	}
	if err := st.UpdatePeers(ctx, []storage.Peer{}); err != nil {
		t.Errorf("UpdatePeers([]) = %v", err)
	}
}

func (s suite) testInvalidBatchWritesNothing(t *testing.T) {
	ctx := context.Background()
	good := []storage.Peer{
		{ID: 300, AccessHash: hash(1), Type: storage.PeerUser, Usernames: []string{"good_one"}, PhoneNumber: "300"},
		{ID: -300, Type: storage.PeerGroup},
	}
	bad := []storage.Peer{
		{ID: 301, Type: "chat"},
		{ID: 301, Type: ""},
		{ID: -301, Type: storage.PeerUser},
		{ID: 0, Type: storage.PeerUser},
		{ID: 1000000000000, Type: storage.PeerUser},
		{ID: -301, Type: storage.PeerChannel},
		{ID: -1000000000000, Type: storage.PeerChannel},
		{ID: -1007852516353, Type: storage.PeerSupergroup},
		{ID: -1000000000001, Type: storage.PeerGroup},
		{ID: 301, Type: storage.PeerUser, Usernames: []string{"bad name"}},
		{ID: 301, Type: storage.PeerUser, Usernames: []string{""}},
		{ID: 301, Type: storage.PeerUser, Usernames: []string{strings.Repeat("a", 65)}},
		{ID: 301, Type: storage.PeerUser, Usernames: []string{"ok", "{tag}"}},
		{ID: 301, Type: storage.PeerUser, PhoneNumber: "12ab"},
		{ID: 301, Type: storage.PeerUser, PhoneNumber: "+"},
	}
	for i, b := range bad {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			st := s.open(t, NewClock(startTime))
			batch := append(append([]storage.Peer{}, good...), b)
			err := st.UpdatePeers(ctx, batch)
			if !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("UpdatePeers with %+v: err = %v; want ErrInvalid", b, err)
			}
			for _, p := range good {
				_, err := st.PeerByID(ctx, p.ID)
				expectMiss(t, fmt.Sprintf("PeerByID(%d) after a rejected batch", p.ID), err, storage.ErrPeerNotFound)
			}
			_, err = st.PeerByUsername(ctx, "good_one")
			expectMiss(t, "username after a rejected batch", err, storage.ErrPeerNotFound)
			_, err = st.PeerByPhoneNumber(ctx, "300")
			expectMiss(t, "phone after a rejected batch", err, storage.ErrPeerNotFound)
		})
	}
}

func (s suite) testUsernameMoves(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.open(t, clock)
	a := storage.Peer{ID: 400, AccessHash: hash(1), Type: storage.PeerUser, Usernames: []string{"moving", "keep_a"}}
	b := storage.Peer{ID: 401, AccessHash: hash(2), Type: storage.PeerChannel}
	b.ID = -1000000000401
	if err := st.UpdatePeers(ctx, []storage.Peer{a}); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second)
	b.Usernames = []string{"moving"}
	if err := st.UpdatePeers(ctx, []storage.Peer{b}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.PeerByUsername(ctx, "moving"); err != nil || got.ID != b.ID {
		t.Errorf("PeerByUsername(moving) = %d, %v; want the new holder %d", got.ID, err, b.ID)
	}
	got, err := st.PeerByID(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Like Hydrogram, the old holder's row is left as it was written.
	wantA := expect(t, st, a)
	if strings.Join(got.Usernames, " ") != strings.Join(wantA.Usernames, " ") {
		t.Errorf("old holder's usernames = %q; want its row unchanged (%q)", got.Usernames, wantA.Usernames)
	}
	if slices.Contains(wantA.Usernames, "keep_a") {
		if got, err := st.PeerByUsername(ctx, "keep_a"); err != nil || got.ID != a.ID {
			t.Errorf("PeerByUsername(keep_a) = %d, %v; want %d", got.ID, err, a.ID)
		}
	}
	// The old holder written again (now the latest) takes the name back.
	clock.Add(time.Second)
	if err := st.UpdatePeers(ctx, []storage.Peer{a}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.PeerByUsername(ctx, "moving"); err != nil || got.ID != a.ID {
		t.Errorf("PeerByUsername(moving) after the old holder's rewrite = %d, %v; want %d", got.ID, err, a.ID)
	}
}

func (s suite) testPhoneNumberMoves(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.open(t, clock)
	if err := st.UpdatePeers(ctx, []storage.Peer{{ID: 500, Type: storage.PeerUser, PhoneNumber: "15550001"}}); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second) // which of two same-second writers wins is unspecified
	if err := st.UpdatePeers(ctx, []storage.Peer{{ID: 501, Type: storage.PeerUser, PhoneNumber: "15550001"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.PeerByPhoneNumber(ctx, "15550001"); err != nil || got.ID != 501 {
		t.Errorf("PeerByPhoneNumber = %d, %v; want the new holder 501", got.ID, err)
	}
	if got, err := st.PeerByID(ctx, 500); err != nil || got.PhoneNumber != "15550001" {
		t.Errorf("old holder = %+v, %v; want its row unchanged", got, err)
	}
}

func (s suite) testRenameBackAndForth(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.open(t, clock)
	ids := []int64{600, 601, 602}
	names := []string{"name_x", "name_y", "name_z"}
	holder := map[string]int64{}
	// Each round gives every peer a rotated set of names, sometimes none, in
	// one batch or one peer per call, and checks every name afterwards.
	for round := 0; round < 12; round++ {
		clock.Add(time.Second)
		var batch []storage.Peer
		for i, id := range ids {
			p := storage.Peer{ID: id, AccessHash: hash(id), Type: storage.PeerUser}
			if (round+i)%4 != 3 {
				p.Usernames = []string{names[(round+i)%3]}
			}
			if round%3 == 0 && i == 0 {
				p.Usernames = append(p.Usernames, "name_w")
			}
			batch = append(batch, p)
		}
		if round%2 == 0 {
			if err := st.UpdatePeers(ctx, batch); err != nil {
				t.Fatal(err)
			}
		} else {
			for _, p := range batch {
				clock.Add(time.Second) // which of two same-second writers wins is unspecified
				if err := st.UpdatePeers(ctx, []storage.Peer{p}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The model: lookups return the peer written last with the name
		// (every peer is rewritten each round, so older claims are gone);
		// each row keeps exactly what was written for it.
		for k := range holder {
			delete(holder, k)
		}
		held := map[int64][]string{}
		for _, p := range batch {
			for _, u := range expect(t, st, p).Usernames {
				holder[u] = p.ID
			}
			held[p.ID] = expect(t, st, p).Usernames
		}
		for _, u := range append(names, "name_w") {
			got, err := st.PeerByUsername(ctx, u)
			want, ok := holder[u]
			switch {
			case !ok:
				expectMiss(t, fmt.Sprintf("round %d: PeerByUsername(%s)", round, u), err, storage.ErrPeerNotFound)
			case err != nil || got.ID != want:
				t.Errorf("round %d: PeerByUsername(%s) = %d, %v; want %d", round, u, got.ID, err, want)
			}
		}
		for _, id := range ids {
			got, err := st.PeerByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Usernames, " ") != strings.Join(held[id], " ") {
				t.Errorf("round %d: peer %d usernames = %q; want %q", round, id, got.Usernames, held[id])
			}
		}
	}
}

func norm(t *testing.T, p storage.Peer) storage.Peer {
	t.Helper()
	n, err := p.Normalized()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (s suite) testMultipleUsernames(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	p := storage.Peer{ID: 700, AccessHash: hash(7), Type: storage.PeerUser, Usernames: []string{"primary_name", "collectible_1", "Collectible_2", "@collectible_1"}}
	if err := st.UpdatePeers(ctx, []storage.Peer{p}); err != nil {
		t.Fatal(err)
	}
	got, err := st.PeerByID(ctx, 700)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(expect(t, st, p).Usernames, " "); strings.Join(got.Usernames, " ") != want {
		t.Errorf("usernames = %q; want %q (lower-cased, '@' dropped, duplicates removed, order kept)", got.Usernames, want)
	}
	if limitsOf(st).OneUsername {
		if got, err := st.PeerByUsername(ctx, "primary_name"); err != nil || got.ID != 700 {
			t.Errorf("PeerByUsername(primary_name) = %d, %v; want 700", got.ID, err)
		}
		_, err := st.PeerByUsername(ctx, "collectible_1")
		expectMiss(t, "a collectible username on an engine that keeps one", err, storage.ErrPeerNotFound)
		return
	}
	for _, u := range []string{"primary_name", "collectible_1", "collectible_2"} {
		if got, err := st.PeerByUsername(ctx, u); err != nil || got.ID != 700 {
			t.Errorf("PeerByUsername(%s) = %d, %v; want 700", u, got.ID, err)
		}
	}
	p.Usernames = []string{"primary_name", "collectible_2"}
	if err := st.UpdatePeers(ctx, []storage.Peer{p}); err != nil {
		t.Fatal(err)
	}
	_, err = st.PeerByUsername(ctx, "collectible_1")
	expectMiss(t, "dropped collectible username", err, storage.ErrPeerNotFound)
	if got, err := st.PeerByUsername(ctx, "collectible_2"); err != nil || got.ID != 700 {
		t.Errorf("PeerByUsername(collectible_2) = %d, %v; want 700", got.ID, err)
	}
}

func (s suite) testMinPeers(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	steps := []struct {
		name     string
		write    storage.Peer
		wantHash storage.Null[int64]
		wantMin  bool
	}{
		{"min on an unknown peer is stored as min",
			storage.Peer{ID: 800, AccessHash: hash(11), Type: storage.PeerUser, Min: true}, hash(11), true},
		{"full replaces min",
			storage.Peer{ID: 800, AccessHash: hash(22), Type: storage.PeerUser, Usernames: []string{"min_test"}}, hash(22), false},
		{"min never replaces a full hash",
			storage.Peer{ID: 800, AccessHash: hash(33), Type: storage.PeerUser, Usernames: []string{"min_test_2"}, Min: true}, hash(22), false},
		{"min without a hash keeps the full hash",
			storage.Peer{ID: 800, Type: storage.PeerUser, Min: true}, hash(22), false},
		{"full replaces full",
			storage.Peer{ID: 800, AccessHash: hash(44), Type: storage.PeerUser}, hash(44), false},
	}
	for _, step := range steps {
		if err := st.UpdatePeers(ctx, []storage.Peer{step.write}); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := st.PeerByID(ctx, 800)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if limitsOf(st).NoMinFlag {
			step.wantMin = false
		}
		if got.AccessHash != step.wantHash || got.Min != step.wantMin {
			t.Errorf("%s: hash %v min %v; want %v min %v", step.name, got.AccessHash, got.Min, step.wantHash, step.wantMin)
		}
		if strings.Join(got.Usernames, " ") != strings.Join(expect(t, st, step.write).Usernames, " ") {
			t.Errorf("%s: usernames %q; want %q (the rest of the row is replaced)", step.name, got.Usernames, step.write.Usernames)
		}
	}
}

func (s suite) testLookupNormalization(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	if err := st.UpdatePeers(ctx, []storage.Peer{{ID: 900, AccessHash: hash(9), Type: storage.PeerUser, Usernames: []string{"@Mixed_Case"}, PhoneNumber: "+1 (555) 010-9000"}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.PeerByID(ctx, 900)
	if err != nil || got.Username() != "mixed_case" || got.PhoneNumber != "15550109000" {
		t.Errorf("stored = %+v, %v; want username mixed_case and phone 15550109000", got, err)
	}
	for _, u := range []string{"mixed_case", "MIXED_CASE", "@Mixed_Case", " @mixed_case "} {
		if got, err := st.PeerByUsername(ctx, u); err != nil || got.ID != 900 {
			t.Errorf("PeerByUsername(%q) = %d, %v; want 900", u, got.ID, err)
		}
	}
	for _, p := range []string{"15550109000", "+15550109000", "+1 555 010 9000", "1-555-010-9000"} {
		if got, err := st.PeerByPhoneNumber(ctx, p); err != nil || got.ID != 900 {
			t.Errorf("PeerByPhoneNumber(%q) = %d, %v; want 900", p, got.ID, err)
		}
	}
	for _, u := range []string{"", "@", "mixed case", "{mixed_case}", "mixed_case\x00", strings.Repeat("x", 5000)} {
		_, err := st.PeerByUsername(ctx, u)
		expectMiss(t, fmt.Sprintf("PeerByUsername(%.20q)", u), err, storage.ErrPeerNotFound)
		// Hydrogram's text; a key too long to be a username is quoted as
		// an excerpt (errors never echo a megabyte of input back).
		want := "Username not found: " + u
		if len(u) > storage.MaxExcerpt {
			want = "Username not found: " + storage.Excerpt(u)
		}
		var le *storage.LookupError
		if errors.As(err, &le) && le.Error() != want {
			t.Errorf("miss text = %.80q; want %.80q", le.Error(), want)
		}
	}
	for _, p := range []string{"", "+", "abc", "1555x"} {
		_, err := st.PeerByPhoneNumber(ctx, p)
		expectMiss(t, fmt.Sprintf("PeerByPhoneNumber(%q)", p), err, storage.ErrPeerNotFound)
	}
}

func (s suite) testUsernameTTL(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.open(t, clock)
	if err := st.UpdatePeers(ctx, []storage.Peer{{ID: 1000, AccessHash: hash(1), Type: storage.PeerUser, Usernames: []string{"ttl_user"}, PhoneNumber: "1000"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		delta   int64
		expired bool
	}{
		{0, false}, {1, false}, {storage.UsernameTTL, false}, {storage.UsernameTTL + 1, true},
		{-storage.UsernameTTL, false}, {-storage.UsernameTTL - 1, true}, {10 * storage.UsernameTTL, true},
	}
	for _, tc := range tests {
		clock.Set(startTime + tc.delta)
		got, err := st.PeerByUsername(ctx, "ttl_user")
		if tc.expired {
			expectMiss(t, fmt.Sprintf("delta %d", tc.delta), err, storage.ErrUsernameExpired)
			if errors.Is(err, storage.ErrPeerNotFound) {
				t.Errorf("delta %d: an expired username must not also be ErrPeerNotFound", tc.delta)
			}
			if err != nil && err.Error() != "Username expired: ttl_user" {
				t.Errorf("delta %d: text %q; want Hydrogram's", tc.delta, err.Error())
			}
		} else if err != nil || got.ID != 1000 {
			t.Errorf("delta %d: PeerByUsername = %d, %v; want 1000", tc.delta, got.ID, err)
		}
		// No TTL for ids and phone numbers.
		if _, err := st.PeerByID(ctx, 1000); err != nil {
			t.Errorf("delta %d: PeerByID: %v", tc.delta, err)
		}
		if _, err := st.PeerByPhoneNumber(ctx, "1000"); err != nil {
			t.Errorf("delta %d: PeerByPhoneNumber: %v", tc.delta, err)
		}
	}
	// A rewrite refreshes the timestamp.
	clock.Set(startTime + 10*storage.UsernameTTL)
	if err := st.UpdatePeers(ctx, []storage.Peer{{ID: 1000, AccessHash: hash(1), Type: storage.PeerUser, Usernames: []string{"ttl_user"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PeerByUsername(ctx, "ttl_user"); err != nil {
		t.Errorf("after refresh: %v", err)
	}
}

func genPeers(n int, seed int64) []storage.Peer {
	out := make([]storage.Peer, 0, n)
	for i := 0; i < n; i++ {
		id := seed + int64(i)
		p := storage.Peer{ID: id, AccessHash: hash(id*7919 - 4611686018427387904), Type: storage.PeerUser}
		switch i % 4 {
		case 0:
			p.Usernames = []string{fmt.Sprintf("gen_%d", id)}
		case 1:
			p.PhoneNumber = fmt.Sprintf("99%d", id)
		case 2:
			p.Type = storage.PeerChannel
			p.ID = storage.ChannelID(id)
			p.Usernames = []string{fmt.Sprintf("chan_%d", id), fmt.Sprintf("alt_%d", id)}
		case 3:
			p.Type = storage.PeerGroup
			p.ID = -id
			p.AccessHash = storage.Null[int64]{}
		}
		out = append(out, p)
	}
	return out
}

func (s suite) testBatchMatchesSingles(t *testing.T) {
	ctx := context.Background()
	peers := genPeers(60, 5000)
	batch := s.open(t, NewClock(startTime))
	single := s.open(t, NewClock(startTime))
	if err := batch.UpdatePeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if err := single.UpdatePeers(ctx, []storage.Peer{p}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range peers {
		a, errA := batch.PeerByID(ctx, p.ID)
		b, errB := single.PeerByID(ctx, p.ID)
		if errA != nil || errB != nil {
			t.Fatalf("PeerByID(%d): %v / %v", p.ID, errA, errB)
		}
		checkPeer(t, fmt.Sprintf("batch vs single, peer %d", p.ID), a, b)
		for _, u := range p.Usernames {
			a, errA := batch.PeerByUsername(ctx, u)
			b, errB := single.PeerByUsername(ctx, u)
			if a.ID != b.ID || (errA == nil) != (errB == nil) {
				t.Errorf("PeerByUsername(%s): batch %d/%v, single %d/%v", u, a.ID, errA, b.ID, errB)
			}
		}
		if ph := p.PhoneNumber; ph != "" {
			a, errA := batch.PeerByPhoneNumber(ctx, ph)
			b, errB := single.PeerByPhoneNumber(ctx, ph)
			if a.ID != b.ID || (errA == nil) != (errB == nil) {
				t.Errorf("PeerByPhoneNumber(%s): batch %d/%v, single %d/%v", ph, a.ID, errA, b.ID, errB)
			}
		}
	}
}

func (s suite) testLargeBatch(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	peers := genPeers(2500, 100000)
	if err := st.UpdatePeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(peers); i += 97 {
		p := peers[i]
		if got, err := st.PeerByID(ctx, p.ID); err != nil || got.AccessHash != p.AccessHash {
			t.Errorf("PeerByID(%d) = %+v, %v", p.ID, got, err)
		}
	}
	last := peers[len(peers)-1]
	if got, err := st.PeerByID(ctx, last.ID); err != nil || got.ID != last.ID {
		t.Errorf("last peer: %+v, %v", got, err)
	}
}

func (s suite) testConcurrent(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*3)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers := genPeers(40, int64(20000+w*100))
			for i := 0; i < len(peers); i += 10 {
				if err := st.UpdatePeers(ctx, peers[i:i+10]); err != nil {
					errs <- err
					return
				}
				for _, p := range peers[i : i+10] {
					if _, err := st.PeerByID(ctx, p.ID); err != nil {
						errs <- fmt.Errorf("PeerByID(%d) right after writing it: %w", p.ID, err)
						return
					}
				}
			}
			if _, err := st.Session(ctx); err != nil {
				errs <- err
			}
			if err := st.SetDCID(ctx, storage.Some(1+w%5)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func (s suite) testDelete(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	st := s.newStore(t, clock.Now)
	t.Cleanup(func() { _ = st.Delete(context.Background()); _ = st.Close() })
	if err := st.Delete(ctx); err != nil {
		t.Errorf("Delete of a session that never existed: %v", err)
	}
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSession(ctx, fullSession()); err != nil {
		t.Fatal(err)
	}
	peers := genPeers(1200, 300000)
	if err := st.UpdatePeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.Session(ctx); !errors.Is(err, storage.ErrSessionNotFound) {
		t.Errorf("Session after Delete: err = %v; want ErrSessionNotFound", err)
	}
	if err := st.SetDCID(ctx, storage.Some(3)); !errors.Is(err, storage.ErrSessionNotFound) {
		t.Errorf("SetDCID after Delete: err = %v; want ErrSessionNotFound (a deleted session is not resurrected)", err)
	}
	if err := st.UpdatePeers(ctx, peers[:1]); !errors.Is(err, storage.ErrSessionNotFound) {
		t.Errorf("UpdatePeers after Delete: err = %v; want ErrSessionNotFound", err)
	}
	for _, p := range []storage.Peer{peers[0], peers[599], peers[1199]} {
		_, err := st.PeerByID(ctx, p.ID)
		expectMiss(t, fmt.Sprintf("PeerByID(%d) after Delete", p.ID), err, storage.ErrPeerNotFound)
	}
	_, err := st.PeerByUsername(ctx, "gen_300000")
	expectMiss(t, "username after Delete", err, storage.ErrPeerNotFound)
	if err := st.Delete(ctx); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	// Hydrogram deletes after Close: that must work too.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Open(ctx); err != nil {
		t.Fatalf("Open after Delete: %v", err)
	}
	if got := mustSession(t, st); !sessionsEqual(got, storage.NewSession()) {
		t.Errorf("reopened session = %v; want a fresh one", got)
	}
	if _, err := st.PeerByID(ctx, peers[0].ID); !errors.Is(err, storage.ErrPeerNotFound) {
		t.Errorf("peer survived Delete+Open: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx); err != nil {
		t.Errorf("Delete after Close: %v", err)
	}
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustSession(t, st); !sessionsEqual(got, storage.NewSession()) {
		t.Errorf("session after Delete-after-Close = %v; want a fresh one", got)
	}
}

func (s suite) testImportPeers(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	imp, ok := st.(storage.PeerImporter)
	if !ok {
		t.Skip("the engine does not implement storage.PeerImporter")
	}
	// Three holders of one name, imported out of time order: the latest wins.
	peers := []storage.Peer{
		{ID: 1100, AccessHash: hash(1), Type: storage.PeerUser, Usernames: []string{"shared"}, PhoneNumber: "1100", LastUpdateOn: startTime - 300},
		{ID: 1101, AccessHash: hash(2), Type: storage.PeerUser, Usernames: []string{"shared"}, PhoneNumber: "1100", LastUpdateOn: startTime - 100},
		{ID: 1102, AccessHash: hash(3), Type: storage.PeerUser, Usernames: []string{"shared"}, PhoneNumber: "1100", LastUpdateOn: startTime - 200},
	}
	if err := imp.ImportPeers(ctx, peers[:2]); err != nil {
		t.Fatal(err)
	}
	if err := imp.ImportPeers(ctx, peers[2:]); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		got, err := st.PeerByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkPeer(t, fmt.Sprintf("imported peer %d", p.ID), got, norm(t, p))
	}
	if got, err := st.PeerByUsername(ctx, "shared"); err != nil || got.ID != 1101 {
		t.Errorf("PeerByUsername(shared) = %d, %v; want 1101, the latest holder", got.ID, err)
	}
	if got, err := st.PeerByPhoneNumber(ctx, "1100"); err != nil || got.ID != 1101 {
		t.Errorf("PeerByPhoneNumber = %d, %v; want 1101", got.ID, err)
	}
	if err := imp.ImportPeers(ctx, []storage.Peer{{ID: 1103, Type: storage.PeerUser, LastUpdateOn: -1}}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("import with a negative time: %v; want ErrInvalid", err)
	}
}

// scanAll reads every peer through ScanPeers in batches of count.
func scanAll(t *testing.T, sc storage.PeerScanner, count int) map[int64]storage.Peer {
	t.Helper()
	got := map[int64]storage.Peer{}
	cursor := ""
	for i := 0; ; i++ {
		batch, next, err := sc.ScanPeers(context.Background(), cursor, count)
		if err != nil {
			t.Fatalf("ScanPeers: %v", err)
		}
		for _, p := range batch {
			got[p.ID] = p
		}
		if next == "" {
			return got
		}
		if i > 100000 {
			t.Fatal("ScanPeers does not end")
		}
		cursor = next
	}
}

func (s suite) testScanPeers(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	sc, ok := st.(storage.PeerScanner)
	if !ok {
		t.Skip("the engine does not implement storage.PeerScanner")
	}
	if got := scanAll(t, sc, 10); len(got) != 0 {
		t.Errorf("scan of an empty cache: %d peers", len(got))
	}
	peers := genPeers(1500, 400000)
	if err := st.UpdatePeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, sc, 100)
	if len(got) != len(peers) {
		t.Errorf("scan found %d peers; want %d", len(got), len(peers))
	}
	for _, p := range peers {
		want, err := st.PeerByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkPeer(t, fmt.Sprintf("scanned peer %d", p.ID), got[p.ID], want)
	}
}

func (s suite) testCopy(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(startTime)
	src := s.open(t, clock)
	if _, ok := src.(storage.PeerScanner); !ok {
		t.Skip("the engine does not implement storage.PeerScanner")
	}
	dst := s.open(t, NewClock(startTime+5000))
	if err := src.SetSession(ctx, fullSession()); err != nil {
		t.Fatal(err)
	}
	peers := genPeers(2100, 500000)
	for i := 0; i < len(peers); i += 700 {
		clock.Add(time.Minute) // several distinct timestamps
		if err := src.UpdatePeers(ctx, peers[i:min(i+700, len(peers))]); err != nil {
			t.Fatal(err)
		}
	}
	var calls []int64
	n, err := storage.Copy(ctx, dst, src, storage.CopyOptions{BatchSize: 250, Progress: func(done int64) { calls = append(calls, done) }})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if n < int64(len(peers)) || len(calls) == 0 || calls[len(calls)-1] != n || !slices.IsSorted(calls) {
		t.Errorf("Copy = %d peers, progress %v", n, calls)
	}
	if got := mustSession(t, dst); !sessionsEqual(got, fullSession()) {
		t.Errorf("copied session = %v", got)
	}
	_, keepsTime := dst.(storage.PeerImporter)
	for _, p := range peers {
		want, err := src.PeerByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dst.PeerByID(ctx, p.ID)
		if err != nil {
			t.Fatalf("copied peer %d: %v", p.ID, err)
		}
		if !keepsTime {
			got.LastUpdateOn = want.LastUpdateOn
		}
		checkPeer(t, fmt.Sprintf("copied peer %d", p.ID), got, want)
		for _, u := range want.Usernames {
			a, errA := src.PeerByUsername(ctx, u)
			b, errB := dst.PeerByUsername(ctx, u)
			if a.ID != b.ID || (errA == nil) != (errB == nil) {
				t.Errorf("PeerByUsername(%s): source %d/%v, copy %d/%v", u, a.ID, errA, b.ID, errB)
			}
		}
	}
}

// replacer returns st as a storage.Replacer, or skips the test.
func replacer(t *testing.T, st storage.Storage) storage.Replacer {
	t.Helper()
	r, ok := st.(storage.Replacer)
	if !ok {
		t.Skip("the engine does not implement storage.Replacer")
	}
	return r
}

// checkHolds checks that st holds exactly session want and, of the peers in
// present and absent, exactly those in present (by id and by each username).
func checkHolds(t *testing.T, what string, st storage.Storage, want storage.Session, present, absent []storage.Peer) {
	t.Helper()
	ctx := context.Background()
	if got := mustSession(t, st); !sessionsEqual(got, want) {
		t.Errorf("%s: session = %v; want %v", what, got, want)
	}
	for _, p := range present {
		if _, err := st.PeerByID(ctx, p.ID); err != nil {
			t.Errorf("%s: PeerByID(%d): %v", what, p.ID, err)
		}
		if len(p.Usernames) > 0 {
			if got, err := st.PeerByUsername(ctx, p.Usernames[0]); err != nil || got.ID != p.ID {
				t.Errorf("%s: PeerByUsername(%s) = %d, %v; want %d", what, p.Usernames[0], got.ID, err, p.ID)
			}
		}
	}
	for _, p := range absent {
		_, err := st.PeerByID(ctx, p.ID)
		expectMiss(t, fmt.Sprintf("%s: PeerByID(%d)", what, p.ID), err, storage.ErrPeerNotFound)
		if len(p.Usernames) > 0 {
			_, err := st.PeerByUsername(ctx, p.Usernames[0])
			expectMiss(t, fmt.Sprintf("%s: PeerByUsername(%s)", what, p.Usernames[0]), err, storage.ErrPeerNotFound)
		}
		if p.PhoneNumber != "" {
			_, err := st.PeerByPhoneNumber(ctx, p.PhoneNumber)
			expectMiss(t, fmt.Sprintf("%s: PeerByPhoneNumber(%s)", what, p.PhoneNumber), err, storage.ErrPeerNotFound)
		}
	}
}

// testReplace: a Replacement is invisible until Commit, which swaps the
// whole session (fields and peers) at once; Abort, invalid peers and an
// invalid session leave the stored session exactly as it was.
func (s suite) testReplace(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	r := replacer(t, st)
	old, next := genPeers(40, 700000), genPeers(30, 800000)
	if err := st.SetSession(ctx, fullSession()); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdatePeers(ctx, old); err != nil {
		t.Fatal(err)
	}
	newSession := fullSession()
	newSession.DCID, newSession.UserID, newSession.AuthKey = storage.Some(1), storage.Some[int64](42), testKey(3)
	for i := range next {
		next[i].LastUpdateOn = startTime - 60
	}

	for _, tc := range []struct {
		name string
		run  func(storage.Replacement) error
	}{
		{"abort", func(rep storage.Replacement) error {
			if err := rep.ImportPeers(ctx, next); err != nil {
				return err
			}
			return rep.Abort(ctx)
		}},
		{"invalid peer", func(rep storage.Replacement) error {
			if err := rep.ImportPeers(ctx, next[:10]); err != nil {
				return err
			}
			err := rep.ImportPeers(ctx, []storage.Peer{next[10], {ID: 5, Type: storage.PeerUser, Usernames: []string{"bad name"}}})
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("ImportPeers with a bad username: %v; want ErrInvalid", err)
			}
			return rep.Abort(ctx)
		}},
		{"invalid session", func(rep storage.Replacement) error {
			if err := rep.ImportPeers(ctx, next); err != nil {
				return err
			}
			bad := newSession
			bad.DCID = storage.Some(0)
			if err := rep.Commit(ctx, bad); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("Commit(dc_id 0): %v; want ErrInvalid", err)
			}
			return rep.Abort(ctx)
		}},
	} {
		rep, err := r.Replace(ctx)
		if err != nil {
			t.Fatalf("%s: Replace: %v", tc.name, err)
		}
		if err := tc.run(rep); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		checkHolds(t, "after "+tc.name, st, fullSession(), old, next)
	}

	rep, err := r.Replace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(next); i += 7 {
		if err := rep.ImportPeers(ctx, next[i:min(i+7, len(next))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := rep.Commit(ctx, newSession); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkHolds(t, "after Commit", st, newSession, next, old)
	if err := rep.Commit(ctx, newSession); err == nil {
		t.Error("a second Commit succeeded")
	}
	if err := rep.Abort(ctx); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if got, err := st.PeerByID(ctx, next[0].ID); err != nil || got.LastUpdateOn != startTime-60 {
		t.Errorf("replaced peer = %+v, %v; want its LastUpdateOn kept", got, err)
	}
	// The store goes on working after a replacement.
	if err := st.UpdatePeers(ctx, old[:1]); err != nil {
		t.Fatal(err)
	}
	checkHolds(t, "after a write", st, newSession, append(next[:1:1], old[0]), old[1:])
}

// testCopyReplace: Copy with Replace makes dst an exact copy of src, its own
// extra peers gone.
func (s suite) testCopyReplace(t *testing.T) {
	ctx := context.Background()
	src := s.open(t, NewClock(startTime))
	dst := s.open(t, NewClock(startTime))
	replacer(t, dst)
	if _, ok := src.(storage.PeerScanner); !ok {
		t.Skip("the engine does not implement storage.PeerScanner")
	}
	own, copied := genPeers(20, 900000), genPeers(25, 910000)
	if err := dst.UpdatePeers(ctx, own); err != nil {
		t.Fatal(err)
	}
	if err := src.SetSession(ctx, fullSession()); err != nil {
		t.Fatal(err)
	}
	if err := src.UpdatePeers(ctx, copied); err != nil {
		t.Fatal(err)
	}
	n, err := storage.Copy(ctx, dst, src, storage.CopyOptions{BatchSize: 6, Replace: true})
	if err != nil || n != int64(len(copied)) {
		t.Fatalf("Copy(Replace) = %d, %v; want %d", n, err, len(copied))
	}
	checkHolds(t, "after Copy(Replace)", dst, fullSession(), copied, own)
}

// updateStateStore returns st as a storage.UpdateStateStore, or nil when
// the engine declares it keeps none (Limits.NoUpdateState); it fails the test
// when the engine does both or neither.
func updateStateStore(t *testing.T, st storage.Storage) storage.UpdateStateStore {
	t.Helper()
	u, ok := st.(storage.UpdateStateStore)
	if ok == limitsOf(st).NoUpdateState {
		t.Fatalf("the engine implements storage.UpdateStateStore: %v, declares Limits.NoUpdateState: %v; want exactly one", ok, !ok)
	}
	return u // nil when the engine declares it keeps none: the caller checks
}

// testUpdateState: partial writes need a stored state of the same user; a
// whole state resets the channels; everything reads back in one call;
// invalid values write nothing; Delete removes the state.
func (s suite) testUpdateState(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	u := updateStateStore(t, st)
	if u == nil {
		t.Log("the engine declares Limits.NoUpdateState and implements no update state: nothing more to check")
		return
	}
	check := func(what string, want storage.UpdateState, wantCh map[int64]int) {
		t.Helper()
		got, ch, found, err := u.UpdateState(ctx)
		if err != nil || !found || got != want || !maps.Equal(ch, wantCh) {
			t.Errorf("%s: UpdateState = %+v %v found=%v err=%v; want %+v %v", what, got, ch, found, err, want, wantCh)
		}
	}
	if _, _, found, err := u.UpdateState(ctx); err != nil || found {
		t.Fatalf("new session: UpdateState found=%v err=%v; want none", found, err)
	}
	const user = 6123456789
	for what, err := range map[string]error{
		"SetUpdateFields": u.SetUpdateFields(ctx, storage.UpdateState{UserID: user, Pts: 5}, storage.UpdatePts),
		"SetChannelPts":   u.SetChannelPts(ctx, user, 1500000000, 7),
	} {
		if !errors.Is(err, storage.ErrUpdateStateNotFound) {
			t.Errorf("%s without a state: %v; want ErrUpdateStateNotFound", what, err)
		}
	}
	want := storage.UpdateState{UserID: user, Pts: 100, Qts: 3, Date: 1795000000, Seq: 12}
	if err := u.SetUpdateState(ctx, want); err != nil {
		t.Fatal(err)
	}
	check("after SetUpdateState", want, map[int64]int{})
	want.Pts, want.Date, want.Seq = 101, 1795000100, 13
	if err := u.SetUpdateFields(ctx, storage.UpdateState{UserID: user, Pts: 101, Qts: 999, Date: 1795000100, Seq: 13},
		storage.UpdatePts|storage.UpdateDate|storage.UpdateSeq); err != nil {
		t.Fatal(err)
	}
	if err := u.SetChannelPts(ctx, user, 1500000000, 7); err != nil {
		t.Fatal(err)
	}
	if err := u.SetChannelPts(ctx, user, 1500000001, 2147483647); err != nil {
		t.Fatal(err)
	}
	check("after partial writes", want, map[int64]int{1500000000: 7, 1500000001: 2147483647})
	if err := u.SetUpdateFields(ctx, storage.UpdateState{UserID: 42, Pts: 1}, storage.UpdatePts); !errors.Is(err, storage.ErrUpdateStateNotFound) {
		t.Errorf("SetUpdateFields for another user: %v; want ErrUpdateStateNotFound", err)
	}
	if err := u.SetChannelPts(ctx, 42, 1500000000, 1); !errors.Is(err, storage.ErrUpdateStateNotFound) {
		t.Errorf("SetChannelPts for another user: %v; want ErrUpdateStateNotFound", err)
	}
	for what, err := range map[string]error{
		"negative pts":     u.SetUpdateFields(ctx, storage.UpdateState{UserID: user, Pts: -1}, storage.UpdatePts),
		"no user":          u.SetUpdateState(ctx, storage.UpdateState{Pts: 1}),
		"channel id 0":     u.SetChannelPts(ctx, user, 0, 1),
		"negative channel": u.SetChannelPts(ctx, user, -1001500000000, 1),
		"pts over int32":   u.SetChannelPts(ctx, user, 1500000000, 1<<31),
	} {
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", what, err)
		}
	}
	check("after refused writes", want, map[int64]int{1500000000: 7, 1500000001: 2147483647})
	fresh := storage.UpdateState{UserID: user, Pts: 1, Qts: 1, Date: 1, Seq: 1}
	if err := u.SetUpdateState(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	check("a new state forgets the channels", fresh, map[int64]int{})
	if err := st.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, found, err := u.UpdateState(ctx); err != nil || found {
		t.Errorf("after Delete: UpdateState found=%v err=%v; want none", found, err)
	}
}

// testClientData: values round-trip byte-exact, an empty value removes,
// bad keys and oversized values are refused, Delete removes them.
func (s suite) testClientData(t *testing.T) {
	ctx := context.Background()
	st := s.open(t, NewClock(startTime))
	d, ok := st.(storage.ClientDataStore)
	if ok == limitsOf(st).NoUpdateState {
		t.Fatalf("the engine implements storage.ClientDataStore: %v, declares Limits.NoUpdateState: %v; want exactly one", ok, !ok)
	}
	if !ok {
		t.Log("the engine declares Limits.NoUpdateState and keeps no client data: nothing more to check")
		return
	}
	blob := []byte{0, 1, 2, 255, '|', '\n', 0}
	if err := d.SetClientData(ctx, "gotd", blob); err != nil {
		t.Fatal(err)
	}
	if v, found, err := d.ClientData(ctx, "gotd"); err != nil || !found || string(v) != string(blob) {
		t.Errorf("ClientData = %q %v %v; want %q", v, found, err, blob)
	}
	if _, found, err := d.ClientData(ctx, "other"); err != nil || found {
		t.Errorf("missing key: found=%v err=%v", found, err)
	}
	for what, err := range map[string]error{
		"empty key":   d.SetClientData(ctx, "", blob),
		"long key":    d.SetClientData(ctx, strings.Repeat("k", 65), blob),
		"large value": d.SetClientData(ctx, "big", make([]byte, storage.MaxClientData+1)),
	} {
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", what, err)
		}
	}
	if err := d.SetClientData(ctx, "gotd", nil); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := d.ClientData(ctx, "gotd"); found {
		t.Error("an empty value did not remove the key")
	}
	if err := d.SetClientData(ctx, "gotd", blob); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found, err := d.ClientData(ctx, "gotd"); err != nil || found {
		t.Errorf("after Delete: found=%v err=%v", found, err)
	}
}
