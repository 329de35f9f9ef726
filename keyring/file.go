package keyring

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// File is a KeyProvider backed by a keyring file that it reads again when
// the file changes (its modification time or size; checked at most once per
// interval, when a key is asked for), so a running worker picks up a rotated
// keyring without a restart: put the new key first (tgsession keygen), keep
// the old ones until every session is re-sealed. A file that does not parse
// while it is being rewritten leaves the keys read last in use (Err says
// why); write the new file aside and rename it over the old one.
type File struct {
	path  string
	every time.Duration

	mu      sync.Mutex
	ring    *Keyring
	mod     time.Time
	size    int64
	checked time.Time
	err     error
}

var _ KeyProvider = (*File)(nil)

// OpenFile reads the keyring file at path and returns a provider that
// re-reads it when it changes, checking at most once per every (default 1 s
// when 0).
func OpenFile(path string, every time.Duration) (*File, error) {
	if every <= 0 {
		every = time.Second
	}
	f := &File{path: path, every: every}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the file again now if it changed since the last read.
func (f *File) Reload() error {
	fi, err := os.Stat(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = time.Now()
	if err != nil {
		f.err = fmt.Errorf("keyring: %w", err)
		return f.err
	}
	if f.ring != nil && fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
		return nil
	}
	r, err := Load(f.path)
	if err != nil {
		f.err = err
		return err
	}
	f.ring, f.mod, f.size, f.err = r, fi.ModTime(), fi.Size(), nil
	return nil
}

// Err returns why the last reload failed (nil when the keys in use are the
// file's current ones).
func (f *File) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *File) current() *Keyring {
	f.mu.Lock()
	due := time.Since(f.checked) >= f.every
	f.mu.Unlock()
	if due {
		_ = f.Reload() // on failure the keys read last stay in use
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ring
}

// CurrentKey returns the first key of the file as last read.
func (f *File) CurrentKey(ctx context.Context) (string, []byte, error) {
	return f.current().CurrentKey(ctx)
}

// Key returns the key with that id from the file as last read.
func (f *File) Key(ctx context.Context, id string) ([]byte, error) {
	return f.current().Key(ctx, id)
}

// String names the file and its key ids, never a key.
func (f *File) String() string {
	return fmt.Sprintf("keyring file %s (%v)", f.path, f.current())
}
