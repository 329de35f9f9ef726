package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/storage"
	"github.com/tgsession/redisstore/storage/storagetest"
	_ "modernc.org/sqlite"
)

var bin string // the built tgsession binary

func TestMain(m *testing.M) {
	syscall.Umask(0o022) // the usual umask: files holding keys must still come out 0600
	dir, err := os.MkdirTemp("", "tgsession-cli-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "tgsession")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		defer redistest.Cleanup()
		code = m.Run()
	}()
	os.Exit(code)
}

// outputs collects everything the binary printed (but the session string a
// successful export prints on purpose), for the secrets check.
var (
	outputsMu sync.Mutex
	outputs   []string
)

type result struct {
	out, err string
	code     int
}

// tg runs the binary with stdin not a terminal, without $REDIS_URL.
func tg(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return tgEnv(t, nil, stdin, args...)
}

// tgEnv runs the binary with the test process's environment less
// $REDIS_URL, plus env ("K=V" entries).
func tgEnv(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDIS_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out: out.String(), err: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	outputsMu.Lock()
	outputs = append(outputs, r.err)
	if args[0] != "export" || r.code != 0 { // a successful string export IS the secret, by design
		outputs = append(outputs, r.out)
	}
	outputsMu.Unlock()
	return r
}

// env returns --redis and a fresh --prefix for one test.
func env(t *testing.T) []string {
	return []string{"--redis", "redis://" + redistest.Require(t).Addr, "--prefix", "cli-" + redistest.TempName(t)}
}

func must(t *testing.T, r result, what string) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.out, r.err)
	}
	return r
}

func fails(t *testing.T, r result, code int, msg, what string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.err, msg) {
		t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", what, r.code, r.err, code, msg)
	}
}

func checkDemo(t *testing.T, r result) {
	t.Helper()
	must(t, r, "demo")
	for _, want := range []string{"acknowledged writes lost:           0", "writes of two owners interleaved:   0", "invariants: OK", "SIGKILL", "REFUSED"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.out)
		}
	}
	if m := regexp.MustCompile(`writes refused from deposed owners: (\d+)`).FindStringSubmatch(r.out); m == nil || m[1] == "0" {
		t.Errorf("demo refused no write from a deposed owner:\n%s", r.out)
	}
	m := regexp.MustCompile(`sessions per worker: min=(\d+) max=(\d+)`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("demo prints no balance line:\n%s", r.out)
	}
	lo, _ := strconv.Atoi(m[1])
	hi, _ := strconv.Atoi(m[2])
	if hi-lo > 1 || lo == 0 { // 40 sessions over the live workers at the end, within one of each other
		t.Errorf("demo balance min=%d max=%d", lo, hi)
	}
}

func testDemoEmbedded(t *testing.T) {
	t.Parallel()
	checkDemo(t, tg(t, "", "demo"))
}

func testDemoRealRedis(t *testing.T) {
	t.Parallel()
	checkDemo(t, tg(t, "", append([]string{"demo"}, env(t)...)...))
}

