package storage

import (
	"fmt"
	"strings"
)

// UsernameTTL is how long (in seconds) a cached username stays valid, as in
// Hydrogram: a lookup fails as expired when |now - LastUpdateOn| > UsernameTTL.
const UsernameTTL = 8 * 60 * 60

// Limits on what a peer may carry.
const (
	MaxUsernameLen    = 64
	MaxUsernames      = 64
	MaxPhoneNumberLen = 32
)

// PeerType is the type string Hydrogram stores with each peer.
type PeerType string

// Peer types.
const (
	PeerUser       PeerType = "user"
	PeerBot        PeerType = "bot"
	PeerGroup      PeerType = "group"
	PeerChannel    PeerType = "channel"
	PeerSupergroup PeerType = "supergroup"
)

// IDKind returns the id range the type belongs to, or "" for an unknown type.
func (t PeerType) IDKind() IDKind {
	switch t {
	case PeerUser, PeerBot:
		return IDUser
	case PeerGroup:
		return IDChat
	case PeerChannel, PeerSupergroup:
		return IDChannel
	}
	return ""
}

// Valid reports whether t is one of the five peer types.
func (t PeerType) Valid() bool { return t.IDKind() != "" }

// Peer is one entry of the session's peer cache.
type Peer struct {
	ID         int64       // Bot-API style id
	AccessHash Null[int64] // NULL when Telegram sent none
	Type       PeerType
	// Usernames are lower-case, without '@'; the first is the primary one,
	// the rest collectible ones. All of them resolve.
	Usernames   []string
	PhoneNumber string // digits only; "" for none
	// Min marks a "min" constructor whose access hash is only usable in the
	// context it came from; it never replaces a known full access hash.
	Min bool
	// LastUpdateOn is when the engine wrote the peer (unix seconds). The
	// engine sets it; it is ignored in UpdatePeers input.
	LastUpdateOn int64
}

// Username returns the primary username, or "".
func (p Peer) Username() string {
	if len(p.Usernames) == 0 {
		return ""
	}
	return p.Usernames[0]
}

// InputPeer returns the peer in the form API calls take. A peer with an
// invalid type returns the zero InputPeer (Kind InputPeerEmpty).
func (p Peer) InputPeer() InputPeer {
	ip, err := NewInputPeer(p.ID, p.AccessHash, p.Type)
	if err != nil {
		return InputPeer{}
	}
	return ip
}

// Normalized returns p with its usernames (duplicates dropped) and phone
// number normalized by NormalizeUsername and NormalizePhoneNumber, then
// checks it: a bad type, an id outside its type's range, more than
// MaxUsernames usernames, or a username or phone number that is not valid
// after normalization returns an error wrapping ErrInvalid.
func (p Peer) Normalized() (Peer, error) {
	kind := p.Type.IDKind()
	if kind == "" {
		return p, fmt.Errorf("%w: peer %d: Invalid peer type: %s (want user, bot, group, channel or supergroup)", ErrInvalid, p.ID, Excerpt(string(p.Type)))
	}
	if got, err := KindOfID(p.ID); err != nil || got != kind {
		return p, fmt.Errorf("%w: peer id %d is not a valid %s id for type %s", ErrInvalid, p.ID, kind, p.Type)
	}
	if len(p.Usernames) > MaxUsernames {
		return p, fmt.Errorf("%w: peer %d has %d usernames, at most %d", ErrInvalid, p.ID, len(p.Usernames), MaxUsernames)
	}
	var names []string
	for _, u := range p.Usernames {
		n := NormalizeUsername(u)
		if !validUsername(n) {
			return p, fmt.Errorf("%w: peer %d: username %s must be 1-%d letters, digits or underscores", ErrInvalid, p.ID, Excerpt(u), MaxUsernameLen)
		}
		dup := false
		for _, m := range names {
			dup = dup || m == n
		}
		if !dup {
			names = append(names, n)
		}
	}
	p.Usernames = names
	if p.PhoneNumber != "" {
		ph := NormalizePhoneNumber(p.PhoneNumber)
		if !validPhone(ph) {
			return p, fmt.Errorf("%w: peer %d: phone number %s must be 1-%d digits", ErrInvalid, p.ID, Excerpt(p.PhoneNumber), MaxPhoneNumberLen)
		}
		p.PhoneNumber = ph
	}
	return p, nil
}

// NormalizeUsername is the username rule of the contract: it trims leading
// and trailing white space, drops one leading '@' and lower-cases. A valid
// username is then 1-MaxUsernameLen of [a-z0-9_].
func NormalizeUsername(u string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(u), "@"))
}

