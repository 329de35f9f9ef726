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
