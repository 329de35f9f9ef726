package sessionstring

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

type vector struct {
	Name          string  `json:"name"`
	Format        string  `json:"format"`
	DCID          uint8   `json:"dc_id"`
	APIID         *uint32 `json:"api_id"`
	TestMode      bool    `json:"test_mode"`
	AuthKeyHex    string  `json:"auth_key_hex"`
	UserID        uint64  `json:"user_id"`
	IsBot         bool    `json:"is_bot"`
	PackedHex     string  `json:"packed_hex"`
	SessionString string  `json:"session_string"`
}

// loadVectors reads testdata/session_strings.json (a copy of
// ../shared/vectors/session_strings.json: 8 strings exported by Hydrogram and
// 6 built with Pyrogram 1.x's struct layouts).
func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/session_strings.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 14 {
		t.Fatalf("%d vectors; want 14", len(vs))
	}
	return vs
}

func (v vector) want(t testing.TB) Session {
	key, err := hex.DecodeString(v.AuthKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	s := Session{DCID: v.DCID, TestMode: v.TestMode, AuthKey: key, UserID: v.UserID, IsBot: v.IsBot,
		Carried: HasTestMode | HasUserID | HasIsBot}
	switch v.Format {
	case "current":
		s.From = FormatCurrent
	case "old_32bit_user_id":
		s.From = FormatPyrogram32
	case "old_64bit_user_id":
		s.From = FormatPyrogram64
	default:
		t.Fatalf("%s: unknown format %q", v.Name, v.Format)
	}
	if v.APIID != nil {
		s.APIID = *v.APIID
		s.Carried |= HasAPIID
	}
	return s
}

func equal(a, b Session) bool {
	return a.From == b.From && a.DCID == b.DCID && a.APIID == b.APIID && a.TestMode == b.TestMode &&
		bytes.Equal(a.AuthKey, b.AuthKey) && a.UserID == b.UserID && a.IsBot == b.IsBot &&
		a.Addr == b.Addr && a.Carried == b.Carried
}

// TestVectors: every vector decodes to exactly its fields (legacy ones with
// api_id absent), and re-encodes byte for byte with the encoder of its format.
func TestVectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			want := v.want(t)
			got, err := Decode(v.SessionString)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !equal(got, want) {
				t.Fatalf("Decode = %v; want %v", got, want)
			}
			if want.From != FormatCurrent && got.Has(HasAPIID) {
				t.Errorf("legacy string decoded with an api_id")
			}
			packed, _ := hex.DecodeString(v.PackedHex)
			if enc := base64.RawURLEncoding.EncodeToString(packed); enc != v.SessionString {
				t.Errorf("vector's packed bytes do not give its string")
			}
			var again string
			if want.From == FormatCurrent {
				again, err = Encode(got)
			} else {
				again, err = EncodePyrogramLegacy(got)
			}
			if err != nil || again != v.SessionString {
				t.Errorf("re-encode = %q, %v;\nwant %q", again, err, v.SessionString)
			}
		})
	}
}

func testKey() []byte {
	k := make([]byte, AuthKeyLen)
	for i := range k {
		k[i] = byte(i*31 + 7)
	}
	return k
}

func TestTelethonRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		wantLen int
	}{
		{"149.154.167.51:443", TelethonIPv4Len},
		{"[2001:67c:4e8:f002::a]:443", TelethonIPv6Len},
		{"[::ffff:149.154.175.53]:80", TelethonIPv4Len}, // IPv4-mapped: Telethon stores 4 bytes
		{"127.0.0.1:65535", TelethonIPv4Len},
	}
	for _, tc := range tests {
		in := Session{DCID: 2, AuthKey: testKey(), Addr: netip.MustParseAddrPort(tc.addr)}
		str, err := EncodeTelethon(in)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if len(str) != tc.wantLen || str[0] != '1' {
			t.Errorf("%s: len %d, first %q; want %d and '1'", tc.addr, len(str), str[0], tc.wantLen)
		}
		// The layout, rebuilt by hand from the format description.
		ip := in.Addr.Addr().Unmap().AsSlice()
		raw := append(append([]byte{2}, ip...), byte(in.Addr.Port()>>8), byte(in.Addr.Port()))
		raw = append(raw, in.AuthKey...)
		if want := "1" + base64.URLEncoding.EncodeToString(raw); str != want {
			t.Errorf("%s: EncodeTelethon = %q; want %q", tc.addr, str, want)
		}
		got, err := Decode(str)
		if err != nil {
			t.Fatalf("%s: Decode: %v", tc.addr, err)
		}
		want := Session{From: FormatTelethon, DCID: 2, AuthKey: in.AuthKey, Carried: HasAddr,
			Addr: netip.AddrPortFrom(in.Addr.Addr().Unmap(), in.Addr.Port())}
		if !equal(got, want) {
			t.Errorf("%s: Decode = %v; want %v", tc.addr, got, want)
		}
		for _, f := range []Field{HasAPIID, HasUserID, HasIsBot, HasTestMode} {
			if got.Has(f) {
				t.Errorf("%s: Telethon string claims field %d", tc.addr, f)
			}
		}
	}
}

