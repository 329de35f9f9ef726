package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tgsession/redisstore/storage"
	"golang.org/x/sys/unix"
)

// Bounds on what the CLI reads from its input.
const (
	maxStringInput = 64 << 10 // a session string is at most ~400 bytes; pasted text with wrapping is well below this
	maxAnswer      = 1 << 10  // a confirmation line
)

// isTerminal reports whether v is an *os.File open on a terminal (a
// character device that answers the terminal ioctl: /dev/null does not).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readBounded reads all of r, failing (without reading further) when it
// holds more than limit bytes. what names the source in errors.
func readBounded(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s holds more than %d bytes: that is not a session string (nothing was changed)", what, limit)
	}
	return b, nil
}

// readLine reads one answer line of at most maxAnswer bytes.
func readLine(r io.Reader) string {
	line, err := bufio.NewReader(io.LimitReader(r, maxAnswer)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return line
}

// excerpt quotes user input for an error message (storage.Excerpt: a
// short quoted prefix and the length).
func excerpt(s string) string { return storage.Excerpt(s) }
