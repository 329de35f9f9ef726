package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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
	"github.com/tgsession/redisstore/fleet"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/sessionstring"
)

// These tests hold the CLI to issue 13: bad input never costs a session.
// Each refused operation is checked against the data: every key under the
// test's prefix DUMPed before and after, and every input file hashed.

// prefixOf returns the --prefix value of env(t)'s arguments.
func prefixOf(e []string) string { return e[3] }

// direct returns a go-redis client on the server env(t) points at.
func direct(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redistest.Require(t).Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// dumpAll returns DUMP of every key under prefix (SCAN; the test's own
// prefix on a server the harness started).
func dumpAll(t *testing.T, c *redis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		v, err := c.Dump(ctx, iter.Val()).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		out[iter.Val()] = v
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameDump(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%s: %d keys before, %d after", what, len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: key %q changed", what, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: key %q appeared", what, k)
		}
	}
}

// fileState is a file's hash and which of its SQLite companions exist.
func fileState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return "missing: " + err.Error()
	}
	s := fmt.Sprintf("%x", sha256.Sum256(b))
	for _, ext := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + ext); err == nil {
			s += " +" + ext
		}
	}
	return s
}

// editFixture copies the Hydrogram fixture and runs SQL on the copy.
func editFixture(t *testing.T, name string, stmts ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	b, err := os.ReadFile(fixtureFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	return p
}

// forgedString builds a Hydrogram session string with the given fields
// (">BI?256sQ?", URL-safe base64 without padding), bypassing the encoder's
// checks.
func forgedString(dc byte, apiID uint32, userID uint64) string {
	b := []byte{dc}
	b = binary.BigEndian.AppendUint32(b, apiID)
	b = append(b, 0)
	b = append(b, make([]byte, 256)...)
	for i := 6; i < 6+256; i++ {
		b[i] = byte(i * 7)
	}
	b = binary.BigEndian.AppendUint64(b, userID)
	b = append(b, 0)
	return base64.RawURLEncoding.EncodeToString(b)
}

// testFinding1ForceKeepsSession: a bad file imported with --force over a
// good session fails and leaves the session (auth key included) as it was.
func testFinding1ForceKeepsSession(t *testing.T) {
	t.Parallel()
	e, c := env(t), direct(t)
	good := loadVectors(t)[0]["session_string"].(string)
	must(t, tg(t, good, append([]string{"import", "victim", "--string", "-"}, e...)...), "import victim")
	before := dumpAll(t, c, prefixOf(e))
	for _, tc := range []struct{ name, file string }{
		{"dc_id 0", editFixture(t, "dc0.session", "UPDATE sessions SET dc_id = 0")},
		{"peer type evil", editFixture(t, "evil.session", "UPDATE peers SET type = 'evil' WHERE id = (SELECT max(id) FROM peers)")},
		{"text access_hash", editFixture(t, "texthash.session", "UPDATE peers SET access_hash = 'abc' WHERE id = (SELECT max(id) FROM peers)")},
		{"bad username", editFixture(t, "badname.session", "UPDATE peers SET username = 'no spaces allowed' WHERE id = (SELECT max(id) FROM peers)")},
	} {
		in := fileState(t, tc.file)
		r := tg(t, "", append([]string{"import", "victim", "--force", "--file", tc.file}, e...)...)
		if r.code == 0 {
			t.Errorf("%s: import --force succeeded", tc.name)
		}
		sameDump(t, tc.name+": stored data after a refused import --force", before, dumpAll(t, c, prefixOf(e)))
		if got := fileState(t, tc.file); got != in {
			t.Errorf("%s: the input file changed: %s -> %s", tc.name, in, got)
		}
	}
	r := must(t, tg(t, "", append([]string{"export", "victim"}, e...)...), "export victim")
	if strings.TrimSpace(r.out) != good {
		t.Error("the session's string changed")
	}
}

// testFinding2LiteralPaths: --file is a literal path; '?', '#' and '%'
// name files, never SQLite URI syntax.
func testFinding2LiteralPaths(t *testing.T) {
	t.Parallel()
	e := env(t)
	must(t, tg(t, "", append([]string{"import", "acct", "--file", fixtureFile(t)}, e...)...), "import")
	dir := t.TempDir()
	other := filepath.Join(dir, "other.session")
	if err := os.WriteFile(other, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"other.session?", "x?y", "o#ut", "o%41ut", "sp ace", "a?mode=ro"} {
		p := filepath.Join(dir, name)
		must(t, tg(t, "", append([]string{"export", "acct", "--file", p}, e...)...), "export to "+name)
		if st := fileState(t, p); strings.HasPrefix(st, "missing") {
			t.Errorf("export to %q: no file by that name (%s)", name, st)
		}
		// The literal name also imports back.
		must(t, tg(t, "", append([]string{"import", "back-" + hex.EncodeToString([]byte(name)), "--file", p}, e...)...), "import from "+name)
	}
	if b, _ := os.ReadFile(other); string(b) != "precious" {
		t.Errorf("other.session was overwritten: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	want := []string{"a?mode=ro", "o#ut", "o%41ut", "other.session", "other.session?", "sp ace", "x?y"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("files after the exports: %q; want exactly %q", names, want)
	}
}

// testFinding3FileModes: files holding an auth key are 0600 whatever the
// umask (the test binary runs with umask 022, see TestMain).
func testFinding3FileModes(t *testing.T) {
	t.Parallel()
	e := env(t)
	must(t, tg(t, "", append([]string{"import", "acct", "--file", fixtureFile(t)}, e...)...), "import")
	dir := t.TempDir()
	for _, force := range []bool{false, true} {
		p := filepath.Join(dir, "out.session")
		args := append([]string{"export", "acct", "--file", p}, e...)
		if force {
			args = append(args, "--force")
		}
		must(t, tg(t, "", args...), "export")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("exported file mode %v (force %v); want 0600", fi.Mode().Perm(), force)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left beside the export: %v", entries)
	}
}

// testFinding4NothingLeftBehind: a rejected import registers nothing and
// writes nothing; imports never change their input (empty files, other
// databases, Pyrogram v2 and v1 files).
func testFinding4NothingLeftBehind(t *testing.T) {
	t.Parallel()
	e, c := env(t), direct(t)
	empty := filepath.Join(t.TempDir(), "empty.session")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(t.TempDir(), "app.db")
	func() {
		db, err := sql.Open("sqlite", unrelated)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes VALUES (1, 'keep me')"); err != nil {
			t.Fatal(err)
		}
	}()
	refused := []struct {
		name  string
		stdin string
		args  []string
		msg   string
	}{
		{"api_id 0", forgedString(2, 0, 12345), []string{"--string", "-"}, "api_id"},
		{"user_id 0", forgedString(2, 611335, 0), []string{"--string", "-"}, "user_id"},
		{"user_id 2^63", forgedString(2, 611335, 1<<63), []string{"--string", "-"}, "user_id"},
		{"dc_id 0", forgedString(0, 611335, 12345), []string{"--string", "-"}, "dc_id"},
		{"empty stdin", "", []string{"--string", "-"}, "no session string in stdin"},
		{"dc_id 0 file", "", []string{"--file", editFixture(t, "dc0.session", "UPDATE sessions SET dc_id = 0")}, "dc_id"},
		{"evil type file", "", []string{"--file", editFixture(t, "evil.session", "UPDATE peers SET type = 'evil' WHERE id = (SELECT min(id) FROM peers)")}, "evil"},
		{"text hash file", "", []string{"--file", editFixture(t, "texthash.session", "UPDATE peers SET access_hash = 'abc' WHERE id = (SELECT min(id) FROM peers)")}, "abc"},
		{"empty file", "", []string{"--file", empty}, "not a Hydrogram/Pyrogram session file"},
		{"unrelated database", "", []string{"--file", unrelated}, "not a Hydrogram/Pyrogram session file"},
	}
	for _, tc := range refused {
		var file, in string
		if tc.args[0] == "--file" {
			file = tc.args[1]
			in = fileState(t, file)
		}
		r := tg(t, tc.stdin, append(append([]string{"import", "fresh"}, tc.args...), e...)...)
		fails(t, r, 1, tc.msg, tc.name)
		if keys := dumpAll(t, c, prefixOf(e)); len(keys) != 0 {
			t.Errorf("%s: a rejected import left keys behind: %v", tc.name, keys)
		}
		if file != "" {
			if got := fileState(t, file); got != in {
				t.Errorf("%s: the input file changed: %s -> %s", tc.name, in, got)
			}
		}
	}
	// Older schemas import (like Hydrogram reads them after migrating) and
	// stay as they were on disk.
	v2 := editFixture(t, "v2.session", "ALTER TABLE sessions DROP COLUMN api_id", "UPDATE version SET number = 2")
	v1 := editFixture(t, "v1.session", "UPDATE version SET number = 1")
	for _, tc := range []struct {
		name, file, peers string
	}{{"v2", v2, "24 peers"}, {"v1", v1, "0 peers"}} {
		in := fileState(t, tc.file)
		r := must(t, tg(t, "", append([]string{"import", tc.name, "--file", tc.file}, e...)...), "import "+tc.name)
		if !strings.Contains(r.out, tc.peers) {
			t.Errorf("import %s: %q; want %s", tc.name, r.out, tc.peers)
		}
		if got := fileState(t, tc.file); got != in {
			t.Errorf("import %s changed the file: %s -> %s", tc.name, in, got)
		}
	}
	r := must(t, tg(t, "", append([]string{"show", "v2", "--json"}, e...)...), "show v2")
	if !strings.Contains(r.out, `"api_id": null`) {
		t.Errorf("a Pyrogram v2 file has no api_id; show says %s", r.out)
	}
}

// testFinding5Secrets: no password in errors or in worker argv; a string on
// the command line is warned about, and --string-file reads it from a file.
func testFinding5Secrets(t *testing.T) {
	t.Parallel()
	const pw = "topsecret-pw-5"
	for _, url := range []string{"redis://u:" + pw + "@[::1", "redis://:" + pw + "@host:notaport", "redis-sentinel://u:" + pw + "@h:1?master_name=%zz",
		"rediss-cluster://u:" + pw + "@[bad"} {
		r := tg(t, "", "ls", "--redis", url)
		if r.code == 0 || strings.Contains(r.err+r.out, pw) || strings.Contains(r.err, "topsecret") {
			t.Errorf("ls --redis %s: exit %d, stderr %q (must fail without the password)", "(url with a password)", r.code, r.err)
		}
	}
	// Demo workers get the URL through their environment.
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.ConfigSet(context.Background(), "requirepass", pw).Err(); err != nil {
		t.Fatal(err)
	}
	demo := exec.Command(bin, "demo", "--redis", "redis://:"+pw+"@"+srv.Addr)
	demo.Env = os.Environ()
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- demo.Wait() }()
	seen := 0
	deadline := time.After(60 * time.Second)
poll:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo: %v", err)
			}
			break poll
		case <-deadline:
			_ = demo.Process.Kill()
			t.Fatal("demo did not finish")
		case <-time.After(50 * time.Millisecond):
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err != nil || !strings.Contains(string(b), "demo-worker") {
				continue
			}
			seen++
			if strings.Contains(string(b), pw) {
				t.Fatalf("a demo worker's command line holds the password: %q", strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	if seen == 0 {
		t.Error("saw no demo worker's command line: the check checked nothing")
	}
	// A string on the command line works but is warned about; --string-file does not warn.
	e := env(t)
	good := loadVectors(t)[0]["session_string"].(string)
	r := must(t, tg(t, "", append([]string{"import", "argv", "--string", good}, e...)...), "import --string S")
	if !strings.Contains(r.err, "visible to other users") {
		t.Errorf("no warning for a string in argv: %q", r.err)
	}
	f := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(f, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = must(t, tg(t, "", append([]string{"import", "file", "--string-file", f}, e...)...), "import --string-file")
	if r.err != "" {
		t.Errorf("import --string-file printed %q", r.err)
	}
}

// testFinding6OneBadEntry: ls survives a corrupt session; invalid UTF-8
// names round-trip through --json (name_base64); errors quote a short
// prefix of input; /dev/null is not a terminal; stdin reads are bounded.
func testFinding6OneBadEntry(t *testing.T) {
	t.Parallel()
	e, c := env(t), direct(t)
	good := loadVectors(t)[0]["session_string"].(string)
	for _, n := range []string{"ok", "corrupt", "a\xff", "a\xfe"} {
		must(t, tg(t, good, append([]string{"import", n, "--string", "-"}, e...)...), "import "+n)
	}
	ctx := context.Background()
	if err := c.HSet(ctx, prefixOf(e)+":{corrupt}:s", "auth_key", "junk:not an envelope").Err(); err != nil {
		t.Fatal(err)
	}
	r := must(t, tg(t, "", append([]string{"ls", "--json"}, e...)...), "ls with a corrupt session")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.out), &list); err != nil {
		t.Fatal(err)
	}
	byB64 := map[string]bool{}
	for _, i := range list {
		if i["name"] == "corrupt" && i["error"] == nil {
			t.Errorf("the corrupt session is not marked: %v", i)
		}
		if i["name"] == "ok" && i["error"] != nil {
			t.Errorf("a good session is marked: %v", i)
		}
		if b, ok := i["name_base64"].(string); ok {
			raw, _ := base64.StdEncoding.DecodeString(b)
			byB64[string(raw)] = true
		}
	}
	if len(list) != 4 || !byB64["a\xff"] || !byB64["a\xfe"] {
		t.Errorf("ls --json: %d sessions, invalid-UTF-8 names %v; want 4 and both names exactly", len(list), byB64)
	}
	if r := must(t, tg(t, "", append([]string{"ls"}, e...)...), "ls (table)"); !strings.Contains(r.out, "unreadable") {
		t.Errorf("ls table does not mark the corrupt session:\n%s", r.out)
	}
	huge := strings.Repeat("u", 120<<10) // just below Linux's limit on one argument (128 KiB)
	r = tg(t, "", append([]string{"peers", "ok", "--username", huge}, e...)...)
	if r.code != 1 || len(r.err) > 1024 {
		t.Errorf("peers --username (120 KiB): exit %d, %d bytes of stderr; want a short error", r.code, len(r.err))
	}
	// /dev/null on stdin is not a terminal: rm asks for --yes instead of reading it.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	rm := exec.Command(bin, append([]string{"rm", "ok"}, e...)...)
	rm.Stdin = devnull
	out, err := rm.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pass --yes") {
		t.Errorf("rm with stdin /dev/null: %v %q; want a refusal asking for --yes", err, out)
	}
	// /dev/zero on stdin: a bounded read and a clear error, not memory exhaustion.
	zero, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer zero.Close()
	imp := exec.Command(bin, append([]string{"import", "z", "--string", "-"}, e...)...)
	imp.Stdin = zero
	out, err = imp.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "more than") {
		t.Errorf("import --string - < /dev/zero: %v %q", err, out)
	}
	if _, err := sessionstring.Decode(good); err != nil {
		t.Fatal(err)
	}
}

