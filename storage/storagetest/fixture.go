package storagetest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tgsession/redisstore/storage"
)

// hydrogramFixture is ../shared/vectors/hydrogram_session_contents.json: a
// session written by Hydrogram's own SQLiteStorage and the result of every
// lookup at reference_now.
//
//go:embed testdata/hydrogram_session_contents.json
var hydrogramFixture []byte

type fixture struct {
	ReferenceNow int64 `json:"reference_now"`
	Session      struct {
		DCID       int    `json:"dc_id"`
		APIID      int64  `json:"api_id"`
		TestMode   bool   `json:"test_mode"`
		AuthKeyHex string `json:"auth_key_hex"`
		UserID     int64  `json:"user_id"`
		IsBot      bool   `json:"is_bot"`
		Date       int64  `json:"date"`
	} `json:"session"`
	ExportSessionString string `json:"export_session_string"`
	PeersWritten        []struct {
		ID           int64        `json:"id"`
		AccessHash   *json.Number `json:"access_hash"`
		Type         string       `json:"type"`
		Username     *string      `json:"username"`
		PhoneNumber  *string      `json:"phone_number"`
		LastUpdateOn *int64       `json:"last_update_on"`
	} `json:"peers_written"`
	Expected struct {
		ByID          []lookupCase `json:"by_id"`
		ByUsername    []lookupCase `json:"by_username"`
		ByPhoneNumber []lookupCase `json:"by_phone_number"`
		TTLMatrix     []struct {
			Username string          `json:"username"`
			Now      int64           `json:"now"`
			Result   *expectedResult `json:"result"`
			Message  string          `json:"message"`
		} `json:"username_ttl_matrix"`
	} `json:"expected_lookups_at_reference_now"`
}

type lookupCase struct {
	Args    []json.RawMessage `json:"args"`
	Result  *expectedResult   `json:"result"`
	Raises  string            `json:"raises"`
	Message string            `json:"message"`
}

type expectedResult struct {
	Kind       string       `json:"_"`
	UserID     *int64       `json:"user_id"`
	ChatID     *int64       `json:"chat_id"`
	ChannelID  *int64       `json:"channel_id"`
	AccessHash *json.Number `json:"access_hash"`
}

func loadFixture() (*fixture, error) {
	var f fixture
	dec := json.NewDecoder(bytes.NewReader(hydrogramFixture))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("storagetest: fixture: %w", err)
	}
	return &f, nil
}

// mustFixture loads the Hydrogram fixture and its session fields.
func mustFixture(t *testing.T) (*fixture, storage.Session) {
	t.Helper()
	f, err := loadFixture()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := f.session()
	if err != nil {
		t.Fatal(err)
	}
	return f, sess
}

func (f *fixture) session() (storage.Session, error) {
	key, err := hex.DecodeString(f.Session.AuthKeyHex)
	if err != nil {
		return storage.Session{}, err
	}
	return storage.Session{
		DCID:     storage.Some(f.Session.DCID),
		APIID:    storage.Some(f.Session.APIID),
		TestMode: storage.Some(f.Session.TestMode),
		AuthKey:  key,
		Date:     f.Session.Date,
		UserID:   storage.Some(f.Session.UserID),
		IsBot:    storage.Some(f.Session.IsBot),
	}, nil
}

