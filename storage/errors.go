package storage

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Sentinel errors. Engines wrap them with %w; test with errors.Is.
var (
	// ErrPeerNotFound reports a peer cache miss (by id, username or phone).
	// Resolve the peer over the network and cache it with UpdatePeers.
	ErrPeerNotFound = errors.New("peer not found in the session's cache")

	// ErrUsernameExpired reports a cached username older than UsernameTTL.
	// Resolve the username over the network again and cache the result.
	ErrUsernameExpired = errors.New("cached username expired")

	// ErrSessionNotFound reports that the session does not exist (never
	// created, or deleted). Open creates a session; an import restores one.
	ErrSessionNotFound = errors.New("session not found: open the store to create it, or import it")

	// ErrInvalid reports bad input. Nothing was written.
	ErrInvalid = errors.New("invalid input")

	// ErrClosed reports a call on a store that is not open. Call Open first.
	ErrClosed = errors.New("store is not open: call Open first")

	// ErrIncomplete reports a session that lacks a field an operation needs,
	// such as exporting a session string before login.
	ErrIncomplete = errors.New("session is incomplete")

	// ErrNotDurable reports a write that was applied but not confirmed by as
	// many replicas as the durability option asks for within its timeout: it
	// may be lost if the primary fails before replicating it. Retry, or check
	// the replicas.
	ErrNotDurable = errors.New("write not confirmed by enough replicas: it may be lost if the primary fails now")

	// ErrLayoutVersion reports stored data in a form this code does not read:
	// a layout or schema version newer or older than the one it knows, or an
	// auth key in an unknown envelope. Nothing was read or written; the
	// wrapping error says which version was found and what to do.
	ErrLayoutVersion = errors.New("stored session is in a layout this code does not read")
)

// LookupKind says which lookup missed.
type LookupKind int

// Lookup kinds.
const (
	LookupID LookupKind = iota + 1
	LookupUsername
	LookupPhoneNumber
)

// LookupError is a peer-cache miss. Error returns Hydrogram's KeyError text
// ("ID not found: 999", "Username expired: alice", ...); Unwrap returns
// ErrPeerNotFound or ErrUsernameExpired.
type LookupError struct {
	Kind    LookupKind
	Key     string // the id (decimal) or the username/phone as the caller gave it
	Expired bool   // the username is cached but older than UsernameTTL
}

// NotFoundByID returns the miss for a peer id.
func NotFoundByID(id int64) *LookupError {
	return &LookupError{Kind: LookupID, Key: strconv.FormatInt(id, 10)}
}

// NotFoundByUsername returns the miss for a username as the caller gave it.
func NotFoundByUsername(username string) *LookupError {
	return &LookupError{Kind: LookupUsername, Key: username}
}

// ExpiredUsername returns the expiry miss for a username as the caller gave it.
func ExpiredUsername(username string) *LookupError {
	return &LookupError{Kind: LookupUsername, Key: username, Expired: true}
}

// NotFoundByPhoneNumber returns the miss for a phone number as the caller gave it.
func NotFoundByPhoneNumber(phone string) *LookupError {
	return &LookupError{Kind: LookupPhoneNumber, Key: phone}
}

// Error returns Hydrogram's KeyError text for the miss.
// A key longer than MaxExcerpt bytes (no valid username or phone number
// is) is shown as a quoted excerpt instead of in full.
func (e *LookupError) Error() string {
	key := clip(e.Key)
	switch {
	case e.Kind == LookupUsername && e.Expired:
		return "Username expired: " + key
	case e.Kind == LookupUsername:
		return "Username not found: " + key
	case e.Kind == LookupPhoneNumber:
		return "Phone number not found: " + key
	default:
		return "ID not found: " + key
	}
}

// clip returns s as is (Hydrogram's messages quote input raw) unless it is
// longer than MaxExcerpt bytes, and then its Excerpt.
func clip(s string) string {
	if len(s) > MaxExcerpt {
		return Excerpt(s)
	}
	return s
}

// MaxExcerpt is how many bytes of user input an error message quotes.
const MaxExcerpt = 48

// Excerpt quotes user input for an error message: Go-quoted (control bytes
// and invalid UTF-8 show as escapes), cut to at most MaxExcerpt bytes at a
// rune boundary, with the full length when it was cut. Errors quote input
// this way so that a megabyte of junk is not echoed back whole.
func Excerpt(s string) string {
	if len(s) <= MaxExcerpt {
		return strconv.Quote(s)
	}
	cut := MaxExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// Unwrap returns ErrUsernameExpired for an expired username and
// ErrPeerNotFound for every other miss.
func (e *LookupError) Unwrap() error {
	if e.Expired {
		return ErrUsernameExpired
	}
	return ErrPeerNotFound
}
