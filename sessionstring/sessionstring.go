// Package sessionstring reads and writes Telegram session strings, byte-exact
// with Hydrogram, Pyrogram and Telethon. It has no dependencies outside the
// standard library.
//
// Formats (all integers big-endian, booleans one byte):
//
//	current (Hydrogram, Pyrogram >= 2.0)  dc_id u8, api_id u32, test_mode, auth_key 256, user_id u64, is_bot
//	                                     271 bytes, URL-safe base64 without '=': 362 characters
//	legacy Pyrogram, 32-bit user id      dc_id u8, test_mode, auth_key 256, user_id u32, is_bot: 263 bytes, 351 chars
//	legacy Pyrogram, 64-bit user id      dc_id u8, test_mode, auth_key 256, user_id u64, is_bot: 267 bytes, 356 chars
//	Telethon v1 StringSession            '1' + padded URL-safe base64 of dc_id u8, IPv4 (4) or IPv6 (16),
//	                                     port u16, auth_key 256: 353 or 369 characters
//
// Decode detects the format. Like Python's decoders it accepts the standard
// base64 alphabet ('+', '/') as well as the URL-safe one, whitespace and line
// breaks anywhere, and '=' padding; everything else that is off (length,
// characters, a dc_id of 0, a Telethon version other than '1') is an error
// wrapping ErrInvalid that names the problem. It never panics and never
// puts the string or the key into an error.
package sessionstring

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Lengths of the formats: packed bytes and characters as written.
const (
	PackedLen         = 271 // current format
	EncodedLen        = 362
	Legacy32PackedLen = 263
	Legacy32Len       = 351
	Legacy64PackedLen = 267
	Legacy64Len       = 356
	TelethonIPv4Len   = 353
	TelethonIPv6Len   = 369
	AuthKeyLen        = 256
)

// maxUserIDOld is Pyrogram 1.x's MAX_USER_ID_OLD: legacy strings use the
// 32-bit layout for user ids below it and the 64-bit layout otherwise.
const maxUserIDOld = 2147483647

// Errors. Test with errors.Is.
var (
	// ErrInvalid reports a string that is not a session string we can read.
	ErrInvalid = errors.New("sessionstring: invalid session string")
	// ErrIncomplete reports a session that lacks what a format needs.
	// Encoders never write zeros in place of missing fields.
	ErrIncomplete = errors.New("sessionstring: session is incomplete")
)

// Format is a session-string layout.
type Format int

// The formats Decode recognizes.
const (
	FormatCurrent    Format = iota + 1 // Hydrogram and Pyrogram >= 2.0
	FormatPyrogram32                   // legacy Pyrogram, 32-bit user id
	FormatPyrogram64                   // legacy Pyrogram, 64-bit user id
	FormatTelethon                     // Telethon v1 StringSession
)

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatCurrent:
		return "hydrogram"
	case FormatPyrogram32:
		return "pyrogram-legacy-32"
	case FormatPyrogram64:
		return "pyrogram-legacy-64"
	case FormatTelethon:
		return "telethon-v1"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Field is an optional field a format may carry; a set of them says which
// fields a decoded string had. dc_id and the auth key are always carried.
type Field uint8

// Optional fields.
const (
	HasAPIID Field = 1 << iota
	HasTestMode
	HasUserID
	HasIsBot
	HasAddr // Telethon: the DC's address and port
)

// Session is what a session string carries. Carried says which optional
// fields were present: a legacy Pyrogram string has no api_id, a Telethon one
// has no api_id, user_id, is_bot or test_mode; absent is not zero.
//
// Formatting a Session (String, any fmt verb) never prints the auth key.
type Session struct {
	From     Format // the format Decode found; ignored by the encoders
	DCID     uint8
	APIID    uint32
	TestMode bool
	AuthKey  []byte // 256 bytes
	UserID   uint64
	IsBot    bool
	Addr     netip.AddrPort // Telethon: the DC's IP address and port
	Carried  Field
}

// Has reports whether the string carried field f.
func (s Session) Has(f Field) bool { return s.Carried&f == f }