// NormalizePhoneNumber is the phone-number rule of the contract: it drops
// every '+', space, tab, '-', '.', '(' and ')'. A valid phone number is then
// 1-MaxPhoneNumberLen digits.
func NormalizePhoneNumber(p string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '+', ' ', '-', '.', '(', ')', '\t':
			return -1
		}
		return r
	}, p)
}

// ValidLookupUsername reports whether a normalized username can be in the
// cache at all; engines answer "not found" without a round trip otherwise.
func ValidLookupUsername(u string) bool { return validUsername(u) }

// ValidLookupPhoneNumber reports whether a normalized phone number can be in
// the cache at all.
func ValidLookupPhoneNumber(p string) bool { return validPhone(p) }

func validUsername(u string) bool {
	if len(u) == 0 || len(u) > MaxUsernameLen {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validPhone(p string) bool {
	if len(p) == 0 || len(p) > MaxPhoneNumberLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// NormalizePeers normalizes and validates a batch and drops all but the last
// occurrence of each id (keeping the order of last occurrences). Any invalid
// peer fails the whole batch. Engines call it before writing anything.
func NormalizePeers(peers []Peer) ([]Peer, error) {
	last := make(map[int64]int, len(peers))
	for i, p := range peers {
		last[p.ID] = i
	}
	out := make([]Peer, 0, len(last))
	for i, p := range peers {
		n, err := p.Normalized()
		if err != nil {
			return nil, fmt.Errorf("peer #%d of %d: %w", i, len(peers), err)
		}
		if last[p.ID] == i {
			out = append(out, n)
		}
	}
	return out, nil
}

// InputPeerKind is the TL constructor an InputPeer stands for.
type InputPeerKind int

// InputPeer kinds.
const (
	InputPeerEmpty InputPeerKind = iota
	InputPeerUser
	InputPeerChat
	InputPeerChannel
)

// String returns the TL constructor name.
func (k InputPeerKind) String() string {
	switch k {
	case InputPeerUser:
		return "InputPeerUser"
	case InputPeerChat:
		return "InputPeerChat"
	case InputPeerChannel:
		return "InputPeerChannel"
	}
	return "InputPeerEmpty"
}

// InputPeer is the form of a peer that API calls take: InputPeerUser
// (user_id, access_hash), InputPeerChat (chat_id) or InputPeerChannel
// (channel_id, access_hash). ID is the raw TL id, not the Bot-API id.
type InputPeer struct {
	Kind       InputPeerKind
	ID         int64       // user_id, chat_id or channel_id
	AccessHash Null[int64] // always NULL for InputPeerChat
}

// String formats the peer like the TL object, e.g. InputPeerUser(user_id=1, access_hash=2).
func (p InputPeer) String() string {
	switch p.Kind {
	case InputPeerUser:
		return fmt.Sprintf("InputPeerUser(user_id=%d, access_hash=%v)", p.ID, p.AccessHash)
	case InputPeerChat:
		return fmt.Sprintf("InputPeerChat(chat_id=%d)", p.ID)
	case InputPeerChannel:
		return fmt.Sprintf("InputPeerChannel(channel_id=%d, access_hash=%v)", p.ID, p.AccessHash)
	}
	return "InputPeerEmpty()"
}

// NewInputPeer converts a cached peer to its InputPeer like Hydrogram's
// get_input_peer: user/bot -> InputPeerUser(id), group -> InputPeerChat(-id),
// channel/supergroup -> InputPeerChannel(-1000000000000 - id). An unknown
// type returns an error wrapping ErrInvalid ("Invalid peer type: x").
func NewInputPeer(id int64, accessHash Null[int64], t PeerType) (InputPeer, error) {
	switch t.IDKind() {
	case IDUser:
		return InputPeer{Kind: InputPeerUser, ID: id, AccessHash: accessHash}, nil
	case IDChat:
		return InputPeer{Kind: InputPeerChat, ID: ChatID(id)}, nil
	case IDChannel:
		return InputPeer{Kind: InputPeerChannel, ID: ChannelID(id), AccessHash: accessHash}, nil
	}
	return InputPeer{}, fmt.Errorf("%w: Invalid peer type: %s", ErrInvalid, clip(string(t)))
}

// UsernameExpired reports whether a username cached at lastUpdateOn has
// expired at now (both unix seconds): |now - lastUpdateOn| > UsernameTTL.
func UsernameExpired(now, lastUpdateOn int64) bool {
	d := now - lastUpdateOn
	if d < 0 {
		d = -d
	}
	return d > UsernameTTL
}
