package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
)

// MasterName is the name the Sentinels monitor.
const MasterName = "mymaster"

// Sentinel is a primary, one replica and three Sentinels (quorum 2,
// down-after 1000 ms), all on loopback.
type Sentinel struct {
	Primary   *Server
	Replica   *Server
	Sentinels []*Server
}

// SentinelAddrs returns the Sentinels' addresses, for
// redis.UniversalOptions{Addrs: ..., MasterName: MasterName}.
func (s *Sentinel) SentinelAddrs() []string { return addrs(s.Sentinels) }

func addrs(servers []*Server) []string {
	out := make([]string, 0, len(servers))
	for _, x := range servers {
		out = append(out, x.Addr)
	}
	return out
}

// Client returns a go-redis failover client for the topology.
func (s *Sentinel) Client() redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{Addrs: s.SentinelAddrs(), MasterName: MasterName})
}

// Stop stops every process of the topology.
func (s *Sentinel) Stop() {
	for _, x := range append([]*Server{s.Primary, s.Replica}, s.Sentinels...) {
		if x != nil {
			x.Stop()
		}
	}
}

// PrimaryAddr asks the Sentinels which address is the primary now.
func (s *Sentinel) PrimaryAddr(ctx context.Context) (string, error) {
	var lastErr error
	for _, x := range s.Sentinels {
		if !x.Alive() {
			continue
		}
		c := redis.NewSentinelClient(&redis.Options{Addr: x.Addr})
		addr, err := c.GetMasterAddrByName(ctx, MasterName).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1], nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("redistest: no sentinel knows the primary: %v", lastErr)
}

func cmdClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
}

// waitFor polls cond every 50 ms until it returns true or timeout passes.
func waitFor(timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return nil
		}
		last = detail
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redistest: %s not reached after %v (%s)", what, timeout, last)
}

func infoField(ctx context.Context, addr, section, field string) string {
	c := cmdClient(addr)
	defer c.Close()
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	return redisutil.InfoField(info, field)
}

// WaitReplicaSynced waits until the server at addr is a replica with its
// link to the primary up.
func WaitReplicaSynced(ctx context.Context, addr string, timeout time.Duration) error {
	return waitFor(timeout, "replica "+addr+" in sync", func() (bool, string) {
		v := infoField(ctx, addr, "replication", "master_link_status")
		return v == "up", "master_link_status=" + v
	})
}

