// Package sessionstring encodes Hydrogram/Pyrogram session strings.
//
// The current format (Hydrogram, Pyrogram >= 2.0) packs, big-endian:
// dc_id u8, api_id u32, test_mode bool, auth_key 256 bytes, user_id u64,
// is_bot bool (271 bytes), then URL-safe base64 with the '=' padding
// stripped: always 362 characters.
package sessionstring

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the current format.
const (
	PackedLen  = 271
	EncodedLen = 362
	authKeyLen = 256
)

// ErrIncomplete reports a session that cannot be encoded because a field is
// missing. Encode never writes zeros in place of missing fields.
var ErrIncomplete = errors.New("sessionstring: session is incomplete")

// Fields are the values a current-format session string carries.
type Fields struct {
	DCID     uint8
	APIID    uint32
	TestMode bool
	AuthKey  []byte // exactly 256 bytes
	UserID   uint64
	IsBot    bool
}

// String describes f without the auth key.
func (f Fields) String() string {
	return fmt.Sprintf("sessionstring.Fields{DCID:%d APIID:%d TestMode:%t AuthKey:(%d bytes) UserID:%d IsBot:%t}",
		f.DCID, f.APIID, f.TestMode, len(f.AuthKey), f.UserID, f.IsBot)
}

// Encode returns the 362-character Hydrogram session string for f.
// It refuses a zero dc_id, api_id or user_id and an auth key that is not 256
// bytes, with an error wrapping ErrIncomplete.
func Encode(f Fields) (string, error) {
	switch {
	case f.DCID == 0:
		return "", fmt.Errorf("%w: dc_id is 0", ErrIncomplete)
	case f.APIID == 0:
		return "", fmt.Errorf("%w: api_id is 0", ErrIncomplete)
	case f.UserID == 0:
		return "", fmt.Errorf("%w: user_id is 0", ErrIncomplete)
	case len(f.AuthKey) != authKeyLen:
		return "", fmt.Errorf("%w: auth key is %d bytes, want %d", ErrIncomplete, len(f.AuthKey), authKeyLen)
	}
	b := make([]byte, 0, PackedLen)
	b = append(b, f.DCID)
	b = binary.BigEndian.AppendUint32(b, f.APIID)
	b = append(b, boolByte(f.TestMode))
	b = append(b, f.AuthKey...)
	b = binary.BigEndian.AppendUint64(b, f.UserID)
	b = append(b, boolByte(f.IsBot))
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
