package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// repr is Redis's sdscatrepr, the escaping MONITOR uses for arguments.
func repr(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == '\\' || c == '"':
			s.WriteString("\\" + string(c))
		case c == '\n':
			s.WriteString("\\n")
		case c == '\r':
			s.WriteString("\\r")
		case c == '\t':
			s.WriteString("\\t")
		case c == '\a':
			s.WriteString("\\a")
		case c == '\b':
			s.WriteString("\\b")
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, "\\x%02x", c)
		}
	}
	return s.String()
}

// keyForms are the ways an auth key could show up: two 16-byte runs of its
// bytes, raw and as MONITOR escapes them, hex, and base64 (both alphabets).
func keyForms(k []byte) [][]byte {
	var out [][]byte
	for _, run := range [][]byte{k[:16], k[120:136]} {
		out = append(out, run, []byte(repr(run)), []byte(hex.EncodeToString(run)), []byte(strings.ToUpper(hex.EncodeToString(run))))
	}
	return append(out, []byte(base64.StdEncoding.EncodeToString(k)[:24]), []byte(base64.URLEncoding.EncodeToString(k)[:24]),
		[]byte(base64.StdEncoding.EncodeToString(k[1:])[:24]), []byte(base64.StdEncoding.EncodeToString(k[2:])[:24]))
}

func holdsKey(b []byte, k []byte) bool {
	for _, f := range keyForms(k) {
		if bytes.Contains(b, f) {
			return true
		}
	}
	return false
}

func authKey(seed byte) storage.AuthKey {
	k := make(storage.AuthKey, storage.AuthKeySize)
	for i := range k {
		k[i] = seed ^ byte(i*31+i>>3)
	}
	return k
}

