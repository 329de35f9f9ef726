package sessionstring

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type vector struct {
	Name          string `json:"name"`
	Format        string `json:"format"`
	DCID          uint8  `json:"dc_id"`
	APIID         uint32 `json:"api_id"`
	TestMode      bool   `json:"test_mode"`
	AuthKeyHex    string `json:"auth_key_hex"`
	UserID        uint64 `json:"user_id"`
	IsBot         bool   `json:"is_bot"`
	PackedHex     string `json:"packed_hex"`
	SessionString string `json:"session_string"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/session_strings.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestEncodeVectors: every current-format vector (made by Hydrogram's own
// export) encodes to exactly its string.
func TestEncodeVectors(t *testing.T) {
	t.Parallel()
	n := 0
	for _, v := range loadVectors(t) {
		if v.Format != "current" {
			continue
		}
		n++
		key, err := hex.DecodeString(v.AuthKeyHex)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Encode(Fields{DCID: v.DCID, APIID: v.APIID, TestMode: v.TestMode, AuthKey: key, UserID: v.UserID, IsBot: v.IsBot})
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		if got != v.SessionString {
			t.Errorf("%s:\n got %s\nwant %s", v.Name, got, v.SessionString)
		}
		if len(got) != EncodedLen {
			t.Errorf("%s: length %d", v.Name, len(got))
		}
	}
	if n != 8 {
		t.Errorf("checked %d current-format vectors; the fixture has 8", n)
	}
}

func TestEncodeRefusesIncomplete(t *testing.T) {
	t.Parallel()
	key := make([]byte, 256)
	ok := Fields{DCID: 2, APIID: 1, AuthKey: key, UserID: 1}
	tests := []struct {
		name string
		mod  func(*Fields)
	}{
		{"dc_id 0", func(f *Fields) { f.DCID = 0 }},
		{"api_id 0", func(f *Fields) { f.APIID = 0 }},
		{"user_id 0", func(f *Fields) { f.UserID = 0 }},
		{"no auth key", func(f *Fields) { f.AuthKey = nil }},
		{"short auth key", func(f *Fields) { f.AuthKey = key[:255] }},
	}
	for _, tc := range tests {
		f := ok
		tc.mod(&f)
		if _, err := Encode(f); !errors.Is(err, ErrIncomplete) {
			t.Errorf("%s: err = %v; want ErrIncomplete", tc.name, err)
		}
	}
	if s := ok.String(); strings.Contains(s, "0000000000") {
		t.Errorf("String reveals key bytes: %s", s)
	}
}