func loadVectors(t *testing.T) []map[string]any {
	b, err := os.ReadFile("../../sessionstring/testdata/session_strings.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []map[string]any
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestStrings: every fixture string imports and exports back byte-exact.
func testStrings(t *testing.T) {
	t.Parallel()
	e := env(t)
	for _, v := range loadVectors(t) {
		name, str := v["name"].(string), v["session_string"].(string)
		must(t, tg(t, "", append([]string{"import", name, "--string", str}, e...)...), "import "+name)
		format := "hydrogram"
		if v["format"] != "current" {
			format = "pyrogram-legacy"
		}
		r := must(t, tg(t, "", append([]string{"export", name, "--format", format}, e...)...), "export "+name)
		if got := strings.TrimSpace(r.out); got != str {
			t.Errorf("%s: export = %q; want the imported string", name, got)
		}
	}
	// --string - reads the string from stdin, wrapped and padded as pasted from a chat.
	first := loadVectors(t)[0]["session_string"].(string)
	must(t, tg(t, "\n"+first[:100]+"\n"+first[100:]+"==\n", append([]string{"import", "stdin", "--string", "-"}, e...)...), "import --string -")
	if r := must(t, tg(t, "", append([]string{"export", "stdin"}, e...)...), "export stdin"); strings.TrimSpace(r.out) != first {
		t.Errorf("string from stdin exported as %q", r.out)
	}
	// A Telethon string (built from the layout) round-trips through --format telethon.
	key := make([]byte, 256)
	for i := range key {
		key[i] = byte(i * 3)
	}
	raw := append([]byte{2, 149, 154, 167, 51, 1, 187}, key...)
	tele := "1" + base64.URLEncoding.EncodeToString(raw)
	must(t, tg(t, "", append([]string{"import", "tele", "--string", tele}, e...)...), "import telethon")
	r := must(t, tg(t, "", append([]string{"export", "tele", "--format", "telethon"}, e...)...), "export telethon")
	if strings.TrimSpace(r.out) != tele {
		t.Errorf("telethon export = %q; want %q", r.out, tele)
	}
	// A Telethon string has no user id: a Hydrogram string cannot be made.
	fails(t, tg(t, "", append([]string{"export", "tele"}, e...)...), 1, "user_id", "export hydrogram of a telethon session")
}

func dumpRows(t *testing.T, path string) [][]any {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var all [][]any
	for _, q := range []string{
		"SELECT type, name, sql FROM sqlite_master ORDER BY name",
		"SELECT * FROM version", "SELECT * FROM sessions",
		"SELECT * FROM peers ORDER BY id",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			all = append(all, vals)
		}
		rows.Close()
	}
	return all
}

func fixtureFile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../filestore/testdata/hydrogram_v3.session")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "my_account.session")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// clock is the harness's "now" for the time-sensitive checks: they run once on
// the binary's own clock (ahead 0, no --now) and once, in TestCLIClockAhead,
// with every command told it is 30 days later. A check that compares fixture
// timestamps with whatever day the suite runs on fails the second run at once
// instead of three days after it was written. Commands that must see a
// particular time pin it with their own --now, which tg keeps.
type clock struct{ ahead time.Duration }

func (c clock) now() time.Time { return time.Now().Add(c.ahead) }

// tg runs the binary like the package-level tg, adding --now when the clock is
// moved and the command did not pin its own time.
func (c clock) tg(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	if c.ahead != 0 && !slices.Contains(args, "--now") {
		args = append(args, "--now", strconv.FormatInt(c.now().Unix(), 10))
	}
	return tg(t, stdin, args...)
}

// fixtureNow pins a command to the time at which the Hydrogram fixture's
// usernames are fresh (its recorded reference time).
func fixtureNow(offset time.Duration) []string {
	return []string{"--now", strconv.FormatInt(storagetest.HydrogramReferenceNow()+int64(offset/time.Second), 10)}
}

// timeSensitive are the CLI checks whose outcome depends on "now".
var timeSensitive = map[string]func(*testing.T, clock){
	"FileLsShowPeers": testFileLsShowPeers,
	"FreshUsername":   testFreshUsername,
}

// TestCLIClockAhead runs the time-sensitive checks as if the suite ran 30
// days from today.
func TestCLIClockAhead(t *testing.T) {
	t.Parallel()
	for name, fn := range timeSensitive {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, clock{ahead: 30 * 24 * time.Hour})
		})
	}
}

// testFreshUsername: a username cached "now" (by the harness's clock) resolves
// on the command's clock, and expires UsernameTTL later.
func testFreshUsername(t *testing.T, clk clock) {
	e := env(t)
	path := filepath.Join(t.TempDir(), "fresh.session")
	written := clk.now().Unix()
	src := filestore.New(path, filestore.Options{})
	ctx := context.Background()
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.ImportPeers(ctx, []storage.Peer{{ID: 4242, AccessHash: storage.Some[int64](7), Type: storage.PeerUser,
		Usernames: []string{"fresh_name"}, LastUpdateOn: written}}); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	must(t, clk.tg(t, "", append([]string{"import", "fresh", "--file", path}, e...)...), "import")
	r := must(t, clk.tg(t, "", append([]string{"peers", "fresh", "--username", "@Fresh_Name"}, e...)...), "peers --username, fresh")
	if !strings.Contains(r.out, "InputPeerUser(user_id=4242, access_hash=7)") {
		t.Errorf("peers: %q", r.out)
	}
	later := []string{"--now", strconv.FormatInt(written+storage.UsernameTTL+1, 10)}
	fails(t, clk.tg(t, "", append(append([]string{"peers", "fresh", "--username", "fresh_name"}, e...), later...)...),
		1, "Username expired: fresh_name", "peers --username after the TTL")
}

