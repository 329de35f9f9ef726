package keyring

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func line(id string, k []byte) string { return id + " " + base64.StdEncoding.EncodeToString(k) }

func TestParse(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey(1), testKey(2)
	tests := []struct {
		name    string
		text    string
		ids     []string
		wantErr string
	}{
		{"one key", line("k1", k1) + "\n", []string{"k1"}, ""},
		{"comments and blanks", "# rotated 2026-11\n\n" + line("new", k2) + "  # current\n" + line("old", k1) + "\n", []string{"new", "old"}, ""},
		{"no keys", "# nothing\n", nil, "no keys"},
		{"bad id", line("a b:c", k1), nil, "fields"},
		{"id with colon", line("a:b", k1), nil, "key id"},
		{"long id", line(strings.Repeat("a", 33), k1), nil, "key id"},
		{"short key", line("k", k1[:31]), nil, "32 bytes"},
		{"url base64", "k " + base64.URLEncoding.EncodeToString(append(bytes.Repeat([]byte{0xfb}, 31), 0xff)), nil, "standard base64"},
		{"duplicate", line("k", k1) + "\n" + line("k", k2), nil, "twice"},
		{"three fields", line("k", k1) + " extra", nil, "fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(strings.NewReader(tc.text))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse = %v; want an error containing %q", err, tc.wantErr)
				}
				for _, k := range [][]byte{k1, k2} {
					if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(k)) {
						t.Errorf("error shows key material: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(r.IDs(), ","); got != strings.Join(tc.ids, ",") {
				t.Errorf("ids = %s; want %v", got, tc.ids)
			}
			if s := r.String(); strings.Contains(s, base64.StdEncoding.EncodeToString(k1)) {
				t.Errorf("String shows a key: %s", s)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	l1, err := Generate("k-2026_11")
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := Generate("k-2026_11")
	if l1 == l2 {
		t.Fatal("two generated keys are equal")
	}
	r, err := Parse(strings.NewReader(l1 + "\n"))
	if err != nil || r.IDs()[0] != "k-2026_11" {
		t.Fatalf("a generated line does not parse: %v", err)
	}
	if _, err := Generate("bad id"); err == nil {
		t.Error("Generate accepted a bad id")
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := bytes.Repeat([]byte("K"), 256)
	old, _ := New([]string{"old"}, [][]byte{testKey(1)})
	rotated, _ := New([]string{"new", "old"}, [][]byte{testKey(2), testKey(1)})
	impostor, _ := New([]string{"old"}, [][]byte{testKey(3)})
	here := Binding{Prefix: "tgsession", Name: "acct", Field: "auth_key"}
	env, err := Seal(ctx, old, here, secret)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Seal(ctx, old, here, secret)
	if env == again {
		t.Error("two seals of the same key are equal: the nonce is not random")
	}
	if strings.Contains(env, string(secret[:16])) {
		t.Error("the envelope contains the plaintext")
	}
	if id, err := KeyID(env); err != nil || id != "old" {
		t.Errorf("KeyID = %q, %v", id, err)
	}
	tests := []struct {
		name string
		p    KeyProvider
		b    Binding
		env  string
		want error
	}{
		{"same key", old, here, env, nil},
		{"rotated keyring still opens old", rotated, here, env, nil},
		{"no keyring", nil, here, env, ErrUnknownKey},
		{"keyring without the id", func() KeyProvider { r, _ := New([]string{"new"}, [][]byte{testKey(2)}); return r }(), here, env, ErrUnknownKey},
		{"another key under the id", impostor, here, env, ErrDecrypt},
		{"another session", old, Binding{Prefix: "tgsession", Name: "other", Field: "auth_key"}, env, ErrDecrypt},
		{"another prefix", old, Binding{Prefix: "x", Name: "acct", Field: "auth_key"}, env, ErrDecrypt},
		{"another field", old, Binding{Prefix: "tgsession", Name: "acct", Field: "other"}, env, ErrDecrypt},
		{"ambiguous split of the binding", old, Binding{Prefix: "tgsessionacct", Name: "", Field: "auth_key"}, env, ErrDecrypt},
		{"one byte flipped", old, here, env[:len(env)-1] + string(env[len(env)-1]^1), ErrDecrypt},
		{"truncated", old, here, env[:20], ErrMalformed},
		{"raw", old, here, "raw:" + string(secret), ErrMalformed},
		{"no id", old, here, Marker + ":" + env[9:], ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Open(ctx, tc.p, tc.b, tc.env)
			if tc.want == nil {
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("Open = %v; want the key back", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Open = %d bytes, %v; want %v", len(got), err, tc.want)
			}
			if strings.Contains(err.Error(), string(secret[:8])) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(testKey(1))) {
				t.Errorf("the error shows key material: %v", err)
			}
		})
	}
}

// FuzzOpen feeds arbitrary envelopes to Open: it must never panic, and must
// return the plaintext only for the envelope sealed here.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	r, _ := New([]string{"k1", "k2"}, [][]byte{testKey(1), testKey(2)})
	b := Binding{Prefix: "p", Name: "n", Field: "auth_key"}
	env, _ := Seal(ctx, r, b, bytes.Repeat([]byte{7}, 256))
	for _, s := range []string{env, "", Marker, Marker + "k1:", Marker + "k2:" + strings.Repeat("x", 40), "raw:x", env[:30], Marker + "k3:" + env[8:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := Open(ctx, r, b, s)
		if err == nil && s != env && !bytes.Equal(pt, bytes.Repeat([]byte{7}, 256)) {
			t.Fatalf("a forged envelope opened: %q", s)
		}
		if err != nil && pt != nil {
			t.Fatal("plaintext returned with an error")
		}
		_, _ = KeyID(s)
	})
}

// FuzzParse: a keyring file of any content never panics.
func FuzzParse(f *testing.F) {
	f.Add(line("k1", testKey(1)) + "\n# c\n" + line("k2", testKey(2)))
	f.Add("k1 ====\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(strings.NewReader(s))
		if err == nil && len(r.IDs()) == 0 {
			t.Fatal("a keyring without keys parsed")
		}
	})
}
