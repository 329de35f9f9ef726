package redisutil

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Counter is a go-redis hook that counts what a client sends: commands
// (each command of a pipeline counts) and round trips (a command sent alone
// or a whole pipeline counts one). Dials are not counted.
type Counter struct {
	commands, roundTrips atomic.Int64
}

// Commands returns the commands sent so far.
func (c *Counter) Commands() int64 { return c.commands.Load() }

// RoundTrips returns the round trips made so far.
func (c *Counter) RoundTrips() int64 { return c.roundTrips.Load() }

// DialHook implements redis.Hook.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.commands.Add(1)
		c.roundTrips.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.commands.Add(int64(len(cmds)))
		c.roundTrips.Add(1)
		return next(ctx, cmds)
	}
}