// StartSentinel starts a primary, a replica and three Sentinels and waits
// until the Sentinels agree on the topology.
func StartSentinel() (*Sentinel, error) {
	ctx := context.Background()
	t := &Sentinel{}
	ok := false
	defer func() {
		if !ok {
			t.Stop()
		}
	}()
	var err error
	if t.Primary, err = Start("--repl-diskless-sync-delay", "0"); err != nil {
		return nil, err
	}
	if t.Replica, err = Start("--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", strconv.Itoa(t.Primary.Port)); err != nil {
		return nil, err
	}
	if err := WaitReplicaSynced(ctx, t.Replica.Addr, 15*time.Second); err != nil {
		return nil, err
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	for i := 0; i < 3; i++ {
		var s *Server
		for attempt := 0; attempt < 5; attempt++ {
			port, perr := freePort()
			if perr != nil {
				return nil, perr
			}
			s, err = start(bin, port, func(dir string) ([]string, error) {
				conf := filepath.Join(dir, "sentinel.conf")
				text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
					"sentinel monitor %s 127.0.0.1 %d 2\n"+
					"sentinel down-after-milliseconds %s 1000\n"+
					"sentinel failover-timeout %s 3000\n"+
					"sentinel parallel-syncs %s 1\n",
					port, dir, MasterName, t.Primary.Port, MasterName, MasterName, MasterName)
				return []string{conf, "--sentinel"}, os.WriteFile(conf, []byte(text), 0o600)
			})
			if err == nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		t.Sentinels = append(t.Sentinels, s)
	}
	for _, s := range t.Sentinels {
		err := waitFor(20*time.Second, "sentinel "+s.Addr+" converged", func() (bool, string) {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
			defer c.Close()
			m, err := c.Master(ctx, MasterName).Result()
			if err != nil {
				return false, err.Error()
			}
			return m["num-slaves"] == "1" && m["num-other-sentinels"] == "2",
				fmt.Sprintf("num-slaves=%s num-other-sentinels=%s", m["num-slaves"], m["num-other-sentinels"])
		})
		if err != nil {
			return nil, err
		}
	}
	ok = true
	return t, nil
}

// Cluster is a Redis Cluster of primaries, each with replicas, on loopback.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns every node's address (seeds for redis.ClusterOptions).
func (c *Cluster) Addrs() []string { return addrs(c.Nodes) }

// Client returns a go-redis cluster client with a 1 s state reload interval
// (the option that keeps the failover gap near the promotion time).
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ClusterStateReloadInterval: time.Second})
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Node returns the started node listening on addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// StartCluster starts primaries × (1 + replicas) nodes with a 1000 ms node
// timeout, assigns the 16384 slots evenly, and waits until every node says
// cluster_state:ok and every replica is in sync.
func StartCluster(primaries, replicas int) (*Cluster, error) {
	ctx := context.Background()
	c := &Cluster{}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	for i := 0; i < primaries*(1+replicas); i++ {
		bus, err := freePort()
		if err != nil {
			return nil, err
		}
		n, err := Start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-port", strconv.Itoa(bus),
			"--repl-diskless-sync-delay", "0")
		if err != nil {
			return nil, err
		}
		n.busPort = bus
		c.Nodes = append(c.Nodes, n)
	}
	ids := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		cl := cmdClient(n.Addr)
		id, err := cl.ClusterMyID(ctx).Result()
		if err == nil && i < primaries {
			lo, hi := i*16384/primaries, (i+1)*16384/primaries-1
			err = cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err()
		}
		if err == nil && i > 0 {
			err = cl.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", c.Nodes[0].Port, c.Nodes[0].busPort).Err()
		}
		cl.Close()
		if err != nil {
			return nil, fmt.Errorf("redistest: cluster setup on %s: %w", n.Addr, err)
		}
		ids[i] = id
	}
	for _, n := range c.Nodes {
		if err := waitFor(20*time.Second, n.Addr+" knows every node", func() (bool, string) {
			v := clusterInfoField(ctx, n.Addr, "cluster_known_nodes")
			return v == strconv.Itoa(len(c.Nodes)), "cluster_known_nodes=" + v
		}); err != nil {
			return nil, err
		}
	}
	for i := primaries; i < len(c.Nodes); i++ {
		primary := (i - primaries) % primaries
		cl := cmdClient(c.Nodes[i].Addr)
		err := cl.Do(ctx, "CLUSTER", "REPLICATE", ids[primary]).Err()
		cl.Close()
		if err != nil {
			return nil, fmt.Errorf("redistest: CLUSTER REPLICATE on %s: %w", c.Nodes[i].Addr, err)
		}
	}
	for i, n := range c.Nodes {
		if err := waitFor(30*time.Second, n.Addr+" cluster ok", func() (bool, string) {
			v := clusterInfoField(ctx, n.Addr, "cluster_state")
			return v == "ok", "cluster_state=" + v
		}); err != nil {
			return nil, err
		}
		if i >= primaries {
			if err := WaitReplicaSynced(ctx, n.Addr, 20*time.Second); err != nil {
				return nil, err
			}
		}
	}
	// Every node must agree that every slot has a primary with its replicas.
	for _, n := range c.Nodes {
		if err := waitFor(20*time.Second, n.Addr+" sees every replica", func() (bool, string) {
			cl := cmdClient(n.Addr)
			defer cl.Close()
			shards, err := cl.ClusterShards(ctx).Result()
			if err != nil {
				return false, err.Error()
			}
			full := 0
			for _, s := range shards {
				if len(s.Slots) > 0 && len(online(s, "master")) == 1 && len(online(s, "replica")) == replicas {
					full++
				}
			}
			return full == primaries, fmt.Sprintf("%d of %d shards complete", full, primaries)
		}); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

// clusterInfoField reads a CLUSTER INFO field.
func clusterInfoField(ctx context.Context, addr, field string) string {
	cl := cmdClient(addr)
	defer cl.Close()
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return ""
	}
	return redisutil.InfoField(info, field)
}