// testFinding7TLS: a server that requires a client certificate, reached
// with --tls-ca, --tls-cert and --tls-key; refused without the client
// certificate or with another CA.
func testFinding7TLS(t *testing.T) {
	t.Parallel()
	redistest.Require(t)
	srv, err := redistest.StartTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	f := srv.Files
	url := "rediss://" + srv.TLSAddr
	full := []string{"--redis", url, "--tls-ca", f.CA, "--tls-cert", f.ClientCert, "--tls-key", f.ClientKey, "--prefix", "tls"}
	good := loadVectors(t)[0]["session_string"].(string)
	must(t, tg(t, good, append([]string{"import", "over-tls", "--string", "-"}, full...)...), "import over TLS")
	if r := must(t, tg(t, "", append([]string{"export", "over-tls"}, full...)...), "export over TLS"); strings.TrimSpace(r.out) != good {
		t.Errorf("export over TLS = %q", r.out)
	}
	must(t, tg(t, "", append([]string{"ls"}, full...)...), "ls over TLS")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no client certificate", []string{"--redis", url, "--tls-ca", f.CA}},
		{"another CA", []string{"--redis", url, "--tls-ca", f.OtherCA, "--tls-cert", f.ClientCert, "--tls-key", f.ClientKey}},
		{"system CAs", []string{"--redis", url, "--tls-cert", f.ClientCert, "--tls-key", f.ClientKey}},
	} {
		if r := tg(t, "", append([]string{"ls", "--prefix", "tls"}, tc.args...)...); r.code == 0 {
			t.Errorf("%s: ls over TLS succeeded", tc.name)
		}
	}
	fails(t, tg(t, "", "ls", "--redis", "redis://"+srv.Addr, "--tls-ca", f.CA), 2, "need a TLS URL", "--tls-ca with redis://")
}

