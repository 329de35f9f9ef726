package storage

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/tgsession/redisstore/sessionstring"
)

// Limits of the session fields.
const (
	// MinDCID and MaxDCID bound dc_id (session strings store it in one byte;
	// Telegram's home DCs are 1-5).
	MinDCID = 1
	MaxDCID = 255
	// MaxAPIID is the largest api_id a session string can carry (u32).
	MaxAPIID = math.MaxUint32
	// DefaultDCID is the dc_id of a new session, as in Hydrogram.
	DefaultDCID = 2
)

// Session holds the seven fields of a Hydrogram session. An invalid Null (or
// a nil AuthKey) is NULL. Date is never NULL (0 for a new session).
type Session struct {
	DCID     Null[int]
	APIID    Null[int64]
	TestMode Null[bool]
	AuthKey  AuthKey
	Date     int64 // unix seconds
	UserID   Null[int64]
	IsBot    Null[bool]
}

// NewSession returns the fields of a freshly created session: dc_id 2,
// date 0, everything else NULL.
func NewSession() Session { return Session{DCID: Some(DefaultDCID)} }

// Field names one session field; Fields ORed together name a set of them
// (AllFields is every field).
type Field uint8

// The session fields.
const (
	FieldDCID Field = 1 << iota
	FieldAPIID
	FieldTestMode
	FieldAuthKey
	FieldDate
	FieldUserID
	FieldIsBot

	// AllFields is every session field.
	AllFields = FieldDCID | FieldAPIID | FieldTestMode | FieldAuthKey | FieldDate | FieldUserID | FieldIsBot
)

// Has reports whether f includes every field of g.
func (f Field) Has(g Field) bool { return f&g == g }

// Validate checks the fields named by which. It returns an error wrapping
// ErrInvalid for the first bad one.
func (s Session) Validate(which Field) error {
	if which.Has(FieldDCID) && s.DCID.Valid && (s.DCID.V < MinDCID || s.DCID.V > MaxDCID) {
		return fmt.Errorf("%w: dc_id %d out of range [%d, %d]", ErrInvalid, s.DCID.V, MinDCID, MaxDCID)
	}
	if which.Has(FieldAPIID) && s.APIID.Valid && (s.APIID.V <= 0 || s.APIID.V > MaxAPIID) {
		return fmt.Errorf("%w: api_id %d out of range [1, %d] (see my.telegram.org)", ErrInvalid, s.APIID.V, MaxAPIID)
	}
	if which.Has(FieldAuthKey) {
		if err := s.AuthKey.Validate(); err != nil {
			return err
		}
	}
	if which.Has(FieldDate) && s.Date < 0 {
		return fmt.Errorf("%w: date %d must not be negative", ErrInvalid, s.Date)
	}
	if which.Has(FieldUserID) && s.UserID.Valid && s.UserID.V <= 0 {
		return fmt.Errorf("%w: user_id %d must be positive", ErrInvalid, s.UserID.V)
	}
	return nil
}

// Merge returns s with the fields named by which taken from t.
func (s Session) Merge(t Session, which Field) Session {
	if which.Has(FieldDCID) {
		s.DCID = t.DCID
	}
	if which.Has(FieldAPIID) {
		s.APIID = t.APIID
	}
	if which.Has(FieldTestMode) {
		s.TestMode = t.TestMode
	}
	if which.Has(FieldAuthKey) {
		s.AuthKey = t.AuthKey
	}
	if which.Has(FieldDate) {
		s.Date = t.Date
	}
	if which.Has(FieldUserID) {
		s.UserID = t.UserID
	}
	if which.Has(FieldIsBot) {
		s.IsBot = t.IsBot
	}
	return s
}

// String describes the session without revealing the auth key.
func (s Session) String() string {
	return fmt.Sprintf("Session{DCID:%v APIID:%v TestMode:%v AuthKey:%v Date:%d UserID:%v IsBot:%v}",
		s.DCID, s.APIID, s.TestMode, s.AuthKey, s.Date, s.UserID, s.IsBot)
}

