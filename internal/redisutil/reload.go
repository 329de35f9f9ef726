package redisutil

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

var lastReload sync.Map // *redis.ClusterClient -> time.Time

// ReloadOnFailover asks a ClusterClient to refresh its slot map after an error
// that a failover causes (a dead node, CLUSTERDOWN, a replica that is not
// primary yet), at most every 250 ms per client. go-redis refreshes the map by
// itself on MOVED, but otherwise only every ClusterStateReloadInterval
// (default 60 s): without this a client kept failing for ~58 s after a
// primary died although its replica was promoted in ~2 s. Other clients and
// other errors are ignored.
func ReloadOnFailover(client redis.UniversalClient, err error) {
	cc, ok := client.(*redis.ClusterClient)
	if !ok || err == nil || !FailoverError(err) {
		return
	}
	now := time.Now()
	if v, ok := lastReload.Load(cc); ok && now.Sub(v.(time.Time)) < 250*time.Millisecond {
		return
	}
	lastReload.Store(cc, now)
	go cc.ReloadState(context.Background())
}

// FailoverError reports whether err is what a client sees while a primary
// fails over: connection errors, CLUSTERDOWN, TRYAGAIN, READONLY, LOADING,
// MASTERDOWN.
func FailoverError(err error) bool {
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "READONLY", "LOADING", "MASTERDOWN"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}
