// Package redisutil holds what the store and the lease share about go-redis
// topologies: running a write and Redis's WAIT on the same connection, and
// refreshing a ClusterClient's slot map after a failover error.
//
// Do runs a write and Redis's WAIT on the same connection, which is
// what WAIT needs ("the writes of the current connection"), on every go-redis
// client type: a pipeline on a single client or a Sentinel failover client
// uses one connection to the primary; on a ClusterClient the pipeline runs on
// the primary that owns the key's slot (a keyless WAIT sent through the
// cluster client could go to another node).
package redisutil

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pipeliner is what Do needs: a client that makes pipelines.
type Pipeliner interface {
	Pipeline() redis.Pipeliner
}

// Primary returns where key's commands go for a pipeline that ends in WAIT
// (which must run on the write's connection): the client itself, or on a
// ClusterClient the primary serving key's slot now (from its cached slot
// map). addr names that primary, "" for a client that is not a cluster.
func Primary(ctx context.Context, client redis.UniversalClient, key string) (target Pipeliner, addr string, err error) {
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		return client, "", nil
	}
	node, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return nil, "", err
	}
	return node, node.Options().Addr, nil
}

// Do queues the write with queue, then WAIT replicas timeout, and executes
// both in one pipeline on key's primary. It returns the write's error (the
// first failing command queued by queue), else the number of replicas that
// confirmed. A NOSCRIPT error is returned as is; the caller retries with EVAL.
func Do(ctx context.Context, client redis.UniversalClient, key string, replicas int, timeout time.Duration,
	queue func(redis.Pipeliner)) (int, error) {
	target, _, err := Primary(ctx, client, key)
	if err != nil {
		return 0, err
	}
	pipe := target.Pipeline()
	queue(pipe)
	wait := pipe.Do(ctx, "WAIT", replicas, timeout.Milliseconds())
	cmds, err := pipe.Exec(ctx)
	for _, c := range cmds[:len(cmds)-1] {
		if cerr := c.Err(); cerr != nil && !errors.Is(cerr, redis.Nil) {
			return 0, cerr
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	n, err := wait.Int()
	if err != nil {
		return 0, fmt.Errorf("WAIT: %w", err)
	}
	return n, nil
}

// replicated remembers the clients through which a primary once reported an
// online replica (client -> true).
var replicated sync.Map

// NoteReplicas records that a primary reached through client reported n
// online replicas (INFO replication). Once any reported one, Replicated
// stays true for that client: its topology keeps replicas, and a primary
// seen without any is one whose replica is down, or one about to be
// demoted (a Sentinel that promotes its replica over it discards what it
// accepted alone), never one whose lone word is durable.
func NoteReplicas(client redis.UniversalClient, n int) {
	if n > 0 {
		replicated.Store(client, true)
	}
}

// Replicated reports whether a primary reached through client ever reported
// an online replica (NoteReplicas).
func Replicated(client redis.UniversalClient) bool {
	_, ok := replicated.Load(client)
	return ok
}
