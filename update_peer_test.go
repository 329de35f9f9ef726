package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestSinglePeerScriptMatchesBatch holds lua/update_peer.lua (one peer,
// written straight for speed) to lua/update_peers.lua (any batch): the same
// random single-peer arguments, valid and not, go to both scripts on two
// sessions of the same server, and after every call the replies and every
// row and index entry of the two sessions must be equal. The arguments mix
// new and known ids, usernames and phones moving between peers, older and
// newer timestamps (ties included), min peers, duplicate names, malformed
// fields, and replays of a call's write id.
func TestSinglePeerScriptMatchesBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		b     backend
		seeds uint64
	}{
		{miniBackend(), 1}, // gopher-lua is slow (48 s for three seeds under -race in CI)
		{realBackend(), 3}, // the run that counts
	} {
		t.Run(tc.b.name, func(t *testing.T) {
			t.Parallel()
			c := tc.b.client(t)
			for seed := uint64(1); seed <= tc.seeds; seed++ {
				checkSinglePeerScript(t, c, seed, 2000)
			}
		})
	}
}

func checkSinglePeerScript(t *testing.T, c redis.UniversalClient, seed uint64, ops int) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 7))
	prefix := "single-" + strconv.FormatUint(seed, 10) + "-" + t.Name()
	var k [2]keys
	for i := range k {
		s, err := New(c, fmt.Sprint(i), Options{Mode: Unfenced, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Open(ctx); err != nil {
			t.Fatal(err)
		}
		k[i] = s.keys
		t.Cleanup(func() { _ = s.Delete(ctx) })
	}
	pick := func(pool []string) string { return pool[r.IntN(len(pool))] }
	ids := []string{"1", "2", "3", "-5", "-1000000000007", "777000"}
	types := []string{"user", "bot", "group", "channel", "supergroup"}
	names := []string{"alpha", "beta", "gamma", "delta", "eps_1", "z9"}
	phones := []string{"15550001", "15550002", "15550003", "15550004"}
	arg := func() string {
		f := []string{pick(ids), pick(types), "", "", "", "", strconv.Itoa(100 + r.IntN(8))}
		if r.IntN(4) > 0 {
			f[2] = strconv.FormatInt(r.Int64()-r.Int64(), 10)
		}
		var ns []string
		for range r.IntN(4) {
			ns = append(ns, pick(names))
		}
		f[3] = strings.Join(ns, " ")
		if r.IntN(2) == 0 {
			f[4] = pick(phones)
		}
		if r.IntN(3) == 0 {
			f[5] = "1"
		}
		if r.IntN(40) == 0 { // malformed: every script must refuse it alike, writing nothing
			f[r.IntN(len(f))] = pick([]string{"-", "x|y", "UPPER", "robot", "1e5", "", "999999999999999999999"})
		}
		return strings.Join(f, "|")
	}
	reply := func(cl call) string {
		v, err := cl.run(ctx, c).Result()
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(v)
	}
	var last [2]call
	for op := range ops {
		var cl [2]call
		if op > 0 && r.IntN(20) == 0 { // a client's retry: the same write id again
			cl = last
		} else {
			a := arg()
			for i := range cl {
				cl[i] = call{scriptUpdatePeers, []string{k[i].session, k[i].peers, k[i].usernames, k[i].phones, k[i].lease, k[i].applied},
					[]any{strconv.Itoa(LayoutVersion), "", writeID(), a}}
			}
			cl[0].script = scriptUpdatePeer
		}
		last = cl
		if got, want := reply(cl[0]), reply(cl[1]); got != want {
			t.Fatalf("seed %d op %d, argument %q: update_peer.lua replied %s, update_peers.lua %s", seed, op, cl[0].args[3], got, want)
		}
		for _, key := range []func(keys) string{
			func(k keys) string { return k.peers }, func(k keys) string { return k.usernames }, func(k keys) string { return k.phones },
		} {
			got, want := c.HGetAll(ctx, key(k[0])).Val(), c.HGetAll(ctx, key(k[1])).Val()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d op %d, argument %q: %s holds %v after update_peer.lua, %v after update_peers.lua",
					seed, op, cl[0].args[3], strings.TrimPrefix(key(k[0]), k[0].base), got, want)
			}
		}
	}
	// The single-peer script takes exactly one peer.
	two := call{scriptUpdatePeer, []string{k[0].session, k[0].peers, k[0].usernames, k[0].phones, k[0].lease, k[0].applied},
		[]any{strconv.Itoa(LayoutVersion), "", writeID(), "1|user|||||100", "2|user|||||100"}}
	if got := reply(two); !strings.Contains(got, "BADARG") {
		t.Fatalf("update_peer.lua with two peers replied %s, want BADARG", got)
	}
}
