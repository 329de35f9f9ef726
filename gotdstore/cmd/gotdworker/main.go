// Command gotdworker is a gotd/td bot worker whose Telegram session lives in
// Redis: it waits for the session's lease (so only one worker of a fleet
// uses the auth key at a time), logs in with a bot token the first time,
// echoes private text messages, and stops its client the moment the lease
// is lost. Start several: one owns the session, the others stand by and take
// over within about a millisecond of a clean stop, or a lease TTL after a
// crash.
//
// Real Telegram needs an app id and hash (https://my.telegram.org) and a bot
// token (@BotFather):
//
//	REDIS_URL=redis://127.0.0.1:6379/0 TG_APP_ID=12345 TG_APP_HASH=0123abcd... \
//	TG_BOT_TOKEN=123:ABC... go run ./cmd/gotdworker -session mybot
//
// With TGSESSION_KEYRING set to a keyring file (tgsession keygen), the auth
// key is stored encrypted (redisstore.Options.Keys).
//
// The offline proof of the same wiring is gotdstore's end-to-end tests, on
// gotd's in-process Telegram server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/message"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/gotdstore"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
)

func main() {
	name := flag.String("session", "bot", "session name in Redis")
	prefix := flag.String("prefix", redisstore.DefaultPrefix, "key prefix")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *name, *prefix); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "gotdworker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name, prefix string) error {
	appID, err := strconv.Atoi(os.Getenv("TG_APP_ID"))
	if err != nil || os.Getenv("TG_APP_HASH") == "" || os.Getenv("TG_BOT_TOKEN") == "" || os.Getenv("REDIS_URL") == "" {
		return errors.New("set REDIS_URL, TG_APP_ID, TG_APP_HASH and TG_BOT_TOKEN (see the package documentation)")
	}
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		return errors.New("REDIS_URL is not a redis:// URL")
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	// Create: this worker runs a bot, which logs in with its token when the
	// session is new (or was lost: a bot can log in again; a worker of a user
	// account would leave Create unset and report redisstore.ErrSessionLost).
	opts := redisstore.Options{Mode: redisstore.Leased, Create: true, Prefix: prefix, Logger: logger,
		Lease: lock.Options{WorkerID: fmt.Sprintf("gotdworker-%d", os.Getpid())}}
	if path := os.Getenv("TGSESSION_KEYRING"); path != "" { // auth keys encrypted at rest
		ring, err := keyring.Load(path)
		if err != nil {
			return err
		}
		opts.Keys = ring
	}
	st, err := redisstore.New(rdb, name, opts)
	if err != nil {
		return err
	}
	logger.Info("waiting for the session's lease", "session", name)
	if err := st.Open(ctx); err != nil { // blocks while another worker owns the session
		return err
	}
	defer st.Close()
	logger.Info("owns the session", "session", name)

	g := gotdstore.New(st)
	dispatcher := tg.NewUpdateDispatcher()
	gaps := updates.New(updates.Config{Handler: dispatcher, Storage: g, AccessHasher: g, UserAccessHasher: g})
	options, err := g.Options(ctx, appID, telegram.Options{UpdateHandler: gaps})
	if err != nil {
		return err
	}
	client := telegram.NewClient(appID, os.Getenv("TG_APP_HASH"), options)
	sender := message.NewSender(client.API())
	dispatcher.OnNewMessage(func(ctx context.Context, e tg.Entities, u *tg.UpdateNewMessage) error {
		m, ok := u.Message.(*tg.Message)
		if !ok || m.Out {
			return nil
		}
		_, err := sender.Reply(e, u).Text(ctx, m.Message)
		return err
	})
	return gotdstore.Run(ctx, st, client, func(ctx context.Context) error {
		status, err := client.Auth().Status(ctx)
		if err != nil {
			return err
		}
		if !status.Authorized {
			if _, err := client.Auth().Bot(ctx, os.Getenv("TG_BOT_TOKEN")); err != nil {
				return err
			}
		}
		self, err := client.Self(ctx)
		if err != nil {
			return err
		}
		logger.Info("connected", "username", self.Username, "user_id", self.ID)
		return gaps.Run(ctx, client.API(), self.ID, updates.AuthOptions{IsBot: self.Bot})
	})
}