// ExportSessionString returns Hydrogram's 362-character session string for s.
// It fails with an error wrapping ErrIncomplete when dc_id, api_id, user_id or
// the auth key is NULL (before login), where Hydrogram raises struct.error.
// NULL test_mode and is_bot pack as false, as in Hydrogram.
func ExportSessionString(s Session) (string, error) {
	var missing []string
	if !s.DCID.Valid {
		missing = append(missing, "dc_id")
	}
	if !s.APIID.Valid {
		missing = append(missing, "api_id")
	}
	if s.AuthKey == nil {
		missing = append(missing, "auth_key")
	}
	if !s.UserID.Valid {
		missing = append(missing, "user_id")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: cannot export a session string without %v (log in first)", ErrIncomplete, missing)
	}
	if err := s.Validate(AllFields); err != nil {
		return "", err
	}
	str, err := sessionstring.Encode(sessionstring.Session{
		DCID:     uint8(s.DCID.V), // Validate keeps it in 1-255
		APIID:    uint32(s.APIID.V),
		TestMode: s.TestMode.V,
		AuthKey:  s.AuthKey,
		UserID:   uint64(s.UserID.V),
		IsBot:    s.IsBot.V,
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	return str, nil
}

// SessionFromString converts a decoded session string to session fields the
// way Hydrogram loads one: date is 0 and every field the string did not carry
// (api_id of a legacy Pyrogram string; api_id, user_id, is_bot and test_mode
// of a Telethon string) is NULL.
func SessionFromString(d sessionstring.Session) (Session, error) {
	s := Session{DCID: Some(int(d.DCID)), AuthKey: append(AuthKey(nil), d.AuthKey...)}
	if d.Has(sessionstring.HasAPIID) {
		s.APIID = Some(int64(d.APIID))
	}
	if d.Has(sessionstring.HasTestMode) {
		s.TestMode = Some(d.TestMode)
	}
	if d.Has(sessionstring.HasUserID) {
		if d.UserID > math.MaxInt64 {
			return Session{}, fmt.Errorf("%w: user_id %d does not fit a signed 64-bit integer", ErrInvalid, d.UserID)
		}
		s.UserID = Some(int64(d.UserID))
	}
	if d.Has(sessionstring.HasIsBot) {
		s.IsBot = Some(d.IsBot)
	}
	return s, s.Validate(AllFields)
}

// ImportSessionString decodes str (any format sessionstring.Decode reads)
// and makes it the stored session of st: all seven fields, date 0 and absent
// fields NULL, like Hydrogram's Client loading a string. The peer cache is
// kept only when the stored session belongs to the same account (same known
// user_id), because access hashes are valid for one account only; otherwise
// the whole session is replaced (ReplaceSession: atomic on a Replacer, so a
// failure leaves the old session). It returns what the string carried.
//
// st must be open, except that an unopened Replacer that accepts Replace
// unopened (the Redis store when unfenced) is used as is: a missing session
// is then created by the same atomic step, never left blank. Everything is
// validated before anything is written: a string that does not decode, or
// carries an invalid field, changes nothing.
func ImportSessionString(ctx context.Context, st Storage, str string) (sessionstring.Session, error) {
	d, err := sessionstring.Decode(str)
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s, err := SessionFromString(d)
	if err != nil {
		return d, err
	}
	cur, err := st.Session(ctx)
	_, replacer := st.(Replacer)
	switch {
	case err == nil && cur.UserID.Valid && s.UserID.Valid && cur.UserID.V == s.UserID.V:
		return d, st.SetSession(ctx, s)
	case err == nil, errors.Is(err, ErrSessionNotFound), errors.Is(err, ErrClosed) && replacer:
		return d, ReplaceSession(ctx, st, s)
	default:
		return d, err
	}
}
