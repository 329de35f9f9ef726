// Command tgsession is the operator's tool for Telegram sessions kept in
// Redis. This version has one command, demo; import, export, inspect and
// unlock follow.
//
//	go run ./cmd/tgsession demo                 # on an embedded miniredis, no setup
//	go run ./cmd/tgsession demo -redis redis://127.0.0.1:6379/0
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/storage"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tgsession:", err)
		os.Exit(1)
	}
}

const usage = `usage: tgsession <command> [flags]

commands:
  demo    walk through a Hydrogram-style session lifecycle on Redis
          (an embedded miniredis unless -redis is given)`

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		fs.SetOutput(out)
		url := fs.String("redis", "", "Redis URL (redis://host:port/db); empty runs an embedded miniredis")
		prefix := fs.String("prefix", "tgsession-demo", "key prefix for the demo session")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return demo(context.Background(), out, *url, *prefix)
	case "help", "-h", "--help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func demo(ctx context.Context, out io.Writer, url, prefix string) error {
	var opts *redis.Options
	where := url
	if url == "" {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return fmt.Errorf("start embedded miniredis: %w", err)
		}
		defer m.Close()
		opts = &redis.Options{Addr: m.Addr()}
		where = "embedded miniredis at " + m.Addr()
	} else {
		var err error
		if opts, err = redis.ParseURL(url); err != nil {
			return fmt.Errorf("parse -redis: %w", err)
		}
	}
	client := redis.NewClient(opts)
	defer client.Close()
	fmt.Fprintf(out, "Redis: %s\n", where)

	// A settable clock shows the username TTL without waiting 8 hours.
	now := time.Now()
	clock := func() time.Time { return now }
	store, err := redisstore.New(client, "my_account", redisstore.WithPrefix(prefix), redisstore.WithClock(clock),
		redisstore.WithLease(lock.Options{TTL: 10 * time.Second}))
	if err != nil {
		return err
	}
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(out, "  ok  %s\n", what)
		return nil
	}

	fmt.Fprintln(out, "1. Client.start: open, then the login reset (user_id and is_bot back to NULL)")
	if err := step("Open takes the session's lease, then creates the session (dc_id 2, date 0)", store.Open(ctx)); err != nil {
		return err
	}
	if info, err := lock.Inspect(ctx, client, store.Lease().Key()); err == nil {
		fmt.Fprintf(out, "      owner: %v, lease TTL %v (renewed in the background)\n", info.Owner, info.TTL.Round(time.Second))
	}
	tool, err := redisstore.New(client, "my_account", redisstore.WithPrefix(prefix), redisstore.Unfenced())
	if err != nil {
		return err
	}
	err = tool.Open(ctx)
	if err == nil {
		err = tool.SetDCID(ctx, storage.Some(1))
	}
	fmt.Fprintf(out, "  refused: an unfenced tool writing while a worker owns the session: errors.Is ErrHeld: %t\n", errors.Is(err, lock.ErrHeld))
	key := make(storage.AuthKey, storage.AuthKeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	login := storage.Session{DCID: storage.Some(2), APIID: storage.Some[int64](12345), TestMode: storage.Some(false), AuthKey: key}
	if err := step("SetSession (api_id, dc_id, date 0, test_mode, auth key, user_id NULL, is_bot NULL) in one round trip",
		store.SetSession(ctx, login)); err != nil {
		return err
	}
	if err := step("sign_in: SetUserID, SetIsBot", errors.Join(
		store.SetUserID(ctx, storage.Some[int64](777000123)), store.SetIsBot(ctx, storage.Some(false)))); err != nil {
		return err
	}
	sess, err := store.Session(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "      %v\n", sess)

	fmt.Fprintln(out, "2. Every RPC: update_peers (one atomic Lua call per batch)")
	peers := []storage.Peer{
		{ID: 777000123, AccessHash: storage.Some[int64](7001234567890123456), Type: storage.PeerUser, Usernames: []string{"vector_self"}, PhoneNumber: "15550000123"},
		{ID: 93372553, AccessHash: storage.Some[int64](9223372036854775807), Type: storage.PeerBot, Usernames: []string{"BotFather"}},
		{ID: -1001234567890, AccessHash: storage.Some[int64](-6666666666666666666), Type: storage.PeerChannel, Usernames: []string{"news_channel", "news_collectible"}},
		{ID: -123456789, AccessHash: storage.Some[int64](0), Type: storage.PeerGroup},
	}
	if err := step(fmt.Sprintf("UpdatePeers(%d peers)", len(peers)), store.UpdatePeers(ctx, peers)); err != nil {
		return err
	}
	for _, id := range []int64{93372553, -1001234567890, -123456789} {
		p, err := store.PeerByID(ctx, id)
		if err := step(fmt.Sprintf("PeerByID(%d) -> %v", id, p.InputPeer()), err); err != nil {
			return err
		}
	}
	for _, u := range []string{"@botfather", "news_collectible"} {
		p, err := store.PeerByUsername(ctx, u)
		if err := step(fmt.Sprintf("PeerByUsername(%q) -> %v", u, p.InputPeer()), err); err != nil {
			return err
		}
	}
	p, err := store.PeerByPhoneNumber(ctx, "+1 555 000 0123")
	if err := step(fmt.Sprintf("PeerByPhoneNumber(%q) -> %v", "+1 555 000 0123", p.InputPeer()), err); err != nil {
		return err
	}
	_, err = store.PeerByID(ctx, 999)
	fmt.Fprintf(out, "  miss PeerByID(999): %v (errors.Is ErrPeerNotFound: %t)\n", err, errors.Is(err, storage.ErrPeerNotFound))
	now = now.Add(8*time.Hour + time.Second)
	_, err = store.PeerByUsername(ctx, "botfather")
	fmt.Fprintf(out, "  miss 8h01s later, PeerByUsername(botfather): %v (errors.Is ErrUsernameExpired: %t)\n", err, errors.Is(err, storage.ErrUsernameExpired))

	fmt.Fprintln(out, "3. export_session_string and Client.stop")
	str, err := store.ExportSessionString(ctx)
	if err := step(fmt.Sprintf("ExportSessionString: %d chars (not printed: it carries the auth key)", len(str)), err); err != nil {
		return err
	}
	if err := step("Save (date = now), Close (releases the lease: a standby takes over at once)", errors.Join(store.Save(ctx), store.Close())); err != nil {
		return err
	}
	names, err := redisstore.ListSessions(ctx, client, prefix)
	if err := step(fmt.Sprintf("ListSessions(%q) = %q (registry set, no keyspace scan)", prefix, names), err); err != nil {
		return err
	}

	fmt.Fprintln(out, "4. log_out: Delete (bounded batches; after Close it takes the free lease for the duration)")
	if err := step("Delete", store.Delete(ctx)); err != nil {
		return err
	}
	check, err := redisstore.New(client, "my_account", redisstore.WithPrefix(prefix), redisstore.Unfenced(), redisstore.OpenExisting())
	if err != nil {
		return err
	}
	err = check.Open(ctx)
	fmt.Fprintf(out, "  Open(OpenExisting) after Delete: errors.Is ErrSessionNotFound: %t\n", errors.Is(err, storage.ErrSessionNotFound))
	fmt.Fprintln(out, "demo finished")
	return nil
}
