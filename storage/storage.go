package storage

import (
	"context"
	"time"
)

// Storage is one Telegram session's storage engine: the Go form of
// Hydrogram's BaseStorage. See the package documentation for the contract.
// Implementations are safe for concurrent use.
type Storage interface {
	// Open connects to or creates the session. It works again after Close.
	Open(ctx context.Context) error
	// Save stamps date with the engine's clock.
	Save(ctx context.Context) error
	// Close releases what Open acquired.
	Close() error
	// Delete removes the session and its peer cache.
	Delete(ctx context.Context) error

	// UpdatePeers caches a batch of peers (whole-row replace, last wins).
	UpdatePeers(ctx context.Context, peers []Peer) error
	// PeerByID returns the cached peer with that Bot-API style id.
	PeerByID(ctx context.Context, id int64) (Peer, error)
	// PeerByUsername returns the current holder of a username.
	PeerByUsername(ctx context.Context, username string) (Peer, error)
	// PeerByPhoneNumber returns the current holder of a phone number.
	PeerByPhoneNumber(ctx context.Context, phone string) (Peer, error)

	// Session reads every field in one round trip.
	Session(ctx context.Context) (Session, error)
	// SetSession writes every field of s atomically in one round trip.
	SetSession(ctx context.Context, s Session) error
	// SetFields writes the fields of s named by which, atomically.
	SetFields(ctx context.Context, s Session, which Field) error

	DCID(ctx context.Context) (Null[int], error)
	SetDCID(ctx context.Context, v Null[int]) error
	APIID(ctx context.Context) (Null[int64], error)
	SetAPIID(ctx context.Context, v Null[int64]) error
	TestMode(ctx context.Context) (Null[bool], error)
	SetTestMode(ctx context.Context, v Null[bool]) error
	AuthKey(ctx context.Context) (AuthKey, error)
	SetAuthKey(ctx context.Context, v AuthKey) error
	Date(ctx context.Context) (int64, error)
	SetDate(ctx context.Context, v int64) error
	UserID(ctx context.Context) (Null[int64], error)
	SetUserID(ctx context.Context, v Null[int64]) error
	IsBot(ctx context.Context) (Null[bool], error)
	SetIsBot(ctx context.Context, v Null[bool]) error

	// ExportSessionString returns Hydrogram's 362-character session string.
	ExportSessionString(ctx context.Context) (string, error)
}

// SessionIO is the whole-session read and the partial write an engine
// provides; Accessors derives the per-field getters and setters from it.
type SessionIO interface {
	Session(ctx context.Context) (Session, error)
	SetFields(ctx context.Context, s Session, which Field) error
}

// Accessors implements the per-field getters and setters, SetSession and
// ExportSessionString of Storage on top of a SessionIO. Engines embed it:
//
//	type Store struct {
//		storage.Accessors
//		...
//	}
//	s := &Store{}
//	s.Accessors = storage.Accessors{IO: s}
type Accessors struct {
	IO SessionIO
}

func get[T any](ctx context.Context, a Accessors, pick func(Session) T) (T, error) {
	s, err := a.IO.Session(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return pick(s), nil
}

// SetSession writes every field of s.
func (a Accessors) SetSession(ctx context.Context, s Session) error {
	return a.IO.SetFields(ctx, s, AllFields)
}

// DCID returns dc_id.
func (a Accessors) DCID(ctx context.Context) (Null[int], error) {
	return get(ctx, a, func(s Session) Null[int] { return s.DCID })
}

// SetDCID sets dc_id (NULL clears it).
func (a Accessors) SetDCID(ctx context.Context, v Null[int]) error {
	return a.IO.SetFields(ctx, Session{DCID: v}, FieldDCID)
}

// APIID returns api_id.
func (a Accessors) APIID(ctx context.Context) (Null[int64], error) {
	return get(ctx, a, func(s Session) Null[int64] { return s.APIID })
}

// SetAPIID sets api_id (NULL clears it).
func (a Accessors) SetAPIID(ctx context.Context, v Null[int64]) error {
	return a.IO.SetFields(ctx, Session{APIID: v}, FieldAPIID)
}

// TestMode returns test_mode.
func (a Accessors) TestMode(ctx context.Context) (Null[bool], error) {
	return get(ctx, a, func(s Session) Null[bool] { return s.TestMode })
}

// SetTestMode sets test_mode (NULL clears it).
func (a Accessors) SetTestMode(ctx context.Context, v Null[bool]) error {
	return a.IO.SetFields(ctx, Session{TestMode: v}, FieldTestMode)
}

// AuthKey returns the auth key (nil for NULL).
func (a Accessors) AuthKey(ctx context.Context) (AuthKey, error) {
	return get(ctx, a, func(s Session) AuthKey { return s.AuthKey })
}

// SetAuthKey sets the auth key (nil clears it).
func (a Accessors) SetAuthKey(ctx context.Context, v AuthKey) error {
	return a.IO.SetFields(ctx, Session{AuthKey: v}, FieldAuthKey)
}

// Date returns date (unix seconds; never NULL).
func (a Accessors) Date(ctx context.Context) (int64, error) {
	return get(ctx, a, func(s Session) int64 { return s.Date })
}

// SetDate sets date.
func (a Accessors) SetDate(ctx context.Context, v int64) error {
	return a.IO.SetFields(ctx, Session{Date: v}, FieldDate)
}

// UserID returns user_id.
func (a Accessors) UserID(ctx context.Context) (Null[int64], error) {
	return get(ctx, a, func(s Session) Null[int64] { return s.UserID })
}

// SetUserID sets user_id (NULL clears it).
func (a Accessors) SetUserID(ctx context.Context, v Null[int64]) error {
	return a.IO.SetFields(ctx, Session{UserID: v}, FieldUserID)
}

// IsBot returns is_bot.
func (a Accessors) IsBot(ctx context.Context) (Null[bool], error) {
	return get(ctx, a, func(s Session) Null[bool] { return s.IsBot })
}

// SetIsBot sets is_bot (NULL clears it).
func (a Accessors) SetIsBot(ctx context.Context, v Null[bool]) error {
	return a.IO.SetFields(ctx, Session{IsBot: v}, FieldIsBot)
}

// ExportSessionString reads the session and encodes it.
func (a Accessors) ExportSessionString(ctx context.Context) (string, error) {
	s, err := a.IO.Session(ctx)
	if err != nil {
		return "", err
	}
	return ExportSessionString(s)
}

// Clock returns the current time. Engines take one so tests can plant
// timestamps; nil means time.Now.
type Clock func() time.Time

// Now returns c's time, or time.Now when c is nil.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}