// testFileLsShowPeers: import Hydrogram's .session file, export it back (same
// schema and rows), and read it with ls, show and peers, as tables and JSON.
func testFileLsShowPeers(t *testing.T, clk clock) {
	tg := clk.tg
	e := env(t)
	in := fixtureFile(t)
	want := dumpRows(t, in)
	r := must(t, tg(t, "", append([]string{"import", "my_account", "--file", in}, e...)...), "import --file")
	if !strings.Contains(r.out, "24 peers") {
		t.Errorf("import output: %q", r.out)
	}
	out := filepath.Join(t.TempDir(), "back.session")
	must(t, tg(t, "", append([]string{"export", "my_account", "--file", out}, e...)...), "export --file")
	if got := dumpRows(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("exported file differs from the imported one:\n got %v\nwant %v", got, want)
	}
	fails(t, tg(t, "", append([]string{"export", "my_account", "--file", out}, e...)...), 1, "--force", "export over an existing file")

	r = must(t, tg(t, "", append([]string{"ls"}, e...)...), "ls")
	if !strings.Contains(r.out, "NAME") || !regexp.MustCompile(`"my_account"\s+2\s+777000123\s+false\s+24\s+-`).MatchString(r.out) {
		t.Errorf("ls table:\n%s", r.out)
	}
	r = must(t, tg(t, "", append([]string{"ls", "--json"}, e...)...), "ls --json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || len(list) != 1 || list[0]["peers"] != 24.0 || list[0]["user_id"] != 777000123.0 {
		t.Errorf("ls --json = %s (%v)", r.out, err)
	}
	r = must(t, tg(t, "", append([]string{"show", "my_account"}, e...)...), "show")
	for _, want := range []string{"dc_id", "api_id     12345", "user_id    777000123", "peers      24", "owner      nobody", "fingerprint"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("show lacks %q:\n%s", want, r.out)
		}
	}
	r = must(t, tg(t, "", append([]string{"show", "my_account", "--json"}, e...)...), "show --json")
	var one map[string]any
	if err := json.Unmarshal([]byte(r.out), &one); err != nil || one["api_id"] != 12345.0 || one["auth_key_id"] == "" {
		t.Errorf("show --json = %s (%v)", r.out, err)
	}
	// The fixture's usernames are fresh at its reference time, and expired
	// storage.UsernameTTL later (Hydrogram's rule).
	r = must(t, tg(t, "", append(append([]string{"peers", "my_account", "--username", "@BotFather"}, e...), fixtureNow(0)...)...), "peers --username")
	if !strings.Contains(r.out, "InputPeerUser(user_id=93372553, access_hash=9223372036854775807)") {
		t.Errorf("peers: %q", r.out)
	}
	fails(t, tg(t, "", append(append([]string{"peers", "my_account", "--username", "@BotFather"}, e...), fixtureNow(9*time.Hour)...)...),
		1, "Username expired: @BotFather", "peers --username, 9 hours after the fixture")
	fails(t, tg(t, "", append([]string{"peers", "my_account", "--id", "999"}, e...)...), 1, "ID not found: 999", "peers miss")
	fails(t, tg(t, "", append([]string{"peers", "my_account", "--phone", "0000"}, e...)...), 1, "Phone number not found: 0000", "phone miss")
}

