package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
)

// keygen prints a new keyring line. The key goes to stdout only: redirect it
// into the keyring file (chmod 600), never into argv or a log.
func (c *cli) keygen(ctx context.Context, args []string) error {
	var f flags
	var id string
	fs := c.flagSet(&f, "[--id ID]")
	fs.StringVar(&id, "id", "", `the key's id, 1-32 of [A-Za-z0-9_-] (default "k", today's date (UTC) and a random suffix)`)
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if id == "" {
		// The date says when; the suffix keeps two keys made on one day
		// apart (a keyring refuses an id twice).
		var b [4]byte
		_, _ = rand.Read(b[:])
		id = "k" + f.clock().UTC().Format("20060102") + "-" + hex.EncodeToString(b[:])
	}
	line, err := keyring.Generate(id)
	if err != nil {
		return usageErr("%v", err)
	}
	if c.outTTY {
		fmt.Fprintln(c.errOut, "tgsession keygen: put this line first in the keyring file (it becomes the current key), then run tgsession rekey --all")
	}
	_, err = fmt.Fprintln(c.out, line)
	return err
}

// rekey re-encrypts the stored auth keys of sessions with the keyring's
// current key (plaintext ones too), through the store's fenced writes.
func (c *cli) rekey(ctx context.Context, args []string) error {
	var f flags
	var all bool
	var wait time.Duration
	fs := c.flagSet(&f, "NAME... | --all [--wait 30s]")
	fs.BoolVar(&all, "all", false, "every session under the prefix")
	fs.DurationVar(&wait, "wait", 0, "wait up to this long for a worker that owns a session to let it go (default: refuse owned sessions)")
	names, err := parse(fs, args, anyPositionals)
	if err != nil {
		return err
	}
	if all == (len(names) > 0) {
		return usageErr("name the sessions to rekey, or pass --all")
	}
	keys, err := f.keys()
	if err != nil {
		return err
	}
	if keys == nil {
		return usageErr("rekey needs the keyring: pass --keyring PATH or set $TGSESSION_KEYRING")
	}
	current, _, err := keys.CurrentKey(ctx)
	if err != nil {
		return err
	}
	client, _, err := connect(f.redis, f.tls)
	if err != nil {
		return exitError{2, err}
	}
	defer client.Close()
	if all {
		if names, err = redisstore.ListSessions(ctx, client, f.prefix); err != nil {
			return err
		}
	}
	failed := 0
	for _, name := range names {
		was, err := rekeyOne(ctx, client, f, keys, name, wait)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(c.errOut, "tgsession rekey: %s: %v\n", excerpt(name), err)
		case was == "":
			fmt.Fprintf(c.out, "%s: no auth key\n", excerpt(name))
		default:
			fmt.Fprintf(c.out, "%s: encrypted (%s), was %s\n", excerpt(name), current, was)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d sessions not re-encrypted", failed, len(names))
	}
	return nil
}

// rekeyOne re-encrypts one session's auth key and returns how it was stored
// before ("" if it has none). Without wait it writes unfenced, which the
// store refuses while a worker owns the session (lock.ErrHeld); with wait it
// takes the session's lease first, waiting up to wait.
func rekeyOne(ctx context.Context, rdb redis.UniversalClient, f flags, keys keyring.KeyProvider, name string, wait time.Duration) (string, error) {
	opts := redisstore.Options{Mode: redisstore.Unfenced, Prefix: f.prefix, OpenExisting: true, Keys: keys}
	if wait > 0 {
		opts.Mode = redisstore.Leased
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	st, err := redisstore.New(rdb, name, opts)
	if err != nil {
		return "", err
	}
	if err := st.Open(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("a worker still owns it after %v (nothing was changed)", wait)
		}
		return "", err
	}
	defer st.Close()
	// A compare-and-swap on the stored envelope: an import or login that
	// lands between the read and the write is never undone (ErrChanged).
	was, err := st.Reseal(ctx)
	if err != nil {
		switch {
		case errors.Is(err, lock.ErrHeld):
			return "", fmt.Errorf("%w: a worker owns it; stop it, or pass --wait (nothing was changed)", err)
		case errors.Is(err, redisstore.ErrChanged):
			return "", fmt.Errorf("%w: run rekey again", err)
		}
		return "", err
	}
	if was == "" {
		return "", nil
	}
	if now, err := st.AuthKeyStorage(ctx); err != nil || !strings.HasPrefix(now, "encrypted") {
		return "", fmt.Errorf("after the write the key is stored %q (%v)", now, err)
	}
	return was, nil
}