// TestLenient: what Python's decoders accept and users paste.
func TestLenient(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)[0]
	tele, err := EncodeTelethon(Session{DCID: 4, AuthKey: testKey(), Addr: netip.MustParseAddrPort("[2001:b28:f23f:f005::a]:443")})
	if err != nil {
		t.Fatal(err)
	}
	std := strings.NewReplacer("-", "+", "_", "/").Replace(v.SessionString)
	wrap := func(s string, n int) string {
		var b strings.Builder
		for i := 0; i < len(s); i += n {
			b.WriteString(s[i:min(i+n, len(s))])
			b.WriteString("\r\n")
		}
		return b.String()
	}
	tests := []struct {
		name, in, canonical string
	}{
		{"as is", v.SessionString, v.SessionString},
		{"surrounding whitespace", "  \n\t" + v.SessionString + "\n ", v.SessionString},
		{"wrapped at 64 with CRLF", wrap(v.SessionString, 64), v.SessionString},
		{"spaces inside", v.SessionString[:100] + " " + v.SessionString[100:200] + "\t" + v.SessionString[200:], v.SessionString},
		{"standard alphabet", std, v.SessionString},
		{"padding added", v.SessionString + "==", v.SessionString},
		{"telethon as is", tele, tele},
		{"telethon without padding", strings.TrimRight(tele, "="), tele},
		{"telethon wrapped", wrap(tele, 76), tele},
		{"telethon standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(tele), tele},
	}
	for _, tc := range tests {
		got, err := Decode(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want, _ := Decode(tc.canonical)
		if !equal(got, want) {
			t.Errorf("%s: Decode = %v; want %v", tc.name, got, want)
		}
	}
}

// TestStrict: everything else is an error that says what is wrong, never a panic.
func TestStrict(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)[0].SessionString
	tele, _ := EncodeTelethon(Session{DCID: 2, AuthKey: testKey(), Addr: netip.MustParseAddrPort("1.2.3.4:443")})
	zeroDC := "AA" + v[2:] // dc_id byte 0 (first 6 bits + next 2 bits)
	tests := []struct {
		name, in, wantInErr string
	}{
		{"empty", "", "empty"},
		{"only whitespace", " \n ", "empty"},
		{"one char short", v[:361], "accepted: 362"},
		{"one char long", v + "A", "accepted: 362"},
		{"bad character", v[:10] + "*" + v[11:], `"*" at position 10`},
		{"unicode", v[:10] + "é" + v[12:], "not base64"},
		{"padding inside", v[:10] + "=" + v[11:], "position 10"},
		{"three padding chars", v + "===", "at most 2"},
		{"dc_id 0", zeroDC, "dc_id is 0"},
		{"telethon version 2", "2" + tele[1:], "version \"2\" is not supported"},
		{"telethon version x", "x" + tele[1:], "only '1'"},
		{"telethon truncated", tele[:200], "accepted"},
	}
	for _, tc := range tests {
		_, err := Decode(tc.in)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v; want ErrInvalid", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.wantInErr)
		}
		if len(tc.in) > 40 && strings.Contains(err.Error(), tc.in[20:40]) {
			t.Errorf("%s: error repeats the string: %q", tc.name, err)
		}
	}
}