// testLargeFile imports a 6000-peer file: without a terminal, progress is
// plain lines on stderr.
func testLargeFile(t *testing.T) {
	t.Parallel()
	e := env(t)
	path := filepath.Join(t.TempDir(), "big.session")
	src := filestore.New(path, filestore.Options{})
	ctx := context.Background()
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	var peers []storage.Peer
	for i := int64(1); i <= 6000; i++ {
		peers = append(peers, storage.Peer{ID: i, AccessHash: storage.Some(i), Type: storage.PeerUser, LastUpdateOn: 1795631487})
	}
	if err := src.ImportPeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	r := must(t, tg(t, "", append([]string{"import", "big", "--file", path}, e...)...), "import a large file")
	if !strings.Contains(r.out, "6000 peers") || !strings.Contains(r.err, "100% (6000/6000 peers)") || strings.Contains(r.err, "\r") {
		t.Errorf("import progress: out %q err %q", r.out, r.err)
	}
}

// TestUnlockKilledWorker: a worker process holds a session and is killed; the
// operator sees it in ls and frees it with unlock.
func testUnlockKilledWorker(t *testing.T) {
	t.Parallel()
	e := env(t)
	must(t, tg(t, "", append([]string{"import", "stuck", "--file", fixtureFile(t)}, e...)...), "import")
	w := exec.Command(bin, append([]string{"demo-worker", "--id", "stuck-worker"}, e...)...)
	stdout, _ := w.StdoutPipe()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	got := ""
	for !strings.Contains(got, `"ev":"own"`) {
		n, err := stdout.Read(buf)
		if err != nil {
			t.Fatalf("worker: %v (%q)", err, got)
		}
		got += string(buf[:n])
	}
	_ = w.Process.Signal(syscall.SIGKILL)
	_ = w.Wait()

	r := must(t, tg(t, "", append([]string{"ls"}, e...)...), "ls")
	if !strings.Contains(r.out, "stuck-worker") || !strings.Contains(r.out, "s left") {
		t.Errorf("ls does not show the dead owner:\n%s", r.out)
	}
	// Without a terminal, unlock and rm need --yes and change nothing.
	fails(t, tg(t, "", append([]string{"unlock", "stuck"}, e...)...), 2, "--yes", "unlock without --yes")
	fails(t, tg(t, "", append([]string{"rm", "stuck", "--yes"}, e...)...), 1, "owned by a running worker", "rm while owned")
	r = must(t, tg(t, "", append([]string{"unlock", "stuck", "--yes"}, e...)...), "unlock --yes")
	if !strings.Contains(r.out, "unlocked") || !strings.Contains(r.err, "stuck-worker") {
		t.Errorf("unlock: out %q err %q; want the owner shown and the lease freed", r.out, r.err)
	}
	r = must(t, tg(t, "", append([]string{"show", "stuck", "--json"}, e...)...), "show")
	if strings.Contains(r.out, "stuck-worker") {
		t.Errorf("owner still shown after unlock: %s", r.out)
	}
	fails(t, tg(t, "", append([]string{"rm", "stuck"}, e...)...), 2, "--yes", "rm without --yes")
	must(t, tg(t, "", append([]string{"show", "stuck"}, e...)...), "the session survives a refused rm")
	must(t, tg(t, "", append([]string{"rm", "stuck", "--yes"}, e...)...), "rm --yes")
	fails(t, tg(t, "", append([]string{"show", "stuck"}, e...)...), 1, "no session", "show after rm")
}

