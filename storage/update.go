package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// ErrUpdateStateNotFound reports a partial write of the update state (a
// pts, a channel's pts, ...) when no state is stored: set the whole state
// first (SetUpdateState), as MTProto clients do after updates.getState.
var ErrUpdateStateNotFound = errors.New("update state not found: set the whole state first (after updates.getState)")

// UpdateState is where an account's update stream stands (MTProto's
// updates.State): a worker that takes a session over resumes
// updates.getDifference from here instead of losing what came in between.
// UserID is the account it belongs to; the rest are the counters as the
// server sent them.
type UpdateState struct {
	UserID int64
	Pts    int
	Qts    int
	Date   int
	Seq    int
}

// UpdateField names counters of an UpdateState; ORed together they name a
// set of them.
type UpdateField uint8

// The update-state counters.
const (
	UpdatePts UpdateField = 1 << iota
	UpdateQts
	UpdateDate
	UpdateSeq
)

// Has reports whether f includes every field of g.
func (f UpdateField) Has(g UpdateField) bool { return f&g == g }

// Validate checks the user id and the counters (MTProto sends them as
// 32-bit integers, never negative).
func (s UpdateState) Validate() error {
	if s.UserID <= 0 {
		return fmt.Errorf("%w: update state user_id %d must be positive", ErrInvalid, s.UserID)
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"pts", s.Pts}, {"qts", s.Qts}, {"date", s.Date}, {"seq", s.Seq}} {
		if c.v < 0 || c.v > math.MaxInt32 {
			return fmt.Errorf("%w: update state %s %d out of range [0, %d]", ErrInvalid, c.name, c.v, math.MaxInt32)
		}
	}
	return nil
}

// UpdateStateStore is implemented by engines that keep the update state
// with the session. Writes are fenced like every write of the engine and
// Delete removes the state with the session.
type UpdateStateStore interface {
	// UpdateState returns the state and every channel's pts (channel id →
	// pts; ids as MTProto sends them, without the Bot-API -100 prefix) in
	// one round trip; found is false when none is stored.
	UpdateState(ctx context.Context) (s UpdateState, channels map[int64]int, found bool, err error)
	// SetUpdateState stores s as the whole state and forgets every
	// channel's pts (a new state starts a new stream).
	SetUpdateState(ctx context.Context, s UpdateState) error
	// SetUpdateFields writes the counters of s named by which into the
	// stored state; ErrUpdateStateNotFound when there is none, or when it
	// belongs to another user than s.UserID.
	SetUpdateFields(ctx context.Context, s UpdateState, which UpdateField) error
	// SetChannelPts sets one channel's pts in the state of userID;
	// ErrUpdateStateNotFound when there is no state for userID.
	SetChannelPts(ctx context.Context, userID, channelID int64, pts int) error
}

// ClientDataStore is implemented by engines that keep small
// client-specific values with the session (an MTProto library's server
// salt, DC config, address): fenced writes, removed by Delete, at most
// MaxClientData bytes per value under keys of at most 64 bytes.
type ClientDataStore interface {
	// ClientData returns the value stored under key; found is false when
	// there is none.
	ClientData(ctx context.Context, key string) (value []byte, found bool, err error)
	// SetClientData stores value under key (nil or empty removes it).
	SetClientData(ctx context.Context, key string, value []byte) error
}

// MaxClientData bounds one client-data value.
const MaxClientData = 64 << 10

// ValidClientData checks a client-data key and value.
func ValidClientData(key string, value []byte) error {
	if key == "" || len(key) > 64 {
		return fmt.Errorf("%w: client data key must be 1-64 bytes, got %d", ErrInvalid, len(key))
	}
	if len(value) > MaxClientData {
		return fmt.Errorf("%w: client data value of %d bytes exceeds %d", ErrInvalid, len(value), MaxClientData)
	}
	return nil
}

// ValidChannelPts checks a channel id (as MTProto sends it: positive) and a
// pts.
func ValidChannelPts(channelID int64, pts int) error {
	if channelID <= 0 || channelID > MaxChannelID-MinChannelID {
		return fmt.Errorf("%w: channel id %d out of range [1, %d]", ErrInvalid, channelID, MaxChannelID-MinChannelID)
	}
	if pts < 0 || pts > math.MaxInt32 {
		return fmt.Errorf("%w: channel pts %d out of range", ErrInvalid, pts)
	}
	return nil
}
