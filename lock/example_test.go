package lock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/lock"
)

func ExampleAcquire() {
	ctx := context.Background()
	m := miniredis.NewMiniRedis()
	_ = m.Start()
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer client.Close()

	// A worker waits (as long as ctx allows) until it owns the session.
	lease, err := lock.Acquire(ctx, client, "tgsession:{my_account}:lease", lock.Options{TTL: 15 * time.Second, WorkerID: "worker-1"})
	if err != nil {
		panic(err)
	}

	// Watchdog: stop using the session the moment ownership is in doubt.
	go func() {
		<-lease.Lost()
		fmt.Println("lost the session: stop the client now")
	}()

	// Anyone can see who owns it.
	info, _ := lock.Inspect(ctx, client, "tgsession:{my_account}:lease")
	fmt.Println(info.Held, info.Owner.WorkerID)

	// A second worker cannot take it while it is held.
	_, err = lock.TryAcquire(ctx, client, "tgsession:{my_account}:lease", lock.Options{})
	fmt.Println(errors.Is(err, lock.ErrHeld))

	// Release hands it over at once to a waiting worker.
	fmt.Println(lease.Release(ctx))
	// Output:
	// true worker-1
	// true
	// <nil>
}

func ExampleRevoke() {
	ctx := context.Background()
	m := miniredis.NewMiniRedis()
	_ = m.Start()
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer client.Close()
	key := "tgsession:{stuck_account}:lease"

	owner, err := lock.TryAcquire(ctx, client, key, lock.Options{TTL: 15 * time.Second, WorkerID: "worker-1"})
	if err != nil {
		panic(err)
	}

	// The operator revokes what Inspect showed. The owner hears it, stops
	// trusting its lease, then frees the key; the delay is the longest
	// that can take (an owner that never hears is outlived by the key).
	info, _ := lock.Inspect(ctx, client, key)
	delay, ok, _ := lock.Revoke(ctx, client, key, info)
	fmt.Println(ok, delay > 0 && delay <= 15*time.Second)

	<-owner.Lost()
	fmt.Println(errors.Is(context.Cause(owner.Context()), lock.ErrRevoked))

	// A standby gets the session once the owner acknowledged.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	standby, err := lock.Acquire(wctx, client, key, lock.Options{WorkerID: "worker-2"})
	fmt.Println(err == nil && standby.Owner().WorkerID == "worker-2")
	// Output:
	// true true
	// true
	// true
}