// testOperatorACL runs every CLI command as the operator user whose ACL
// README.md documents (read from the README), on a private server, under the
// documented prefix "tgsession" and a prefix nested in it.
func testOperatorACL(t *testing.T) {
	t.Parallel()
	redistest.Require(t)
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	user := redistest.READMEACL(t, srv, "../../README.md", "operator")
	url := "redis://" + user + ":pw@" + srv.Addr
	good := loadVectors(t)[0]["session_string"].(string)
	for _, prefix := range []string{"tgsession", "tgsession:tenantB"} {
		e := []string{"--redis", url, "--prefix", prefix}
		run := func(stdin string, args ...string) result {
			t.Helper()
			return must(t, tg(t, stdin, append(args, e...)...), prefix+": "+strings.Join(args, " "))
		}
		run(good, "import", "acct", "--string", "-")
		run(good, "import", "acct", "--string", "-", "--force")
		run("", "import", "file", "--file", fixtureFile(t))
		run("", "ls")
		run("", "workers")
		run("", "show", "acct")
		run("", append([]string{"peers", "file", "--username", "@BotFather"}, fixtureNow(0)...)...)
		if r := run("", "export", "acct"); strings.TrimSpace(r.out) != good {
			t.Errorf("%s: export = %q", prefix, r.out)
		}
		run("", "export", "file", "--file", filepath.Join(t.TempDir(), "out.session"))
		run("", "unlock", "acct", "--yes")
		run("", "unlock", "acct", "--yes", "--force")
		run("", "rm", "acct", "--yes")
	}
	r := must(t, tg(t, "", "bench", "--redis", url, "--duration", "20ms", "--memory-peers", "2000", "--stream-updates", "200", "--json"), "bench as the operator")
	if !strings.Contains(r.out, "UpdatePeers(1000)") {
		t.Errorf("bench as the operator: %s", r.out)
	}
}

