package redisutil

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Script is a Lua script that must run on a primary only: the lease's
// scripts and every fenced write. It is sent with Redis 7's "#!lua" shebang
// line (no flags), so a read-only replica refuses it with READONLY before it
// runs, instead of answering from stale or empty data (a renewal sent to a
// replica must never read as "the lease is gone"). A server that cannot
// compile the shebang (Redis before 7, miniredis) gets the script without it:
// its first compile error is remembered per client (Rejected), so no probe
// round trip is spent.
type Script struct {
	flagged, plain *redis.Script
}

// NewScript returns the script src in both forms.
func NewScript(src string) *Script {
	return &Script{flagged: redis.NewScript("#!lua\n" + src), plain: redis.NewScript(src)}
}

// For returns the form of the script that client's server runs: the flagged
// one unless the server failed to compile it before (Rejected).
func (s *Script) For(client redis.Scripter) *redis.Script {
	if v, ok := plain.Load(client); ok && v.(bool) {
		return s.plain
	}
	return s.flagged
}

// Run runs the script on client (EVALSHA, then EVAL on NOSCRIPT, then the
// plain form if the server cannot compile the shebang).
func (s *Script) Run(ctx context.Context, client redis.Scripter, keys []string, args ...any) *redis.Cmd {
	cmd := s.For(client).Run(ctx, client, keys, args...)
	if Rejected(client, cmd.Err()) {
		cmd = s.plain.Run(ctx, client, keys, args...)
	}
	return cmd
}

var plain sync.Map // redis.Scripter -> true: its server cannot compile "#!lua"

// Rejected reports whether err is a server's failure to compile the
// shebang line (Redis before 7, miniredis), and then remembers that client's
// server takes the plain form: the caller sends the script again with For.
func Rejected(client redis.Scripter, err error) bool {
	var reply redis.Error
	if err == nil || !errors.As(err, &reply) {
		return false
	}
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "compil") || !strings.Contains(msg, "#") {
		return false
	}
	plain.Store(client, true)
	return true
}

// Load loads the form of the script that client's server compiles into its
// script cache (SCRIPT LOAD), so that EVALSHA finds it.
func (s *Script) Load(ctx context.Context, client redis.Scripter) *redis.StringCmd {
	cmd := s.For(client).Load(ctx, client)
	if Rejected(client, cmd.Err()) {
		cmd = s.plain.Load(ctx, client)
	}
	return cmd
}

// NewReadScript returns a script that only reads, flagged "no-writes" (a
// replica may run it; the server refuses any write in it).
func NewReadScript(src string) *Script {
	return &Script{flagged: redis.NewScript("#!lua flags=no-writes\n" + src), plain: redis.NewScript(src)}
}
