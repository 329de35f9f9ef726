package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// connectHelp documents the --redis forms.
const connectHelp = `--redis URL (default $REDIS_URL):
  redis://[user:password@]host:6379[/db]          one server (rediss:// for TLS)
  redis-sentinel://[user:password@]s1:26379[/db]?addr=s2:26379&addr=s3:26379&master_name=mymaster
                                                  Sentinel (rediss-sentinel:// for TLS)
  redis-cluster://[user:password@]n1:6379?addr=n2:6379&addr=n3:6379
                                                  Cluster (rediss-cluster:// for TLS)
  Query parameters are go-redis options in snake_case (dial_timeout=2s, ...).`

// connect builds a go-redis client from a URL in one of the documented forms.
func connect(url string) (redis.UniversalClient, string, error) {
	if url == "" {
		url = os.Getenv("REDIS_URL")
	}
	if url == "" {
		return nil, "", fmt.Errorf("no Redis given: pass --redis URL or set REDIS_URL\n%s", connectHelp)
	}
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, "", fmt.Errorf("--redis %q is not a URL\n%s", redact(url), connectHelp)
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, "", fmt.Errorf("--redis: %w\n%s", err, connectHelp)
		}
		return redis.NewClient(o), "redis " + o.Addr, nil
	case "redis-sentinel", "rediss-sentinel":
		o, err := redis.ParseFailoverURL(strings.TrimSuffix(scheme, "-sentinel") + "://" + rest)
		if err != nil {
			return nil, "", fmt.Errorf("--redis: %w\n%s", err, connectHelp)
		}
		if o.MasterName == "" {
			return nil, "", fmt.Errorf("--redis: a Sentinel URL needs master_name=<name>\n%s", connectHelp)
		}
		return redis.NewFailoverClient(o), fmt.Sprintf("sentinel %v master %s", o.SentinelAddrs, o.MasterName), nil
	case "redis-cluster", "rediss-cluster":
		o, err := redis.ParseClusterURL(strings.TrimSuffix(scheme, "-cluster") + "://" + rest)
		if err != nil {
			return nil, "", fmt.Errorf("--redis: %w\n%s", err, connectHelp)
		}
		if o.ClusterStateReloadInterval == 0 {
			o.ClusterStateReloadInterval = time.Second // keeps a failover's gap near the promotion time
		}
		return redis.NewClusterClient(o), fmt.Sprintf("cluster %v", o.Addrs), nil
	}
	return nil, "", fmt.Errorf("--redis: unknown scheme %q\n%s", scheme, connectHelp)
}

// redact hides a password in a URL for messages.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://***@" + rest[at+1:]
	}
	return url
}
