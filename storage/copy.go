package storage

import (
	"context"
	"errors"
	"fmt"
)

// PeerScanner is implemented by engines that can list their peer cache in
// bounded batches (Copy needs it from the source).
type PeerScanner interface {
	// ScanPeers returns about count peers that follow cursor ("" starts)
	// and the cursor of the next batch ("" when done). A peer may appear
	// twice if it was written during the scan; callers must tolerate that.
	ScanPeers(ctx context.Context, cursor string, count int) (peers []Peer, next string, err error)
}

// PeerImporter is implemented by engines that can cache peers keeping their
// LastUpdateOn (UpdatePeers stamps the engine's clock instead). A name held
// by several imported peers goes to the one with the latest LastUpdateOn,
// whatever the order of the calls.
type PeerImporter interface {
	ImportPeers(ctx context.Context, peers []Peer) error
}

// CopyOptions configure Copy.
type CopyOptions struct {
	// BatchSize is how many peers are read and written at a time (default
	// 1000); memory use is bounded by it, not by the session's size.
	BatchSize int
	// Progress, if set, is called after every batch with the number of
	// peers copied so far.
	Progress func(peers int64)
	// Replace makes the copy dst's whole content in one atomic step: dst
	// must be a Replacer (its stored session stays untouched until every
	// peer has been read, validated and staged, and a failure leaves it as
	// it was). Without Replace the copy merges into dst (see Copy).
	Replace bool
}

// Copy copies a whole session from src to dst, both open: every peer (with
// its LastUpdateOn when dst is a PeerImporter) in batches, then all seven
// session fields in one SetSession. Writing the fields last makes the copy
// all-or-nothing for readers that go by the session (a reader that sees the
// copied auth key sees every peer); a Copy that fails part-way leaves dst's
// fields as they were. Peers already in dst that src lacks are kept. src
// must implement PeerScanner. The source's session fields are read and
// validated before anything is written.
//
// With opts.Replace, dst's content is replaced instead (see CopyOptions).
func Copy(ctx context.Context, dst, src Storage, opts CopyOptions) (int64, error) {
	scanner, ok := src.(PeerScanner)
	if !ok {
		return 0, fmt.Errorf("storage: copy: source %T cannot list its peers (it does not implement PeerScanner)", src)
	}
	batch := opts.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	write := dst.UpdatePeers
	if imp, ok := dst.(PeerImporter); ok {
		write = imp.ImportPeers
	}
	sess, err := src.Session(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: copy: read source session: %w", err)
	}
	if err := sess.Validate(AllFields); err != nil {
		return 0, fmt.Errorf("storage: copy: source session: %w", err)
	}
	if opts.Replace {
		return copyReplacing(ctx, dst, scanner, sess, opts, batch)
	}
	copied, err := scanInto(ctx, scanner, write, opts, batch)
	if err != nil {
		return copied, err
	}
	if err := dst.SetSession(ctx, sess); err != nil && !errors.Is(err, ErrNotDurable) {
		return copied, fmt.Errorf("storage: copy: write session: %w", err)
	} else if err != nil {
		return copied, fmt.Errorf("storage: copy: session written but %w", err)
	}
	return copied, nil
}

// Limits says what an engine cannot keep of the model; the zero value means
// it keeps everything. Engines with limits implement Limited.
type Limits struct {
	OneUsername bool // only the first (primary) username is kept and resolvable
	NoMinFlag   bool // Peer.Min reads false; a min peer still never replaces a stored access hash
	DCIDNotNull bool // dc_id cannot be set to NULL (ErrInvalid)
	// NoUpdateState: the engine keeps no update state and no client data
	// (it implements neither UpdateStateStore nor ClientDataStore).
	NoUpdateState bool
}

// Limited is implemented by engines that cannot keep everything a Peer or
// Session carries, such as Hydrogram's file format.
type Limited interface {
	Limits() Limits
}

// scanInto reads every peer of scanner in batches and hands each batch to
// write, reporting progress.
func scanInto(ctx context.Context, scanner PeerScanner, write func(context.Context, []Peer) error, opts CopyOptions, batch int) (int64, error) {
	var copied int64
	cursor := ""
	for {
		peers, next, err := scanner.ScanPeers(ctx, cursor, batch)
		if err != nil {
			return copied, fmt.Errorf("storage: copy: read peers: %w", err)
		}
		if len(peers) > 0 {
			if err := write(ctx, peers); err != nil {
				return copied, fmt.Errorf("storage: copy: write peers: %w", err)
			}
			copied += int64(len(peers))
			if opts.Progress != nil {
				opts.Progress(copied)
			}
		}
		if next == "" {
			return copied, nil
		}
		cursor = next
	}
}