func parseHash(n *json.Number) (storage.Null[int64], error) {
	if n == nil {
		return storage.Null[int64]{}, nil
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	return storage.Some(v), err
}

// inputPeer converts an expected Hydrogram result to our InputPeer.
func (r *expectedResult) inputPeer() (storage.InputPeer, error) {
	h, err := parseHash(r.AccessHash)
	if err != nil {
		return storage.InputPeer{}, err
	}
	switch {
	case r.Kind == "InputPeerUser" && r.UserID != nil:
		return storage.InputPeer{Kind: storage.InputPeerUser, ID: *r.UserID, AccessHash: h}, nil
	case r.Kind == "InputPeerChat" && r.ChatID != nil:
		return storage.InputPeer{Kind: storage.InputPeerChat, ID: *r.ChatID}, nil
	case r.Kind == "InputPeerChannel" && r.ChannelID != nil:
		return storage.InputPeer{Kind: storage.InputPeerChannel, ID: *r.ChannelID, AccessHash: h}, nil
	}
	return storage.InputPeer{}, fmt.Errorf("storagetest: fixture result %+v not understood", *r)
}

// testHydrogramFixture loads the fixture's 24 peers through UpdatePeers (the
// four planted timestamps through the clock) and reproduces every expected
// lookup, hit, miss and expiry, with Hydrogram's messages.
//
// One documented difference: our lookups normalize usernames and phone
// numbers (storage.NormalizeUsername, storage.NormalizePhoneNumber);
// Hydrogram's Client normalizes before it asks its storage. The fixture's three
// storage-level misses that only exist because of that ("Alice", "@alice",
// "+15551230001") are checked to resolve exactly like their normal forms.
func (s suite) testHydrogramFixture(t *testing.T) {
	f, err := loadFixture()
	if err != nil {
		t.Fatal(err)
	}
	clock := NewClock(f.ReferenceNow)
	st := s.open(t, clock)
	LoadHydrogramFixture(t, st, clock)
	CheckHydrogramFixture(t, st, clock)
}

// HydrogramReferenceNow is the fixture's reference time: every expected
// username lookup of the Hydrogram fixture holds at this unix time.
func HydrogramReferenceNow() int64 {
	f, err := loadFixture()
	if err != nil {
		return 0
	}
	return f.ReferenceNow
}

// LoadHydrogramFixture writes the Hydrogram fixture's session and its 24
// peers into the open store st the way Hydrogram's builder did: the normal
// peers in two UpdatePeers calls at the reference time, the four planted
// ones one by one at their own times (through clock, which st must use).
func LoadHydrogramFixture(t *testing.T, st storage.Storage, clock *Clock) {
	t.Helper()
	ctx := context.Background()
	f, sess := mustFixture(t)
	clock.Set(f.ReferenceNow)
	if err := st.SetSession(ctx, sess); err != nil {
		t.Fatalf("SetSession: %v", err)
	}

	var normal []storage.Peer
	for _, w := range f.PeersWritten {
		h, err := parseHash(w.AccessHash)
		if err != nil {
			t.Fatal(err)
		}
		p := storage.Peer{ID: w.ID, AccessHash: h, Type: storage.PeerType(w.Type)}
		if w.Username != nil {
			p.Usernames = []string{*w.Username}
		}
		if w.PhoneNumber != nil {
			p.PhoneNumber = *w.PhoneNumber
		}
		if w.LastUpdateOn == nil {
			normal = append(normal, p)
			continue
		}
		// A planted timestamp: write it at that time, after the normal ones
		// of the same call order as Hydrogram's fixture builder.
		if len(normal) > 0 {
			if err := writeInTwo(ctx, st, normal); err != nil {
				t.Fatal(err)
			}
			normal = nil
		}
		clock.Set(*w.LastUpdateOn)
		if err := st.UpdatePeers(ctx, []storage.Peer{p}); err != nil {
			t.Fatalf("UpdatePeers(%d): %v", p.ID, err)
		}
		clock.Set(f.ReferenceNow)
	}
	if len(normal) > 0 {
		if err := writeInTwo(ctx, st, normal); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(f.ReferenceNow)
}

// CheckHydrogramFixture checks a store that holds the Hydrogram fixture
// (written by LoadHydrogramFixture, or Hydrogram's own file): the session
// fields, the exported session string, and every expected lookup, hit, miss
// and expiry, with Hydrogram's texts; clock must be the store's clock.
func CheckHydrogramFixture(t *testing.T, st storage.Storage, clock *Clock) {
	t.Helper()
	ctx := context.Background()
	f, sess := mustFixture(t)
	clock.Set(f.ReferenceNow)
	got, err := st.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sessionsEqual(got, sess) {
		t.Errorf("Session() = %v; want the fixture's %v", got, sess)
	}
	if str, err := st.ExportSessionString(ctx); err != nil || str != f.ExportSessionString {
		t.Errorf("ExportSessionString = %q, %v; want the fixture's %q", str, err, f.ExportSessionString)
	}

	var checked int
	check := func(kind string, cases []lookupCase, lookup func(arg json.RawMessage) (string, storage.Peer, error)) {
		byArg := map[string]lookupCase{}
		for _, c := range cases {
			byArg[string(c.Args[0])] = c
		}
		for _, c := range cases {
			norm, p, err := lookup(c.Args[0])
			want := c
			if n, ok := byArg[norm]; ok && norm != string(c.Args[0]) && c.Result == nil {
				t.Logf("%s(%s): Hydrogram's storage misses (%s); ours normalizes to %s (documented)", kind, c.Args[0], c.Message, norm)
				want = n
			}
			checked++
			compareLookup(t, fmt.Sprintf("%s(%s)", kind, c.Args[0]), want, p, err)
		}
	}
	check("PeerByID", f.Expected.ByID, func(arg json.RawMessage) (string, storage.Peer, error) {
		var id int64
		if err := json.Unmarshal(arg, &id); err != nil {
			t.Fatal(err)
		}
		p, err := st.PeerByID(ctx, id)
		return string(arg), p, err
	})
	check("PeerByUsername", f.Expected.ByUsername, func(arg json.RawMessage) (string, storage.Peer, error) {
		var u string
		if err := json.Unmarshal(arg, &u); err != nil {
			t.Fatal(err)
		}
		n, _ := json.Marshal(storage.NormalizeUsername(u))
		p, err := st.PeerByUsername(ctx, u)
		return string(n), p, err
	})
	check("PeerByPhoneNumber", f.Expected.ByPhoneNumber, func(arg json.RawMessage) (string, storage.Peer, error) {
		var ph string
		if err := json.Unmarshal(arg, &ph); err != nil {
			t.Fatal(err)
		}
		n, _ := json.Marshal(storage.NormalizePhoneNumber(ph))
		p, err := st.PeerByPhoneNumber(ctx, ph)
		return string(n), p, err
	})
	for _, c := range f.Expected.TTLMatrix {
		clock.Set(c.Now)
		p, err := st.PeerByUsername(ctx, c.Username)
		checked++
		compareLookup(t, fmt.Sprintf("PeerByUsername(%s) at %d", c.Username, c.Now),
			lookupCase{Result: c.Result, Message: c.Message}, p, err)
	}
	clock.Set(f.ReferenceNow)
	if want := len(f.Expected.ByID) + len(f.Expected.ByUsername) + len(f.Expected.ByPhoneNumber) + len(f.Expected.TTLMatrix); checked != want || want < 70 {
		t.Errorf("checked %d lookups; the fixture has %d", checked, want)
	}
}

func writeInTwo(ctx context.Context, st storage.Storage, peers []storage.Peer) error {
	cut := min(10, len(peers))
	if err := st.UpdatePeers(ctx, peers[:cut]); err != nil {
		return err
	}
	if cut < len(peers) {
		return st.UpdatePeers(ctx, peers[cut:])
	}
	return nil
}

func compareLookup(t *testing.T, what string, want lookupCase, got storage.Peer, err error) {
	t.Helper()
	if want.Result == nil {
		var le *storage.LookupError
		switch {
		case err == nil:
			t.Errorf("%s = %+v; want the miss %q", what, got, want.Message)
		case !errors.As(err, &le):
			t.Errorf("%s: err = %v; want a *storage.LookupError", what, err)
		case le.Error() != want.Message:
			t.Errorf("%s: miss text %q; want Hydrogram's %q", what, le.Error(), want.Message)
		case strings.HasPrefix(want.Message, "Username expired") != errors.Is(err, storage.ErrUsernameExpired):
			t.Errorf("%s: errors.Is(ErrUsernameExpired) disagrees with %q", what, want.Message)
		}
		return
	}
	wantIP, perr := want.Result.inputPeer()
	if perr != nil {
		t.Fatal(perr)
	}
	if err != nil {
		t.Errorf("%s: %v; want %v", what, err, wantIP)
		return
	}
	if ip := got.InputPeer(); ip != wantIP {
		t.Errorf("%s = %v; want %v", what, ip, wantIP)
	}
}