// testWorkers: two fleet workers share 6 sessions; tgsession workers lists
// both with their capacity and load, and ls shows each session's owner.
func testWorkers(t *testing.T) {
	t.Parallel()
	e := env(t)
	c := direct(t)
	prefix := prefixOf(e)
	good := loadVectors(t)[0]["session_string"].(string)
	for i := range 6 {
		must(t, tg(t, good, append([]string{"import", fmt.Sprint("acct", i), "--string", "-"}, e...)...), "import")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, id := range []string{"fleet-a", "fleet-b"} {
		w, err := fleet.New(c, fleet.Options{WorkerID: id, Capacity: 5, Prefix: prefix, Interval: 100 * time.Millisecond},
			func(ctx context.Context, _ *redisstore.Store) error { <-ctx.Done(); return nil })
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = w.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	var rows []map[string]any
	for {
		r := must(t, tg(t, "", append([]string{"workers", "--json"}, e...)...), "workers --json")
		rows = nil
		_ = json.Unmarshal([]byte(r.out), &rows)
		if len(rows) == 2 && rows[0]["sessions"] == float64(3) && rows[1]["sessions"] == float64(3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers: %s", r.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rows[0]["worker"] != "fleet-a" || rows[0]["capacity"] != float64(5) {
		t.Errorf("workers: %v", rows)
	}
	r := must(t, tg(t, "", append([]string{"workers"}, e...)...), "workers")
	if !strings.Contains(r.out, "fleet-a") || !strings.Contains(r.out, "SESSIONS") {
		t.Errorf("workers table:\n%s", r.out)
	}
	r = must(t, tg(t, "", append([]string{"ls"}, e...)...), "ls")
	if strings.Count(r.out, "fleet-a@") != 3 || strings.Count(r.out, "fleet-b@") != 3 {
		t.Errorf("ls does not show each session's owning worker:\n%s", r.out)
	}
}
