package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tgsession/redisstore/sessionstring"
)

// The vectors are Hydrogram's utils.get_peer_type / get_channel_id results
// (peer_id_helpers in the fixture).
func TestKindOfID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   int64
		want IDKind
	}{
		{1, IDUser}, {777000, IDUser}, {2147483647, IDUser}, {4294967301, IDUser}, {999999999999, IDUser},
		{1000000000000, ""}, {0, ""},
		{-1, IDChat}, {-123456789, IDChat}, {-2147483647, IDChat}, {-999999999999, IDChat},
		{-1000000000000, ""},
		{-1000000000001, IDChannel}, {-1001234567890, IDChannel}, {-1002147483647, IDChannel},
		{-1002147483648, IDChannel}, {-1007852516352, IDChannel},
		{-1007852516353, ""},
	}
	for _, tc := range tests {
		got, err := KindOfID(tc.id)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("Peer id invalid: %d", tc.id)) {
				t.Errorf("KindOfID(%d) = %q, %v; want Hydrogram's 'Peer id invalid'", tc.id, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("KindOfID(%d) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
}

func TestChannelID(t *testing.T) {
	t.Parallel()
	for x, want := range map[int64]int64{
		1: -1000000000001, 1234567890: -1001234567890, 2147483648: -1002147483648, 7852516352: -1007852516352,
		-1001234567890: 1234567890, -1000000000001: 1, -1007852516352: 7852516352,
	} {
		if got := ChannelID(x); got != want {
			t.Errorf("ChannelID(%d) = %d; want %d", x, got, want)
		}
	}
}

func TestNewInputPeer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   int64
		hash int64
		typ  PeerType
		want InputPeer
		err  string
	}{
		{1000001, 5, PeerUser, InputPeer{Kind: InputPeerUser, ID: 1000001, AccessHash: Some[int64](5)}, ""},
		{93372553, 6, PeerBot, InputPeer{Kind: InputPeerUser, ID: 93372553, AccessHash: Some[int64](6)}, ""},
		{-123456789, 0, PeerGroup, InputPeer{Kind: InputPeerChat, ID: 123456789}, ""},
		{-1001234567890, 7, PeerChannel, InputPeer{Kind: InputPeerChannel, ID: 1234567890, AccessHash: Some[int64](7)}, ""},
		{-1001111111111, 8, PeerSupergroup, InputPeer{Kind: InputPeerChannel, ID: 1111111111, AccessHash: Some[int64](8)}, ""},
		{1, 1, "chat", InputPeer{}, "Invalid peer type: chat"},
		{1, 1, "private", InputPeer{}, "Invalid peer type: private"},
	}
	for _, tc := range tests {
		got, err := NewInputPeer(tc.id, Some(tc.hash), tc.typ)
		if tc.err != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NewInputPeer(%d, %s) err = %v; want %q", tc.id, tc.typ, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NewInputPeer(%d, %s) = %v, %v; want %v", tc.id, tc.typ, got, err, tc.want)
		}
	}
}

func TestAuthKeyFormatting(t *testing.T) {
	t.Parallel()
	k := make(AuthKey, AuthKeySize)
	for i := range k {
		k[i] = 0xAB
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		out := fmt.Sprintf(verb, k) + fmt.Sprintf(verb, Session{AuthKey: k}) + fmt.Sprintf(verb, []any{k})
		if strings.Contains(strings.ToLower(out), "abab") || strings.Contains(out, "171 171") {
			t.Errorf("%s reveals the key: %s", verb, out)
		}
	}
	if id := k.ID(); len(id) != 16 {
		t.Errorf("ID() = %q", id)
	}
	if AuthKey(nil).String() != "AuthKey(NULL)" {
		t.Errorf("nil key String = %q", AuthKey(nil).String())
	}
}

func TestNormalized(t *testing.T) {
	t.Parallel()
	p, err := Peer{ID: 5, Type: PeerUser, Usernames: []string{" @Foo ", "foo", "BAR_1"}, PhoneNumber: "+44 (20) 7946-0000"}.Normalized()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Usernames, ",") != "foo,bar_1" || p.PhoneNumber != "442079460000" {
		t.Errorf("Normalized = %+v", p)
	}
}

func TestNormalizePeersLastWins(t *testing.T) {
	t.Parallel()
	out, err := NormalizePeers([]Peer{
		{ID: 1, Type: PeerUser, AccessHash: Some[int64](1)},
		{ID: 2, Type: PeerUser},
		{ID: 1, Type: PeerUser, AccessHash: Some[int64](3)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].ID != 2 || out[1].AccessHash != Some[int64](3) {
		t.Errorf("NormalizePeers = %+v", out)
	}
}

func TestLookupErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *LookupError
		text string
		is   error
	}{
		{NotFoundByID(-1000000000000), "ID not found: -1000000000000", ErrPeerNotFound},
		{NotFoundByUsername("nobody"), "Username not found: nobody", ErrPeerNotFound},
		{ExpiredUsername("stale_user"), "Username expired: stale_user", ErrUsernameExpired},
		{NotFoundByPhoneNumber("+1"), "Phone number not found: +1", ErrPeerNotFound},
	}
	for _, tc := range tests {
		if tc.err.Error() != tc.text || !errors.Is(tc.err, tc.is) {
			t.Errorf("%v: text/Is mismatch", tc.err)
		}
	}
	if errors.Is(ExpiredUsername("x"), ErrPeerNotFound) {
		t.Error("an expired username must not be ErrPeerNotFound")
	}
}

func TestExportSessionStringMissing(t *testing.T) {
	t.Parallel()
	_, err := ExportSessionString(NewSession())
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v", err)
	}
	for _, f := range []string{"api_id", "auth_key", "user_id"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
}

func TestSessionFromString(t *testing.T) {
	t.Parallel()
	key := make([]byte, AuthKeySize)
	tests := []struct {
		name string
		in   sessionstring.Session
		want Session
		err  error
	}{
		{"current", sessionstring.Session{DCID: 2, APIID: 4294967295, AuthKey: key, UserID: 9223372036854775807,
			Carried: sessionstring.HasAPIID | sessionstring.HasTestMode | sessionstring.HasUserID | sessionstring.HasIsBot},
			Session{DCID: Some(2), APIID: Some[int64](4294967295), TestMode: Some(false), AuthKey: key,
				UserID: Some[int64](9223372036854775807), IsBot: Some(false)}, nil},
		{"telethon", sessionstring.Session{DCID: 5, AuthKey: key, Carried: sessionstring.HasAddr},
			Session{DCID: Some(5), AuthKey: key}, nil},
		{"user id beyond int64", sessionstring.Session{DCID: 1, AuthKey: key, UserID: 1 << 63, Carried: sessionstring.HasUserID},
			Session{}, ErrInvalid},
	}
	for _, tc := range tests {
		got, err := SessionFromString(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v; want %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && got.String() != tc.want.String() {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
	}
}
