package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tgsession/redisstore/storage"
)

// stageTTL bounds how long an abandoned Replace (a crashed import) keeps its
// staged keys; a running Replace renews it as it writes.
const stageTTL = time.Hour

var _ storage.Replacer = (*Store)(nil)

// Replace begins replacing the whole session (fields and peer cache) in one
// atomic step (storage.Replacer): the new content is written under staging
// keys in the session's hash tag (see keys.go), with a TTL, and Commit swaps
// them in with one script (lua/replace.lua). Until Commit, readers and the
// stored session are untouched; Abort, or the TTL after a crash, removes the
// staged keys.
//
// Every staged write and the swap are fenced like any write: a Leased store
// must hold its lease (open), and an Unfenced store is refused while a worker
// owns the session. An Unfenced store need not be open: Replace on a session
// that does not exist creates it at Commit, and registers its name, so an
// import that fails leaves nothing behind.
func (s *Store) Replace(ctx context.Context) (storage.Replacement, error) {
	if s.opts.Mode == Leased {
		if err := s.checkOpen("replace"); err != nil {
			return nil, err
		}
	}
	token, err := s.token("replace")
	if err != nil {
		return nil, err
	}
	id := randomID()
	r := &replacement{s: s, token: token, id: id, staged: s.keys.stage(id), renewed: time.Now()}
	// Every staged key exists, with its TTL, before the first staged write
	// (lua/stage.lua): an import killed at any point leaves keys that
	// expire. The staged session hash carries the layout (the staged writes
	// check it) and Hydrogram's defaults, like a new session.
	if err := s.failWrite("replace", stageCall(s.keys, r.staged, token, id).run(ctx, s.rdb).Err()); err != nil {
		return nil, errors.Join(err, r.Abort(context.WithoutCancel(ctx)))
	}
	return r, nil
}

// replacement is a Replace in progress.
type replacement struct {
	s       *Store
	token   string
	id      string
	staged  keys
	mu      sync.Mutex
	done    bool
	renewed time.Time
}

// setFields writes every field of v into the staged session hash and renews
// the staged keys' TTL.
func (r *replacement) setFields(ctx context.Context, v storage.Session) error {
	ak, err := r.s.sealAuthKey(ctx, v.AuthKey) // before anything is written
	if err != nil {
		return r.s.fail("replace", err)
	}
	if err := r.s.failWrite("replace", setFieldsCall(r.staged, r.token, v, storage.AllFields, ak).run(ctx, r.s.rdb).Err()); err != nil {
		return err
	}
	return r.renew(ctx, true)
}

// renew sets the TTL of every staged key (at most once a minute unless
// forced), so that a crashed import's keys expire.
func (r *replacement) renew(ctx context.Context, force bool) error {
	if !force && time.Since(r.renewed) < time.Minute {
		return nil
	}
	pipe := r.s.rdb.Pipeline()
	for _, k := range []string{r.staged.session, r.staged.peers, r.staged.usernames, r.staged.phones, r.staged.applied, r.s.keys.stages} {
		pipe.PExpire(ctx, k, stageTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return r.s.fail("replace", err)
	}
	r.renewed = time.Now()
	return nil
}

func (r *replacement) check(op string) error {
	if r.done {
		return r.s.fail(op, errors.New("this replacement was committed or aborted already"))
	}
	return nil
}

// ImportPeers stages peers, keeping their LastUpdateOn (like
// Store.ImportPeers), in bounded script calls.
func (r *replacement) ImportPeers(ctx context.Context, peers []storage.Peer) error {
	const op = "replace: import peers"
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(op); err != nil {
		return err
	}
	if len(peers) == 0 {
		return nil
	}
	norm, err := storage.NormalizePeers(peers)
	if err != nil {
		return r.s.fail(op, err)
	}
	for _, p := range norm {
		if p.LastUpdateOn < 0 {
			return r.s.fail(op, fmt.Errorf("%w: peer %d: last_update_on %d is before 1970", storage.ErrInvalid, p.ID, p.LastUpdateOn))
		}
	}
	if err := r.s.writeChunks(ctx, r.staged, r.token, norm, nil); err != nil {
		return err
	}
	return r.renew(ctx, false)
}

// Commit writes v into the staged session hash and swaps the staged keys in
// for the session's (lua/replace.lua), then registers the name.
func (r *replacement) Commit(ctx context.Context, v storage.Session) error {
	const op = "replace: commit"
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(op); err != nil {
		return err
	}
	if err := v.Validate(storage.AllFields); err != nil {
		return r.s.fail(op, err)
	}
	if err := r.setFields(ctx, v); err != nil {
		return err
	}
	if c := r.s.cache; c != nil {
		c.clear()
		defer c.clear() // a read racing the swap must not refill
	}
	c := replaceCall(r.s.keys, r.staged, r.token, r.id)
	var err error
	if r.s.opts.Durability.Replicas > 0 {
		err = r.s.durable(ctx, op, c)
	} else {
		err = r.s.failWrite(op, c.run(ctx, r.s.rdb).Err())
	}
	if err != nil && !errors.Is(err, storage.ErrNotDurable) {
		return err
	}
	r.done = true
	// After the swap: a crash in between leaves a session that is not
	// listed (the next Open registers it), never a listed name without data.
	if err := r.s.rdb.SAdd(ctx, registryKey(r.s.opts.Prefix), r.s.name).Err(); err != nil {
		return r.s.fail(op, fmt.Errorf("the session was replaced, but registering its name failed (the next Open registers it): %w", err))
	}
	return err // nil, or storage.ErrNotDurable
}

// Abort removes the staged keys. It is a no-op after Commit.
func (r *replacement) Abort(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	pipe := r.s.rdb.Pipeline()
	for _, k := range []string{r.staged.session, r.staged.peers, r.staged.usernames, r.staged.phones, r.staged.applied} {
		pipe.Unlink(ctx, k)
	}
	pipe.SRem(ctx, r.s.keys.stages, r.id)
	if _, err := pipe.Exec(ctx); err != nil {
		return r.s.fail("replace: abort", fmt.Errorf("the staged keys expire within %v: %w", stageTTL, err))
	}
	return nil
}