// PrimaryFor returns the node that is primary for key's slot now, and one of
// its replicas (nil if it has none).
func (c *Cluster) PrimaryFor(ctx context.Context, key string) (primary, replica *Server, err error) {
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		cl := cmdClient(n.Addr)
		slot, err1 := cl.ClusterKeySlot(ctx, key).Result()
		shards, err2 := cl.ClusterShards(ctx).Result()
		cl.Close()
		if err1 != nil || err2 != nil {
			continue
		}
		for _, s := range shards {
			primaries := online(s, "master")
			if len(primaries) == 0 || !slices.ContainsFunc(s.Slots, func(r redis.SlotRange) bool { return r.Start <= slot && slot <= r.End }) {
				continue
			}
			if replicas := online(s, "replica"); len(replicas) > 0 {
				replica = c.Node(replicas[0])
			}
			return c.Node(primaries[0]), replica, nil
		}
	}
	return nil, nil, errors.New("redistest: no node could say who serves " + key)
}

// online returns the addresses of the shard's healthy nodes with a role
// ("master" or "replica"), as CLUSTER SHARDS reports them.
func online(s redis.ClusterShard, role string) []string {
	var addrs []string
	for _, n := range s.Nodes {
		if n.Role == role && n.Health == "online" {
			addrs = append(addrs, net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10)))
		}
	}
	return addrs
}

var (
	topoMu      sync.Mutex
	sentinel    *Sentinel
	sentinelErr error
	cluster     *Cluster
	clusterErr  error
)

func requireOrSkip(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("real Redis %s required in CI (CI=true): %v", what, err)
	}
	t.Skipf("skipping real-Redis %s test (set CI=true to make this a failure): %v", what, err)
}

// RequireSentinel returns the package-wide shared Sentinel topology, starting
// it on first use. Tests sharing it must not kill its processes and must use
// their own keys; failover tests start their own with StartSentinel.
func RequireSentinel(t testing.TB) *Sentinel {
	t.Helper()
	topoMu.Lock()
	defer topoMu.Unlock()
	if sentinel == nil && sentinelErr == nil {
		sentinel, sentinelErr = StartSentinel()
	}
	requireOrSkip(t, "Sentinel", sentinelErr)
	return sentinel
}

// RequireCluster returns the package-wide shared 3-primary, 3-replica
// Cluster, starting it on first use.
func RequireCluster(t testing.TB) *Cluster {
	t.Helper()
	topoMu.Lock()
	defer topoMu.Unlock()
	if cluster == nil && clusterErr == nil {
		cluster, clusterErr = StartCluster(3, 1)
	}
	requireOrSkip(t, "Cluster", clusterErr)
	return cluster
}

// NewSentinel starts a private Sentinel topology for one test (which may
// kill its processes) and stops it when the test ends.
func NewSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s, err := StartSentinel()
	requireOrSkip(t, "Sentinel", err)
	t.Cleanup(s.Stop)
	return s
}

// NewCluster starts a private Cluster for one test and stops it at the end.
func NewCluster(t testing.TB, primaries, replicas int) *Cluster {
	t.Helper()
	c, err := StartCluster(primaries, replicas)
	requireOrSkip(t, "Cluster", err)
	t.Cleanup(c.Stop)
	return c
}

func cleanupTopologies() {
	topoMu.Lock()
	defer topoMu.Unlock()
	if sentinel != nil {
		sentinel.Stop()
		sentinel = nil
	}
	if cluster != nil {
		cluster.Stop()
		cluster = nil
	}
}
