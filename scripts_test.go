package redisstore

import (
	"context"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tgsession/redisstore/storage"
)

// TestScriptsHaveNoConstantConditions keeps a gopher-lua pitfall out of
// lua/*.lua: gopher-lua v1.1.1 (miniredis's Lua) miscompiles an `if false`
// or `if nil` block inside a generic for loop (`for n in string.gmatch(...)`).
// In four-line reproductions the block's body ran three times although the
// condition was false, or the chunk failed with "index out of range"; the
// same block in a numeric for or outside a loop, and `if true`, ran right. A
// mutant of update_peer.lua with one hung miniredis. Real Redis is not
// affected, so only the miniredis runs would go wrong; a script needs no
// constant condition anyway.
func TestScriptsHaveNoConstantConditions(t *testing.T) {
	t.Parallel()
	constant := regexp.MustCompile(`\b(if|elseif|while)\s+(false|nil)\s+(then|do)\b`)
	names, err := fs.Glob(luaFS, "lua/*.lua")
	if err != nil || len(names) < 9 {
		t.Fatalf("embedded scripts: %v %v", names, err)
	}
	for _, name := range names {
		src, err := luaFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "--")
			if constant.MatchString(code) {
				t.Errorf("%s:%d: a constant condition (%q): gopher-lua miscompiles these; remove the block instead", name, i+1, strings.TrimSpace(code))
			}
		}
	}
}

// TestWriteIDScoresItsTime: a write id starts with the client's time, and
// lua/guard.lua's record_applied scores the id with exactly that time (the
// set of applied writes is trimmed oldest first by it).
func TestWriteIDScoresItsTime(t *testing.T) {
	t.Parallel()
	format := regexp.MustCompile(`^(\d+\.\d{6})-[A-Za-z0-9_-]{16}$`)
	for range 1000 {
		if id := writeID(); !format.MatchString(id) {
			t.Fatalf("write id %q: want <seconds>.<six digits>-<16 random characters>", id)
		}
	}
	c := miniBackend().client(t)
	ctx := context.Background()
	s, err := New(c, "wid", Options{Mode: Unfenced, Prefix: "wid"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.UpdatePeers(ctx, []storage.Peer{{ID: int64(1 + i), Type: storage.PeerUser}}); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := c.ZRangeWithScores(ctx, s.keys.applied, 0, -1).Result()
	if err != nil || len(ids) < 5 {
		t.Fatalf("applied writes: %v %v", ids, err)
	}
	for _, z := range ids {
		m := format.FindStringSubmatch(z.Member.(string))
		if m == nil {
			t.Fatalf("applied write id %q is not a write id", z.Member)
		}
		if want, _ := strconv.ParseFloat(m[1], 64); z.Score != want {
			t.Errorf("write id %q scored %v, want its time %v", z.Member, z.Score, want)
		}
	}
}