// String describes s without the auth key.
func (s Session) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sessionstring.Session{From:%v DCID:%d", s.From, s.DCID)
	opt := func(f Field, name string, v any) {
		if s.Has(f) {
			fmt.Fprintf(&b, " %s:%v", name, v)
		} else {
			fmt.Fprintf(&b, " %s:absent", name)
		}
	}
	opt(HasAPIID, "APIID", s.APIID)
	opt(HasTestMode, "TestMode", s.TestMode)
	fmt.Fprintf(&b, " AuthKey:(%d bytes)", len(s.AuthKey))
	opt(HasUserID, "UserID", s.UserID)
	opt(HasIsBot, "IsBot", s.IsBot)
	if s.Has(HasAddr) {
		fmt.Fprintf(&b, " Addr:%v", s.Addr)
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so %#v does not print the key either.
func (s Session) GoString() string { return s.String() }

// Format implements fmt.Formatter: every verb prints String.
func (s Session) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// Encode returns the 362-character Hydrogram/Pyrogram >= 2.0 string for s.
// It refuses a session without a dc_id, api_id, user_id or 256-byte auth
// key (ErrIncomplete). test_mode and is_bot pack as false when absent, as
// Hydrogram packs None.
func Encode(s Session) (string, error) {
	if err := s.need("Hydrogram", true); err != nil {
		return "", err
	}
	b := make([]byte, 0, PackedLen)
	b = append(b, s.DCID)
	b = binary.BigEndian.AppendUint32(b, s.APIID)
	b = append(b, boolByte(s.TestMode))
	b = append(b, s.AuthKey...)
	b = binary.BigEndian.AppendUint64(b, s.UserID)
	b = append(b, boolByte(s.IsBot))
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// EncodePyrogramLegacy returns the string Pyrogram 1.x wrote (no api_id):
// the 351-character 32-bit layout for user ids below 2147483647, the
// 356-character 64-bit layout otherwise. For old tools only; new code wants
// Encode.
func EncodePyrogramLegacy(s Session) (string, error) {
	if err := s.need("legacy Pyrogram", false); err != nil {
		return "", err
	}
	b := make([]byte, 0, Legacy64PackedLen)
	b = append(b, s.DCID, boolByte(s.TestMode))
	b = append(b, s.AuthKey...)
	if s.UserID < maxUserIDOld {
		b = binary.BigEndian.AppendUint32(b, uint32(s.UserID))
	} else {
		b = binary.BigEndian.AppendUint64(b, s.UserID)
	}
	b = append(b, boolByte(s.IsBot))
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// EncodeTelethon returns a Telethon v1 StringSession: '1' and padded URL-safe
// base64 of dc_id, the DC's IPv4 or IPv6 address, port and auth key. It needs
// s.Addr (Telethon connects to it directly); user_id and api_id are not part
// of the format.
func EncodeTelethon(s Session) (string, error) {
	switch {
	case s.DCID == 0:
		return "", fmt.Errorf("%w: Telethon string needs a dc_id", ErrIncomplete)
	case len(s.AuthKey) != AuthKeyLen:
		return "", fmt.Errorf("%w: auth key is %d bytes, want %d", ErrIncomplete, len(s.AuthKey), AuthKeyLen)
	case !s.Addr.IsValid() || s.Addr.Port() == 0:
		return "", fmt.Errorf("%w: Telethon string needs the DC's address and port (Session.Addr)", ErrIncomplete)
	}
	ip := s.Addr.Addr().Unmap()
	b := make([]byte, 0, 275)
	b = append(b, s.DCID)
	b = append(b, ip.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, s.Addr.Port())
	b = append(b, s.AuthKey...)
	return "1" + base64.URLEncoding.EncodeToString(b), nil
}

func (s Session) need(format string, apiID bool) error {
	var missing []string
	if s.DCID == 0 {
		missing = append(missing, "dc_id")
	}
	if apiID && s.APIID == 0 {
		missing = append(missing, "api_id")
	}
	if len(s.AuthKey) != AuthKeyLen {
		missing = append(missing, fmt.Sprintf("a %d-byte auth key (have %d bytes)", AuthKeyLen, len(s.AuthKey)))
	}
	if s.UserID == 0 {
		missing = append(missing, "user_id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: a %s string needs %s", ErrIncomplete, format, strings.Join(missing, ", "))
	}
	return nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

const accepted = "accepted: 362 characters (Hydrogram, Pyrogram >= 2.0), 351 or 356 (legacy Pyrogram), 353 or 369 (Telethon v1)"

// Decode reads any of the four formats. Whitespace anywhere, '=' padding and
// the standard base64 alphabet are accepted; anything else that is off is an
// error wrapping ErrInvalid that names the problem and the accepted lengths.
func Decode(str string) (Session, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			return -1
		}
		return r
	}, str)
	if s == "" {
		return Session{}, fmt.Errorf("%w: empty string; %s", ErrInvalid, accepted)
	}
	body := strings.TrimRight(s, "=")
	if pad := len(s) - len(body); pad > 2 {
		return Session{}, fmt.Errorf("%w: %d '=' at the end, at most 2 are padding", ErrInvalid, pad)
	}
	switch len(body) {
	case EncodedLen:
		return decodePacked(body, FormatCurrent, PackedLen)
	case Legacy32Len:
		return decodePacked(body, FormatPyrogram32, Legacy32PackedLen)
	case Legacy64Len:
		return decodePacked(body, FormatPyrogram64, Legacy64PackedLen)
	case TelethonIPv4Len - 1, TelethonIPv6Len - 1:
		if body[0] != '1' {
			return Session{}, fmt.Errorf("%w: a %d-character string is a Telethon StringSession, whose first character is its version; version %q is not supported (only '1')",
				ErrInvalid, len(s), printable(body[0]))
		}
		return decodeTelethon(body[1:])
	}
	return Session{}, fmt.Errorf("%w: %d characters after removing whitespace and padding; %s", ErrInvalid, len(body), accepted)
}

func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(c)
	}
	return fmt.Sprintf("\\x%02x", c)
}

