// Command scaleworker is one fleet worker process of fleet's scale test:
//
//	scaleworker <redis addr> <prefix> <worker id>
//
// It prints "ack <session> <value>" for every acknowledged write and
// "stat <goroutines> <owned>" twice a second; handlers stay idle (no writes)
// until SIGUSR1, so the idle cost can be measured first; SIGTERM hands the
// sessions back and exits.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/fleet"
	"github.com/tgsession/redisstore/lock"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: scaleworker <redis addr> <prefix> <worker id>")
		return 2
	}
	client := redis.NewClient(&redis.Options{Addr: args[0], ClientName: args[2]})
	defer client.Close()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	emit := func(line string) {
		mu.Lock()
		fmt.Fprintln(out, line)
		out.Flush()
		mu.Unlock()
	}
	var writing atomic.Bool
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			writing.Store(true)
		}
	}()
	handler := func(ctx context.Context, st *redisstore.Store) error {
		v, err := st.Date(ctx)
		if err != nil {
			return err
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			if !writing.Load() {
				continue
			}
			if err := st.SetDate(ctx, v+1); err != nil {
				return nil
			}
			v++
			emit(fmt.Sprintf("ack %s %d", st.Name(), v))
		}
	}
	w, err := fleet.New(client, fleet.Options{WorkerID: args[2], Capacity: 400, Prefix: args[1], Interval: 250 * time.Millisecond,
		Lease: lock.Options{TTL: 2 * time.Second}}, handler)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			emit(fmt.Sprintf("stat %d %d", runtime.NumGoroutine(), len(w.Owned())))
		}
	}()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
