package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

// TestRefusedWriteEndsLease: the lease key changes hands behind the owner's
// back without the owner hearing of it (as after a failover that lost its
// lease and let another worker in). The owner's next fenced write is refused
// with LEASELOST, and by the time the error reaches the caller the lease has
// ended: Lost has fired and its Context is cancelled, long before the
// owner's own deadline (TTL 1 min).
func TestRefusedWriteEndsLease(t *testing.T) {
	t.Parallel()
	writes := []struct {
		name  string
		write func(context.Context, *Store) error
	}{
		{"SetDate", func(ctx context.Context, s *Store) error { return s.SetDate(ctx, 1) }},
		{"SetAuthKey", func(ctx context.Context, s *Store) error { return s.SetAuthKey(ctx, make([]byte, 256)) }},
		{"UpdatePeers", func(ctx context.Context, s *Store) error {
			return s.UpdatePeers(ctx, []storage.Peer{{ID: 7, AccessHash: storage.Some[int64](7), Type: storage.PeerUser}})
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := realBackend().client(t)
			s := leaseStore(t, c, "refused-"+redistest.TempName(t), "acct", lock.Options{TTL: time.Minute})
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			l := s.Lease()
			// Another worker's value, with the lease's TTL (no revocation
			// message: the owner learns only from Redis's refusal).
			if err := c.Set(ctx, s.LeaseKey(), "other-token|{}", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			err := w.write(ctx, s)
			select {
			case <-l.Lost():
			default:
				t.Fatalf("%s refused (%v), but Lost had not fired when the error returned", w.name, err)
			}
			if !errors.Is(err, lock.ErrLeaseLost) {
				t.Errorf("%s = %v; want ErrLeaseLost", w.name, err)
			}
			if l.Context().Err() == nil || !errors.Is(l.Valid(), lock.ErrLeaseLost) {
				t.Errorf("after the refusal: Context %v, Valid %v", l.Context().Err(), l.Valid())
			}
			if v := c.Get(ctx, s.LeaseKey()).Val(); v != "other-token|{}" {
				t.Errorf("the other worker's lease was touched: %q", v)
			}
		})
	}
}

// TestFencedWriteOnReplicaIsRefused: the owner's connection lands on an
// empty replica (a killed primary restarted as a replica at its old
// address). A fenced write there is refused with READONLY before the script
// runs: not "lease lost", and the lease is not ended by it.
func TestFencedWriteOnReplicaIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Require(t)
	other, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	replica, err := redistest.Start("--replicaof", "127.0.0.1", strconv.Itoa(other.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Stop()
	if err := redistest.WaitReplicaSynced(ctx, replica.Addr, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	proxy := redistest.NewProxy(t, srv.Addr)
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1})
	defer c.Close()
	s := leaseStore(t, c, "onreplica-"+redistest.TempName(t), "acct", lock.Options{TTL: time.Minute})
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	proxy.Retarget(replica.Addr)
	err = s.SetDate(ctx, 1)
	if err == nil || errors.Is(err, lock.ErrLeaseLost) || !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("a fenced write on a replica = %v; want READONLY, not lease lost", err)
	}
	if verr := s.Lease().Valid(); verr != nil {
		t.Errorf("the lease after a write refused by a replica: %v", verr)
	}
}
