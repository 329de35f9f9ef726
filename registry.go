package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// The registry (P:sessions) and the session data vouch for each other this
// way: a session is registered before its data is created (Open, Replace),
// and unregistered only after its data is deleted (Delete). So session data
// without a registered name means the registry lost it (deleted or flushed
// on its own, a restore of part of the keyspace): RebuildRegistry puts the
// names back, and a fleet worker re-registers a session it owns at once. A
// registered name without data is a lost session (ErrSessionLost). When
// both are gone nothing in Redis remembers the session: a Leased Open then
// refuses to create it unless told to (Options.Create), and a store that
// had opened it reports it lost.

// SessionExists reports whether the data of the session called name exists
// under prefix (DefaultPrefix when empty), registered or not.
func SessionExists(ctx context.Context, client redis.UniversalClient, prefix, name string) (bool, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validPrefix(prefix); err != nil {
		return false, err
	}
	n, err := client.Exists(ctx, newKeys(prefix, name).session).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: check session %s: %w", prefix, err)
	}
	return n == 1, nil
}

// Register adds names to the registry under prefix (DefaultPrefix when
// empty), as Open does. It does not create any session.
func Register(ctx context.Context, client redis.UniversalClient, prefix string, names ...string) error {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validPrefix(prefix); err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	members := make([]any, len(names))
	for i, n := range names {
		members[i] = n
	}
	if err := client.SAdd(ctx, registryKey(prefix), members...).Err(); err != nil {
		return fmt.Errorf("redisstore: register sessions under %q: %w", prefix, err)
	}
	return nil
}

// RebuildRegistry finds every session under prefix (DefaultPrefix when
// empty) by scanning the keyspace for session hashes (SCAN MATCH
// "P:{*}:s", on every primary of a Cluster) and registers the names the
// registry lacks. It returns those names. It is an operator's repair (tgsession
// registry rebuild), the one place the store scans: its cost grows with
// the whole keyspace, so run it when the registry lost names, not routinely.
func RebuildRegistry(ctx context.Context, client redis.UniversalClient, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	pattern := globEscape(prefix) + ":{*}:s"
	var found []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			tag, ok := strings.CutPrefix(k, prefix+":{")
			if !ok || !strings.HasSuffix(tag, "}:s") {
				continue
			}
			name, err := unescapeName(strings.TrimSuffix(tag, "}:s"))
			if err != nil || newKeys(prefix, name).session != k {
				continue // not a key this package wrote
			}
			found = append(found, name)
		}
		return iter.Err()
	}
	var err error
	if cc, ok := client.(*redis.ClusterClient); ok {
		var mu sync.Mutex // ForEachMaster runs the primaries in parallel; found is shared
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, c)
		})
	} else {
		err = scan(ctx, client)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: scan for sessions under %q: %w", prefix, err)
	}
	var missing []string
	for i := 0; i < len(found); i += 1000 {
		batch := found[i:min(i+1000, len(found))]
		pipe := client.Pipeline()
		cmds := make([]*redis.IntCmd, len(batch))
		for j, n := range batch {
			cmds[j] = pipe.SAdd(ctx, registryKey(prefix), n)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return missing, fmt.Errorf("redisstore: register sessions under %q: %w", prefix, err)
		}
		for j, c := range cmds {
			if c.Val() == 1 {
				missing = append(missing, batch[j])
			}
		}
	}
	return missing, nil
}

// globEscape escapes the glob metacharacters of SCAN MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