func TestEncodeRefusesIncomplete(t *testing.T) {
	t.Parallel()
	ok := Session{DCID: 2, APIID: 1, AuthKey: testKey(), UserID: 1, Addr: netip.MustParseAddrPort("1.2.3.4:443")}
	tests := []struct {
		name   string
		mod    func(*Session)
		encode func(Session) (string, error)
	}{
		{"dc_id 0", func(s *Session) { s.DCID = 0 }, Encode},
		{"api_id 0", func(s *Session) { s.APIID = 0 }, Encode},
		{"user_id 0", func(s *Session) { s.UserID = 0 }, Encode},
		{"no auth key", func(s *Session) { s.AuthKey = nil }, Encode},
		{"short auth key", func(s *Session) { s.AuthKey = s.AuthKey[:255] }, Encode},
		{"legacy without user_id", func(s *Session) { s.UserID = 0 }, EncodePyrogramLegacy},
		{"legacy without key", func(s *Session) { s.AuthKey = nil }, EncodePyrogramLegacy},
		{"telethon without address", func(s *Session) { s.Addr = netip.AddrPort{} }, EncodeTelethon},
		{"telethon port 0", func(s *Session) { s.Addr = netip.AddrPortFrom(s.Addr.Addr(), 0) }, EncodeTelethon},
		{"telethon without key", func(s *Session) { s.AuthKey = nil }, EncodeTelethon},
	}
	for _, tc := range tests {
		s := ok
		s.AuthKey = testKey()
		tc.mod(&s)
		if str, err := tc.encode(s); !errors.Is(err, ErrIncomplete) || str != "" {
			t.Errorf("%s: %q, %v; want ErrIncomplete", tc.name, str, err)
		}
	}
}

func TestFormattingHidesKey(t *testing.T) {
	t.Parallel()
	s, err := Decode(loadVectors(t)[0].SessionString) // key is bytes(range(256))
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(strings.ToLower(out), "0102030405") || strings.Contains(out, "1 2 3 4 5") {
			t.Errorf("%s reveals the key: %s", verb, out)
		}
	}
	if !strings.Contains(s.String(), "APIID:12345") || !strings.Contains(s.String(), "AuthKey:(256 bytes)") {
		t.Errorf("String = %s", s)
	}
	legacy, _ := Decode(loadVectors(t)[8].SessionString)
	if !strings.Contains(legacy.String(), "APIID:absent") {
		t.Errorf("legacy String = %s; want api_id shown as absent", legacy)
	}
}

// FuzzDecode: Decode never panics; whatever it accepts re-encodes in the same
// format to a string that decodes to the same session.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.SessionString)
	}
	for _, addr := range []string{"149.154.167.51:443", "[2001:67c:4e8:f002::a]:443"} {
		s, _ := EncodeTelethon(Session{DCID: 2, AuthKey: testKey(), Addr: netip.MustParseAddrPort(addr)})
		f.Add(s)
	}
	f.Add("")
	f.Add("1")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		var again string
		switch s.From {
		case FormatCurrent:
			if s.APIID == 0 || s.UserID == 0 {
				return // decodable but incomplete: Encode refuses, by design
			}
			again, err = Encode(s)
		case FormatPyrogram32, FormatPyrogram64:
			if s.UserID == 0 {
				return
			}
			again, err = EncodePyrogramLegacy(s)
		case FormatTelethon:
			if s.Addr.Port() == 0 {
				return
			}
			again, err = EncodeTelethon(s)
		default:
			t.Fatalf("unknown format %v", s.From)
		}
		if err != nil {
			t.Fatalf("re-encode of %v: %v", s, err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		// The legacy encoder picks its layout from the user id, so the
		// format may change between the two legacy layouts; nothing else may.
		if s.From == FormatPyrogram32 || s.From == FormatPyrogram64 {
			back.From = s.From
		}
		if s.From == FormatTelethon {
			s.Addr = netip.AddrPortFrom(s.Addr.Addr().Unmap(), s.Addr.Port())
		}
		if !equal(s, back) {
			t.Fatalf("round trip changed %v into %v", s, back)
		}
	})
}

// FuzzRoundTrip: decode(encode(x)) == x for the current format.
func FuzzRoundTrip(f *testing.F) {
	for _, v := range loadVectors(f) {
		if v.APIID != nil {
			key, _ := hex.DecodeString(v.AuthKeyHex)
			f.Add(v.DCID, *v.APIID, v.TestMode, key, v.UserID, v.IsBot)
		}
	}
	f.Fuzz(func(t *testing.T, dc uint8, api uint32, testMode bool, key []byte, uid uint64, bot bool) {
		in := Session{DCID: dc, APIID: api, TestMode: testMode, AuthKey: key, UserID: uid, IsBot: bot}
		str, err := Encode(in)
		if dc == 0 || api == 0 || uid == 0 || len(key) != AuthKeyLen {
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Encode(incomplete) err = %v; want ErrIncomplete", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(str) != EncodedLen {
			t.Fatalf("len %d", len(str))
		}
		out, err := Decode(str)
		if err != nil {
			t.Fatal(err)
		}
		in.From, in.Carried = FormatCurrent, HasAPIID|HasTestMode|HasUserID|HasIsBot
		if !equal(in, out) {
			t.Fatalf("decode(encode(%v)) = %v", in, out)
		}
	})
}