// testUnlockJunk: a lease key holding something that is not a lease is
// reported, left alone by unlock, and cleared by unlock --force.
func testUnlockJunk(t *testing.T) {
	t.Parallel()
	e := env(t)
	must(t, tg(t, "", append([]string{"import", "junk", "--string", loadVectors(t)[0]["session_string"].(string)}, e...)...), "import")
	c := redis.NewClient(&redis.Options{Addr: redistest.Require(t).Addr})
	defer c.Close()
	key := e[3] + ":{junk}:lease"
	if err := c.Set(context.Background(), key, "x|{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	fails(t, tg(t, "", append([]string{"unlock", "junk", "--yes"}, e...)...), 1, "--force", "unlock of junk without --force")
	if v, _ := c.Get(context.Background(), key).Result(); v != "x|{not json" {
		t.Errorf("unlock without --force changed the key to %q", v)
	}
	must(t, tg(t, "", append([]string{"unlock", "junk", "--yes", "--force"}, e...)...), "unlock --force")
	if n, _ := c.Exists(context.Background(), key).Result(); n != 0 {
		t.Error("unlock --force left the key")
	}
}

// TestBadInput: every bad input gets a clear message, a non-zero exit and
// changes nothing.
func testBadInput(t *testing.T) {
	t.Parallel()
	e := env(t)
	good := loadVectors(t)[0]["session_string"].(string)
	must(t, tg(t, "", append([]string{"import", "existing", "--string", good}, e...)...), "import")
	unreadable := filepath.Join(t.TempDir(), "locked.session")
	if err := os.WriteFile(unreadable, []byte("not sqlite at all, just text that is long enough to be read as a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown session show", []string{"show", "nope"}, 1, `no session "nope"`},
		{"unknown session export", []string{"export", "nope"}, 1, `no session "nope"`},
		{"unknown session peers", []string{"peers", "nope", "--id", "1"}, 1, `no session "nope"`},
		{"unknown session rm", []string{"rm", "nope", "--yes"}, 1, `no session "nope"`},
		{"malformed string", []string{"import", "bad", "--string", "AQAAMDk*garbage"}, 1, "invalid session string"},
		{"wrong length string", []string{"import", "bad", "--string", good[:300]}, 1, "accepted: 362"},
		{"missing file", []string{"import", "bad", "--file", "/nonexistent/x.session"}, 1, "cannot read /nonexistent/x.session"},
		{"not a session file", []string{"import", "bad", "--file", unreadable}, 1, "not a session file"},
		{"both sources", []string{"import", "bad", "--string", good, "--file", unreadable}, 2, "exactly one"},
		{"overwrite without --force", []string{"import", "existing", "--string", loadVectors(t)[1]["session_string"].(string)}, 1, "--force"},
		{"bad format", []string{"export", "existing", "--format", "xml"}, 2, "unknown --format"},
		{"no session name", []string{"show"}, 2, "want 1 argument"},
		{"peers without a key", []string{"peers", "existing"}, 2, "exactly one of"},
		{"bad redis url", []string{"ls", "--redis", "http://x"}, 2, "unknown scheme"},
	}
	for _, tc := range tests {
		args := tc.args
		if tc.name != "unknown command" && tc.name != "bad redis url" {
			args = append(args, e...)
		} else if tc.name == "bad redis url" {
			args = append(args, "--prefix", "x")
		}
		fails(t, tg(t, "", args...), tc.code, tc.msg, tc.name)
	}
	// Nothing was created or changed.
	r := must(t, tg(t, "", append([]string{"ls", "--json"}, e...)...), "ls")
	var list []map[string]any
	_ = json.Unmarshal([]byte(r.out), &list)
	if len(list) != 1 || list[0]["name"] != "existing" {
		t.Errorf("sessions after bad input: %s", r.out)
	}
	r = must(t, tg(t, "", append([]string{"export", "existing"}, e...)...), "export")
	if strings.TrimSpace(r.out) != good {
		t.Errorf("a refused overwrite changed the session")
	}
	// No Redis at all: a clear message.
	r = tg(t, "", "ls", "--redis", "")
	if r.code != 2 || !strings.Contains(r.err, "REDIS_URL") {
		t.Errorf("no redis: %d %q", r.code, r.err)
	}
}

// testBench runs a very short bench on $REDIS_URL (like every command, it
// takes the server from there without --redis) and checks its JSON (not its
// numbers).
func testBench(t *testing.T) {
	t.Parallel()
	fails(t, tg(t, "", "bench"), 2, "needs a real Redis", "bench without --redis or $REDIS_URL")
	// A server of its own: the memory figure is a used_memory delta, which
	// other tests' traffic on a shared server would blur.
	redistest.Require(t)
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	r := must(t, tgEnv(t, []string{"REDIS_URL=redis://" + srv.Addr}, "", "bench", "--duration", "20ms", "--memory-peers", "2000", "--stream-updates", "200", "--json"), "bench --json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.out), &rows); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, r.out)
	}
	ops := map[string]bool{}
	for _, row := range rows {
		ops[row["op"].(string)] = true
		if row["per_sec"].(float64) <= 0 {
			t.Errorf("bench row %v has no measurement", row)
		}
		if strings.HasPrefix(row["op"].(string), "Lua floor") {
			if us, _ := row["server_usec_per_op"].(float64); us <= 0 {
				t.Errorf("bench row %v: no server time from INFO commandstats", row)
			}
		}
	}
	for _, want := range []string{"raw HGETALL (round trip)", "raw HGET (round trip)", "raw HSET of 1000 new rows into one hash", "raw HSET of 1000 new rows + username and phone indexes",
		"Lua floor: a script that only HSETs those rows and indexes", "UpdatePeers(1), a changed peer", "UpdatePeers(1000), new peers", "UpdatePeers(1000), known peers", "PeerByID",
		"PeerByUsername", "PeerByPhoneNumber", "Session (whole load)", "PeerByID, owner cache",
		"update stream (UpdatePeers + PeerByID)", "update stream, owner cache (first 200 updates)"} {
		if !ops[want] {
			t.Errorf("bench lacks %q", want)
		}
	}
	for _, row := range rows {
		if row["op"] == "update stream (UpdatePeers + PeerByID)" { // with the cache it may be 0

			if trips, _ := row["round_trips_per_op"].(float64); trips <= 0 {
				t.Errorf("bench row %v: no round trips counted per update (%v)", row["op"], trips)
			}
		}
	}
	// A server that holds other keys: loading many peers needs --yes (stdin
	// is not a terminal), and nothing is written before the answer.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "someone-elses-key", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	fails(t, tgEnv(t, []string{"REDIS_URL=redis://" + srv.Addr}, "", "bench", "--duration", "20ms", "--memory-peers", "20000"), 2, "pass --yes",
		"bench --memory-peers 20000 on a server with other keys")
	if n := c.DBSize(ctx).Val(); n != 1 {
		t.Errorf("a refused bench left %d keys; want only the one that was there", n)
	}
}

