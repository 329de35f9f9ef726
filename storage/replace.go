package storage

import (
	"context"
	"errors"
	"fmt"
)

// Replacer is implemented by engines that can replace a whole session (its
// fields and its peer cache) in one atomic step. Replace begins a
// Replacement: new content built beside the stored session, invisible to
// every reader until Commit, which swaps it in at once. Until then the stored
// session (or its absence) is untouched, so an import that fails half-way,
// on bad input or a lost connection, leaves what was there.
//
// Replace needs an open store unless the engine documents otherwise (the
// Redis store accepts an unopened, unfenced store, so an import never
// creates a session it then fails to fill).
type Replacer interface {
	Replace(ctx context.Context) (Replacement, error)
}

// Replacement is a session's new content being built (see Replacer). It is
// used by one goroutine; call Commit or Abort exactly once.
type Replacement interface {
	// ImportPeers adds peers to the new content, keeping each peer's
	// LastUpdateOn like PeerImporter. Invalid input fails with ErrInvalid
	// and the caller should Abort.
	ImportPeers(ctx context.Context, peers []Peer) error
	// Commit validates s and makes it, with the peers imported so far, the
	// session's whole content in one atomic step: peers the stored session
	// had and the new content lacks are gone. On error the stored session
	// is as it was (or the error says the outcome is unknown).
	Commit(ctx context.Context, s Session) error
	// Abort discards the new content; the stored session is untouched. It
	// is a no-op after Commit.
	Abort(ctx context.Context) error
}

// ReplaceSession makes s the whole content of st (fields, and an empty peer
// cache) in one atomic step when st is a Replacer. Other engines get a
// Delete, Open and SetSession, which is not atomic.
func ReplaceSession(ctx context.Context, st Storage, s Session) error {
	if err := s.Validate(AllFields); err != nil {
		return err
	}
	if r, ok := st.(Replacer); ok {
		rep, err := r.Replace(ctx)
		if err != nil {
			return err
		}
		if err := rep.Commit(ctx, s); err != nil {
			return errors.Join(err, rep.Abort(context.WithoutCancel(ctx)))
		}
		return nil
	}
	if err := st.Delete(ctx); err != nil {
		return err
	}
	if err := st.Open(ctx); err != nil {
		return err
	}
	return st.SetSession(ctx, s)
}

// copyReplacing is Copy with CopyOptions.Replace: every peer into a
// Replacement of dst, then Commit with the source's session.
func copyReplacing(ctx context.Context, dst Storage, scanner PeerScanner, sess Session, opts CopyOptions, batch int) (int64, error) {
	r, ok := dst.(Replacer)
	if !ok {
		return 0, fmt.Errorf("storage: copy: destination %T cannot replace a session atomically (it does not implement Replacer)", dst)
	}
	rep, err := r.Replace(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: copy: %w", err)
	}
	copied, err := scanInto(ctx, scanner, rep.ImportPeers, opts, batch)
	if err == nil {
		if err = rep.Commit(ctx, sess); err != nil {
			err = fmt.Errorf("storage: copy: write session: %w", err)
		}
	}
	if err != nil {
		return copied, errors.Join(err, rep.Abort(context.WithoutCancel(ctx)))
	}
	return copied, nil
}