// writeKeyring writes lines into a 0600 file.
func writeKeyring(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("# test keyring\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptedAtRest is issue 17's acceptance through the CLI, on a server
// of its own with an AOF: imports with a keyring leave the auth key in no
// Redis value, DUMP, AOF line or MONITOR line; exports give the strings
// back; without the key id the commands fail naming it; rotation keeps
// every export; a blob moved to another session fails; rekey respects
// owners. A control import without keyring shows the checks can see a key.
func TestEncryptedAtRest(t *testing.T) {
	t.Parallel()
	redistest.Require(t)
	srv, err := redistest.Start("--appendonly", "yes")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	dir := t.TempDir()
	ring := filepath.Join(dir, "keyring")
	line1 := strings.TrimSpace(must(t, tg(t, "", "keygen", "--id", "a1"), "keygen").out)
	writeKeyring(t, ring, line1)
	base := []string{"--redis", "redis://" + srv.Addr, "--prefix", "enc"}
	withRing := append([]string{"--keyring", ring}, base...)

	// MONITOR for the whole import phase.
	mon := exec.Command("redis-cli", "-p", fmt.Sprint(srv.Port), "monitor")
	var monOut bytes.Buffer
	var monMu sync.Mutex
	pipe, _ := mon.StdoutPipe()
	if err := mon.Start(); err != nil {
		t.Fatalf("redis-cli monitor: %v", err)
	}
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			monMu.Lock()
			monOut.Write(sc.Bytes())
			monOut.WriteByte('\n')
			monMu.Unlock()
		}
	}()
	time.Sleep(200 * time.Millisecond) // MONITOR is on

	// A session string and a .session file, each with its own key.
	k1, k2 := authKey(0x11), authKey(0x5a)
	str, err := storage.ExportSessionString(storage.Session{DCID: storage.Some(2), APIID: storage.Some[int64](12345), AuthKey: k1,
		UserID: storage.Some[int64](777), IsBot: storage.Some(false), TestMode: storage.Some(false)})
	if err != nil {
		t.Fatal(err)
	}
	strFile := filepath.Join(dir, "s.txt")
	if err := os.WriteFile(strFile, []byte(str), 0o600); err != nil {
		t.Fatal(err)
	}
	sessFile := filepath.Join(dir, "f.session")
	fs := filestore.New(sessFile, filestore.Options{})
	if err := fs.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fs.SetSession(ctx, storage.Session{DCID: storage.Some(4), APIID: storage.Some[int64](99), AuthKey: k2,
		UserID: storage.Some[int64](888), IsBot: storage.Some(true), TestMode: storage.Some(false)}); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	wantFile, err := storage.ExportSessionString(storage.Session{DCID: storage.Some(4), APIID: storage.Some[int64](99), AuthKey: k2,
		UserID: storage.Some[int64](888), IsBot: storage.Some(true), TestMode: storage.Some(false)})
	if err != nil {
		t.Fatal(err)
	}

	must(t, tg(t, "", append([]string{"import", "s", "--string-file", strFile}, withRing...)...), "import string")
	must(t, tg(t, "", append([]string{"import", "f", "--file", sessFile}, withRing...)...), "import file")
	time.Sleep(1200 * time.Millisecond) // the AOF is written each event loop, fsynced each second

	// Every value under the prefix, and its DUMP.
	keys, err := c.Keys(ctx, "enc:*").Result() // a server of this test's own
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	for _, k := range keys {
		var all []byte
		if typ := c.Type(ctx, k).Val(); typ == "hash" {
			for f, v := range c.HGetAll(ctx, k).Val() {
				all = append(append(all, f...), v...)
			}
		}
		dump, _ := c.Dump(ctx, k).Result()
		all = append(all, dump...)
		for _, key := range [][]byte{k1, k2} {
			if holdsKey(all, key) {
				t.Errorf("key %s holds an auth key", k)
			}
		}
	}
	aof := readAOF(t, srv.Dir)
	monMu.Lock()
	monText := monOut.Bytes()
	monMu.Unlock()
	if !bytes.Contains(monText, []byte("evalsha")) && !bytes.Contains(monText, []byte("EVALSHA")) {
		t.Fatalf("MONITOR saw no script calls (%d bytes): the check would prove nothing", len(monText))
	}
	for _, key := range [][]byte{k1, k2} {
		if holdsKey(aof, key) {
			t.Error("the AOF holds an auth key")
		}
		if holdsKey(monText, key) {
			t.Error("MONITOR showed an auth key")
		}
	}
	if st := must(t, tg(t, "", append([]string{"show", "s"}, withRing...)...), "show"); !strings.Contains(st.out, "encrypted (a1)") {
		t.Errorf("show: %s; want encrypted (a1)", st.out)
	}

	// Exports give the strings back, saying they decrypted.
	for name, want := range map[string]string{"s": str, "f": wantFile} {
		r := must(t, tg(t, "", append([]string{"export", name}, withRing...)...), "export "+name)
		if strings.TrimSpace(r.out) != want {
			t.Errorf("export %s = %q; want the imported session", name, r.out)
		}
		if !strings.Contains(r.err, "decrypted") {
			t.Errorf("export %s stderr %q; want a note that it decrypted", name, r.err)
		}
	}

	// Without the keyring, or with one lacking a1: exit 1 naming a1, no key.
	other := filepath.Join(dir, "other")
	writeKeyring(t, other, strings.TrimSpace(must(t, tg(t, "", "keygen", "--id", "zz"), "keygen").out))
	for _, args := range [][]string{base, append([]string{"--keyring", other}, base...)} {
		for _, cmd := range [][]string{{"show", "s"}, {"export", "s"}, {"export", "f", "--file", filepath.Join(dir, "x.session")}} {
			r := tgEnv(t, []string{"TGSESSION_KEYRING="}, "", append(cmd, args...)...)
			if r.code != 1 || !strings.Contains(r.err, `"a1"`) || strings.TrimSpace(r.out) != "" {
				t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want exit 1 naming a1", cmd, args[:1], r.code, r.out, r.err)
			}
			for _, key := range [][]byte{k1, k2} {
				if holdsKey([]byte(r.out+r.err), key) {
					t.Errorf("%v printed key material", cmd)
				}
			}
		}
	}
	// $TGSESSION_KEYRING is the default of --keyring.
	if r := tgEnv(t, []string{"TGSESSION_KEYRING=" + ring}, "", append([]string{"export", "s"}, base...)...); r.code != 0 || strings.TrimSpace(r.out) != str {
		t.Errorf("export with $TGSESSION_KEYRING: exit %d %s", r.code, r.err)
	}

	// Rotation: a new first line, rekey --all, drop the old line.
	line2 := strings.TrimSpace(must(t, tg(t, "", "keygen", "--id", "b2"), "keygen").out)
	writeKeyring(t, ring, line2, line1)
	r := must(t, tg(t, "", append([]string{"rekey", "--all"}, withRing...)...), "rekey --all")
	if strings.Count(r.out, "encrypted (b2), was encrypted (a1)") != 2 {
		t.Errorf("rekey --all: %s", r.out)
	}
	writeKeyring(t, ring, line2)
	for name, want := range map[string]string{"s": str, "f": wantFile} {
		r := must(t, tg(t, "", append([]string{"export", name}, withRing...)...), "export after rotation "+name)
		if strings.TrimSpace(r.out) != want {
			t.Errorf("export %s after rotation = %q", name, r.out)
		}
	}
	// A blob moved to another session does not decrypt there.
	blob := c.HGet(ctx, "enc:{s}:s", "auth_key").Val()
	if !strings.HasPrefix(blob, "gcm1:b2:") {
		t.Fatalf("stored auth_key starts %q", blob[:min(8, len(blob))])
	}
	if err := c.HSet(ctx, "enc:{f}:s", "auth_key", blob).Err(); err != nil {
		t.Fatal(err)
	}
	moved := tg(t, "", append([]string{"export", "f"}, withRing...)...)
	fails(t, moved, 1, "does not decrypt", "export of a moved blob")
	if strings.Contains(moved.err, "was decrypted") {
		t.Errorf("a failed export says the key was decrypted: %q", moved.err)
	}

	// rekey refuses a session a worker owns, and waits with --wait. The
	// session is made plaintext first, so that rekey has something to do
	// (a key sealed with the current key is left as it is).
	kr, err := keyring.Load(ring)
	if err != nil {
		t.Fatal(err)
	}
	var plain storage.AuthKey
	for _, keys := range []keyring.KeyProvider{kr, nil} { // read it with the keyring, write it without
		st, err := redisstore.New(c, "s", redisstore.Options{Mode: redisstore.Unfenced, Prefix: "enc", OpenExisting: true, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if keys != nil {
			if plain, err = st.AuthKey(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := st.SetAuthKey(ctx, plain); err != nil {
			t.Fatal(err)
		}
	}
	owner, err := redisstore.New(c, "s", redisstore.Options{Mode: redisstore.Leased, Create: true, Prefix: "enc", Lease: lock.Options{TTL: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Open(ctx); err != nil {
		t.Fatal(err)
	}
	fails(t, tg(t, "", append([]string{"rekey", "s"}, withRing...)...), 1, "a worker owns it", "rekey of an owned session")
	go func() { time.Sleep(300 * time.Millisecond); owner.Close() }()
	must(t, tg(t, "", append([]string{"rekey", "s", "--wait", "20s"}, withRing...)...), "rekey --wait")

	// A keyring others can read still works, with a warning.
	if err := os.Chmod(ring, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := must(t, tg(t, "", append([]string{"show", "s"}, withRing...)...), "show with a 0644 keyring"); !strings.Contains(r.err, "chmod 600") {
		t.Errorf("a 0644 keyring gave no warning: %q", r.err)
	}

	// Control: the same checks see a key imported without a keyring.
	must(t, tg(t, "", append([]string{"import", "plain", "--string-file", strFile, "--force"}, "--redis", "redis://"+srv.Addr, "--prefix", "ctl")...), "control import")
	time.Sleep(1200 * time.Millisecond)
	_ = mon.Process.Kill()
	<-monDone
	_ = mon.Wait()
	monMu.Lock()
	defer monMu.Unlock()
	if !holdsKey(readAOF(t, srv.Dir), k1) || !holdsKey(monOut.Bytes(), k1) {
		t.Error("control: a plaintext import was not seen in the AOF and MONITOR: the checks above prove nothing")
	}
}

// readAOF concatenates the server's AOF files (Redis 7: appendonlydir/).
func readAOF(t *testing.T, dir string) []byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "appendonlydir", "*"))
	if len(files) == 0 {
		t.Fatalf("no AOF files in %s", dir)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}
