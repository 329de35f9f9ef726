package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/storage"
)

// bigSession writes a .session file of n peers (80% with a username, 30%
// with a phone) for account user.
func bigSession(t *testing.T, path string, user int64, n int) {
	t.Helper()
	ctx := context.Background()
	src := filestore.New(path, filestore.Options{})
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.SetSession(ctx, storage.Session{DCID: storage.Some(2), APIID: storage.Some[int64](1), UserID: storage.Some(user),
		AuthKey: bytesOf(byte(user), storage.AuthKeySize), Date: 1}); err != nil {
		t.Fatal(err)
	}
	peers := make([]storage.Peer, 0, n)
	for i := range int64(n) {
		p := storage.Peer{ID: 1000 + i, AccessHash: storage.Some(i), Type: storage.PeerUser, LastUpdateOn: 1795631487}
		if i%5 != 0 {
			p.Usernames = []string{fmt.Sprintf("user%d_%d", user, i)}
		}
		if i%10 < 3 {
			p.PhoneNumber = fmt.Sprintf("%d%09d", user, i)
		}
		peers = append(peers, p)
	}
	if err := src.ImportPeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// TestImportKilled (issue 24): `import NAME --file B --force` is killed
// (SIGKILL) at random points while it replaces session A with a 100k-peer
// session B. After each kill the session is A or B whole (its user id, auth
// key and peer count agree), and every key under the prefix has a TTL except
// the session's own and the registry: a crashed import's staged keys expire.
// rm removes the staged keys too.
func TestImportKilled(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	prefix := "kill-" + redistest.TempName(t)
	e := []string{"--redis", "redis://" + srv.Addr, "--prefix", prefix}
	dir := t.TempDir()
	const peersB = 100_000
	a, b := filepath.Join(dir, "a.session"), filepath.Join(dir, "b.session")
	bigSession(t, a, 1, 10)
	bigSession(t, b, 2, peersB)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	tag := prefix + ":{big}:"
	own := map[string]bool{tag + "s": true, tag + "p": true, tag + "u": true, tag + "ph": true, tag + "w": true, prefix + ":sessions": true}

	must(t, tg(t, "", append([]string{"import", "big", "--file", a}, e...)...), "import A")
	start := time.Now()
	must(t, tg(t, "", append([]string{"import", "big", "--file", b, "--force"}, e...)...), "import B")
	full := time.Since(start)
	t.Logf("a whole import of %d peers took %v", peersB, full.Round(time.Millisecond))

	check := func(trial int) (string, int) {
		t.Helper()
		var noTTL []string
		staged := 0
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			if strings.Contains(k, ":stage:") {
				staged++
			}
			if own[k] {
				continue
			}
			if c.PTTL(ctx, k).Val() == -1*time.Nanosecond || c.TTL(ctx, k).Val() == -1 {
				noTTL = append(noTTL, k)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		if len(noTTL) > 0 {
			t.Errorf("trial %d: keys without a TTL: %v", trial, noTTL)
		}
		user := c.HGet(ctx, tag+"s", "user_id").Val()
		n := c.HLen(ctx, tag+"p").Val()
		switch {
		case user == "1" && n == 10:
			return "A", staged
		case user == "2" && n == peersB:
			return "B", staged
		}
		t.Errorf("trial %d: a mixed session: user_id %q with %d peers", trial, user, n)
		return "mixed", staged
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 24))
	seen := map[string]int{}
	for trial := range 12 {
		src := a
		if trial%2 == 1 {
			src = b
		}
		cmd := exec.Command(bin, append([]string{"import", "big", "--file", src, "--force"}, e...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A random point of the import (of B: most of it is staging peers;
		// now and then after it finished).
		time.Sleep(time.Duration(rng.Int64N(int64(full) * 13 / 10)))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		got, staged := check(trial)
		seen[got]++
		t.Logf("trial %d: killed importing %s; the session is %s; %d staged keys left (with TTLs)", trial, filepath.Base(src), got, staged)
	}
	t.Logf("after the kills: %v", seen)
	must(t, tg(t, "", append([]string{"rm", "big", "--yes"}, e...)...), "rm")
	var left []string
	iter := c.Scan(ctx, 0, tag+"*", 1000).Iterator()
	for iter.Next(ctx) {
		left = append(left, iter.Val())
	}
	if len(left) > 0 {
		t.Errorf("after rm, keys of the session remain: %v", left)
	}
}

// TestRegistryRebuild: the registry key is deleted; ls shows nothing;
// `registry rebuild` registers every session whose data is there again.
func TestRegistryRebuild(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	prefix := "rebuild-" + redistest.TempName(t)
	e := []string{"--redis", "redis://" + srv.Addr, "--prefix", prefix}
	dir := t.TempDir()
	for _, n := range []string{"one", "two", "three"} {
		p := filepath.Join(dir, n+".session")
		bigSession(t, p, 1, 3)
		must(t, tg(t, "", append([]string{"import", n, "--file", p}, e...)...), "import "+n)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	if err := c.Del(context.Background(), prefix+":sessions").Err(); err != nil {
		t.Fatal(err)
	}
	if r := must(t, tg(t, "", append([]string{"ls", "--json"}, e...)...), "ls"); strings.TrimSpace(r.out) != "[]" {
		t.Fatalf("ls after the registry was deleted: %s", r.out)
	}
	r := must(t, tg(t, "", append([]string{"registry", "rebuild"}, e...)...), "registry rebuild")
	if !strings.Contains(r.out, "3 session(s) registered again") {
		t.Errorf("registry rebuild printed %q", r.out)
	}
	r = must(t, tg(t, "", append([]string{"ls"}, e...)...), "ls after rebuild")
	for _, n := range []string{"one", "two", "three"} {
		if !strings.Contains(r.out, n) {
			t.Errorf("ls after rebuild lacks %s:\n%s", n, r.out)
		}
	}
	fails(t, tg(t, "", append([]string{"registry"}, e...)...), 2, "registry rebuild", "registry without a subcommand")
}

// TestURLPasswordsNeverPrinted (issue 24): passwords with '#', '/', '?',
// '@' and '%' in URLs of every scheme, parsable or not, right or wrong: no
// 4-character piece of the password (raw or percent-decoded) appears in
// stdout or stderr. (The server has no password: a URL that parses
// connects, or is refused for its password; either way nothing of it is
// printed.)
func TestURLPasswordsNeverPrinted(t *testing.T) {
	t.Parallel()
	srv := redistest.Require(t)
	port := srv.Port
	cases := []struct{ url, password string }{
		{fmt.Sprintf("redis://:hunter2#abc@127.0.0.1:%d/0", port), "hunter2#abc"},
		{fmt.Sprintf("redis://:Pa55/w0rdQQ@127.0.0.1:%d", port), "Pa55/w0rdQQ"},
		{fmt.Sprintf("redis://user:pa?ss=wqrd@127.0.0.1:%d", port), "pa?ss=wqrd"},
		{fmt.Sprintf("redis://:p@ss@wqrd9@127.0.0.1:%d", port), "p@ss@wqrd9"},
		{fmt.Sprintf("redis://:100%%zzsecret@127.0.0.1:%d", port), "100%zzsecret"},
		{fmt.Sprintf("redis://:s3cr%%2Fet99@127.0.0.1:%d", port), "s3cr%2Fet99"},
		{fmt.Sprintf("redis-cluster://:clu#zq42x@127.0.0.1:%d", port), "clu#zq42x"},
		{fmt.Sprintf("redis-sentinel://:sen/qq77x@127.0.0.1:%d?master_name=m", port), "sen/qq77x"},
		{fmt.Sprintf("rediss://:tl?s#qzx9@127.0.0.1:%d", port), "tl?s#qzx9"},
	}
	for _, tc := range cases {
		for _, how := range []string{"flag", "env"} {
			var r result
			if how == "flag" {
				r = tg(t, "", "ls", "--redis", tc.url)
			} else {
				r = tgEnv(t, []string{"REDIS_URL=" + tc.url}, "", "ls")
			}
			forms := []string{tc.password}
			if dec, err := url.PathUnescape(tc.password); err == nil {
				forms = append(forms, dec)
			}
			for _, f := range forms {
				for i := 0; i+4 <= len(f); i++ {
					piece := f[i : i+4]
					if strings.Contains(r.out, piece) || strings.Contains(r.err, piece) {
						t.Errorf("%s (%s): %q of the password printed:\nstdout %q\nstderr %q", redactForTest(tc.url), how, piece, r.out, r.err)
						break
					}
				}
			}
		}
	}
}

func redactForTest(u string) string {
	return u[:strings.Index(u, "://")+3] + "...@" + u[strings.LastIndex(u, "@")+1:]
}

// TestKeyringMaterialNeverPrinted (issue 24): a keyring line (the key
// itself) given where the keyring's path belongs, in $TGSESSION_KEYRING or
// --keyring, is never printed by any command, -h included; ls fails (exit 2)
// instead of listing every session as unreadable.
func TestKeyringMaterialNeverPrinted(t *testing.T) {
	t.Parallel()
	e := env(t)
	line, err := keyring.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := strings.Cut(line, " ")
	for _, cmd := range [][]string{{"ls"}, {"show", "x"}, {"export", "x"}, {"rekey", "--all"}, {"ls", "-h"}, {"import", "x", "--string", "-"}} {
		for _, how := range []string{"env", "flag"} {
			var r result
			args := append(append([]string{}, cmd...), e...)
			if how == "env" {
				r = tgEnv(t, []string{"TGSESSION_KEYRING=" + line}, "", args...)
			} else {
				r = tg(t, "", append(args, "--keyring", line)...)
			}
			for i := 0; i+6 <= len(secret); i += 3 {
				if piece := secret[i : i+6]; strings.Contains(r.out+r.err, piece) {
					t.Errorf("%v (%s): a piece of the key printed:\nstdout %q\nstderr %q", cmd, how, r.out, r.err)
					break
				}
			}
			if cmd[0] == "ls" && len(cmd) == 1 && r.code != 2 {
				t.Errorf("ls with a keyring that does not load: exit %d; want 2", r.code)
			}
		}
	}
}

// TestKeygenIDsDistinct: two keys made on one (fake) day get distinct ids
// that both name the day.
func TestKeygenIDsDistinct(t *testing.T) {
	t.Parallel()
	ids := map[string]bool{}
	for range 2 {
		line := strings.TrimSpace(must(t, tg(t, "", "keygen", "--now", "2026-03-01T12:00:00Z"), "keygen").out)
		id, _, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(id, "k20260301-") || !keyring.ValidID(id) {
			t.Errorf("keygen id %q: want k20260301-<suffix>, a valid id", id)
		}
		ids[id] = true
	}
	if len(ids) != 2 {
		t.Errorf("two keygen calls on one day made the same id: %v", ids)
	}
}

// TestImportFromFIFO: --file naming a FIFO is refused at once (reading it
// would block until some writer came).
func TestImportFromFIFO(t *testing.T) {
	t.Parallel()
	e := env(t)
	fifo := filepath.Join(t.TempDir(), "x.session")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	fails(t, tg(t, "", append([]string{"import", "x", "--file", fifo}, e...)...), 1, "not a regular file", "import from a FIFO")
}