// TestCLI runs the CLI tests in parallel against the built binary, then
// checks that nothing any of them printed contains an auth key's bytes in
// hex or base64.
func TestCLI(t *testing.T) {
	t.Run("group", func(t *testing.T) {
		for name, fn := range map[string]func(*testing.T){
			"DemoEmbedded": testDemoEmbedded, "DemoRealRedis": testDemoRealRedis, "Strings": testStrings,
			"UnlockKilledWorker": testUnlockKilledWorker, "UnlockJunk": testUnlockJunk, "BadInput": testBadInput,
			"Bench": testBench, "LargeFile": testLargeFile,
			"Finding1ForceKeepsSession": testFinding1ForceKeepsSession, "Finding2LiteralPaths": testFinding2LiteralPaths,
			"Finding3FileModes": testFinding3FileModes, "Finding4NothingLeftBehind": testFinding4NothingLeftBehind,
			"Finding5Secrets": testFinding5Secrets, "Finding6OneBadEntry": testFinding6OneBadEntry, "Finding7TLS": testFinding7TLS,
			"OperatorACL": testOperatorACL, "Workers": testWorkers,
		} {
			t.Run(name, fn)
		}
		for name, fn := range timeSensitive {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				fn(t, clock{})
			})
		}
	})
	var keys [][]byte
	for _, v := range loadVectors(t) {
		k, _ := hex.DecodeString(v["auth_key_hex"].(string))
		keys = append(keys, k)
	}
	k, _ := hex.DecodeString("13231a5a10cdac53c398080fed31b369d4a31c8cf75f48de69911ce46d4adac1") // the .session fixture's key
	keys = append(keys, k)
	outputsMu.Lock()
	defer outputsMu.Unlock()
	all := strings.Join(outputs, "\n")
	for _, k := range keys {
		for _, form := range []string{hex.EncodeToString(k[3:19]), strings.ToUpper(hex.EncodeToString(k[3:19])),
			base64.StdEncoding.EncodeToString(k[3:27]), base64.RawURLEncoding.EncodeToString(k[3:27])} {
			if strings.Contains(all, form) {
				t.Errorf("an output contains auth key bytes (%s…)", form[:8])
			}
		}
	}
	if len(outputs) == 0 {
		t.Error("no output collected: the check saw nothing")
	}
}
