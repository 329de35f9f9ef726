package redisstore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tgsession/redisstore/storage"
)

// The codecs between Go values and the strings stored in Redis (the layout
// is described in keys.go).

// authKeyRaw marks an auth key stored as plain bytes. The envelope leaves room
// for an encrypted form; a value with another marker is refused.
const authKeyRaw = "raw:"

// layoutError reports data this code does not read: a session stored with
// another layout version (stored is what the session records, "" for none).
func layoutError(stored string) error {
	n, err := strconv.Atoi(stored)
	switch {
	case err == nil && n > LayoutVersion:
		return fmt.Errorf("%w: the session is stored in layout %d, this code reads layout %d: upgrade tgsession", storage.ErrLayoutVersion, n, LayoutVersion)
	case err == nil && n > 0:
		return fmt.Errorf("%w: the session is stored in layout %d, this code reads layout %d: export it with the tgsession that wrote it and import it with this one", storage.ErrLayoutVersion, n, LayoutVersion)
	}
	return fmt.Errorf("%w: the session records layout %q, which no tgsession writes: it was not written by tgsession, or was changed by hand", storage.ErrLayoutVersion, stored)
}

// encodeSession returns field/value pairs for set_fields.lua; "" is NULL.
// authKey is the auth key's stored form (Store.sealAuthKey), "" for none.
func encodeSession(s storage.Session, which storage.Field, authKey string) []any {
	var out []any
	add := func(f storage.Field, name, v string) {
		if which.Has(f) {
			out = append(out, name, v)
		}
	}
	add(storage.FieldDCID, "dc_id", nullInt(s.DCID.V, s.DCID.Valid))
	add(storage.FieldAPIID, "api_id", nullInt(s.APIID.V, s.APIID.Valid))
	add(storage.FieldTestMode, "test_mode", nullBool(s.TestMode))
	add(storage.FieldAuthKey, "auth_key", authKey)
	add(storage.FieldDate, "date", strconv.FormatInt(s.Date, 10))
	add(storage.FieldUserID, "user_id", nullInt(s.UserID.V, s.UserID.Valid))
	add(storage.FieldIsBot, "is_bot", nullBool(s.IsBot))
	return out
}

func nullInt[T int | int64](v T, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatInt(int64(v), 10)
}

func nullBool(v storage.Null[bool]) string {
	switch {
	case !v.Valid:
		return ""
	case v.V:
		return "1"
	}
	return "0"
}

// decodeSession reads the session hash; openAuthKey turns the stored auth
// key into the key (Store.openAuthKey).
func decodeSession(m map[string]string, openAuthKey func(string) (storage.AuthKey, error)) (storage.Session, error) {
	var s storage.Session
	if v := m["layout"]; v != strconv.Itoa(LayoutVersion) {
		return s, layoutError(v)
	}
	var err error
	field := func(name string, parse func(string) error) {
		if v, ok := m[name]; ok && err == nil {
			if perr := parse(v); perr != nil {
				err = fmt.Errorf("corrupt session field %s: %w", name, perr)
			}
		}
	}
	field("dc_id", func(v string) error { return parseNull(v, 32, &s.DCID) })
	field("api_id", func(v string) error { return parseNull(v, 64, &s.APIID) })
	field("test_mode", func(v string) error { return parseBool(v, &s.TestMode) })
	if v, ok := m["auth_key"]; ok {
		k, kerr := openAuthKey(v)
		if kerr != nil {
			return s, kerr
		}
		s.AuthKey = k
	}
	field("date", func(v string) error {
		d, perr := strconv.ParseInt(v, 10, 64)
		s.Date = d
		return perr
	})
	field("user_id", func(v string) error { return parseNull(v, 64, &s.UserID) })
	field("is_bot", func(v string) error { return parseBool(v, &s.IsBot) })
	return s, err
}

func parseNull[T int | int64](v string, bits int, dst *storage.Null[T]) error {
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	*dst = storage.Some(T(n))
	return nil
}

func parseBool(v string, dst *storage.Null[bool]) error {
	switch v {
	case "0":
		*dst = storage.Some(false)
	case "1":
		*dst = storage.Some(true)
	default:
		return fmt.Errorf("not 0 or 1")
	}
	return nil
}

// appendRow appends p's row "type|access_hash|usernames|phone|min|last_update_on"
// (the layout in keys.go). p must be normalized (storage.NormalizePeers): no
// field then contains '|'.
func appendRow(b []byte, p storage.Peer) []byte {
	b = append(b, p.Type...)
	b = append(b, '|')
	if p.AccessHash.Valid {
		b = strconv.AppendInt(b, p.AccessHash.V, 10)
	}
	b = append(b, '|')
	for i, u := range p.Usernames {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, u...)
	}
	b = append(b, '|')
	b = append(b, p.PhoneNumber...)
	b = append(b, '|')
	if p.Min {
		b = append(b, '1')
	}
	b = append(b, '|')
	return strconv.AppendInt(b, p.LastUpdateOn, 10)
}

// decodeRow parses the row of peer id (the inverse of appendRow).
func decodeRow(id int64, row string) (storage.Peer, error) {
	f := strings.Split(row, "|")
	if len(f) != 6 {
		return storage.Peer{}, fmt.Errorf("corrupt peer %d: row has %d fields, want 6", id, len(f))
	}
	p := storage.Peer{ID: id, Type: storage.PeerType(f[0]), PhoneNumber: f[3], Min: f[4] == "1"}
	if !p.Type.Valid() {
		return storage.Peer{}, fmt.Errorf("corrupt peer %d: %w: Invalid peer type: %s", id, storage.ErrInvalid, f[0])
	}
	if f[1] != "" {
		h, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return storage.Peer{}, fmt.Errorf("corrupt peer %d: access hash is not an integer", id)
		}
		p.AccessHash = storage.Some(h)
	}
	if f[2] != "" {
		p.Usernames = strings.Fields(f[2])
	}
	t, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil {
		return storage.Peer{}, fmt.Errorf("corrupt peer %d: last_update_on is not an integer", id)
	}
	p.LastUpdateOn = t
	return p, nil
}