// unbase64 decodes unpadded base64 in either alphabet.
func unbase64(body string) ([]byte, error) {
	b := []byte(body)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '+':
			b[i] = '-'
		case c == '/':
			b[i] = '_'
		default:
			return nil, fmt.Errorf("%w: character %q at position %d is not base64", ErrInvalid, printable(c), i)
		}
	}
	out, err := base64.RawURLEncoding.DecodeString(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w: not valid base64", ErrInvalid)
	}
	return out, nil
}

func decodePacked(body string, f Format, n int) (Session, error) {
	b, err := unbase64(body)
	if err != nil {
		return Session{}, err
	}
	if len(b) != n {
		return Session{}, fmt.Errorf("%w: %v layout is %d bytes, got %d", ErrInvalid, f, n, len(b))
	}
	s := Session{From: f, DCID: b[0], Carried: HasTestMode | HasUserID | HasIsBot}
	if s.DCID == 0 {
		return Session{}, fmt.Errorf("%w: dc_id is 0", ErrInvalid)
	}
	rest := b[1:]
	if f == FormatCurrent {
		s.APIID = binary.BigEndian.Uint32(rest)
		s.Carried |= HasAPIID
		rest = rest[4:]
	}
	s.TestMode = rest[0] != 0
	s.AuthKey = append([]byte(nil), rest[1:1+AuthKeyLen]...)
	rest = rest[1+AuthKeyLen:]
	if f == FormatPyrogram32 {
		s.UserID = uint64(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
	} else {
		s.UserID = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
	}
	s.IsBot = rest[0] != 0
	return s, nil
}

func decodeTelethon(body string) (Session, error) {
	b, err := unbase64(body)
	if err != nil {
		return Session{}, err
	}
	ipLen := len(b) - 1 - 2 - AuthKeyLen
	if ipLen != 4 && ipLen != 16 {
		return Session{}, fmt.Errorf("%w: Telethon layout is 263 or 275 bytes, got %d", ErrInvalid, len(b))
	}
	s := Session{From: FormatTelethon, DCID: b[0], Carried: HasAddr}
	if s.DCID == 0 {
		return Session{}, fmt.Errorf("%w: dc_id is 0", ErrInvalid)
	}
	ip, _ := netip.AddrFromSlice(b[1 : 1+ipLen])
	port := binary.BigEndian.Uint16(b[1+ipLen:])
	s.Addr = netip.AddrPortFrom(ip, port)
	s.AuthKey = append([]byte(nil), b[3+ipLen:]...)
	return s, nil
}
