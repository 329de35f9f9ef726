package storage

import "fmt"

// Bot-API style id ranges (current Hydrogram): users are positive, basic
// groups are -chat_id, channels and supergroups are -1000000000000 - channel_id.
const (
	MaxUserID    int64 = 999999999999
	MinChatID    int64 = -999999999999
	MaxChannelID int64 = -1000000000000
	MinChannelID int64 = -1007852516352
)

// IDKind is what a Bot-API style id refers to.
type IDKind string

// Id kinds, as Hydrogram's utils.get_peer_type names them.
const (
	IDUser    IDKind = "user"
	IDChat    IDKind = "chat"
	IDChannel IDKind = "channel"
)

// KindOfID classifies a Bot-API style id like Hydrogram's get_peer_type.
// An id outside every range returns an error wrapping ErrInvalid.
func KindOfID(id int64) (IDKind, error) {
	switch {
	case id > 0 && id <= MaxUserID:
		return IDUser, nil
	case id < 0 && id >= MinChatID:
		return IDChat, nil
	case id < MaxChannelID && id >= MinChannelID:
		return IDChannel, nil
	}
	return "", fmt.Errorf("%w: Peer id invalid: %d", ErrInvalid, id)
}

// ChannelID converts between a raw channel id and its Bot-API form
// (-1000000000000 - x); the map is its own inverse, like get_channel_id.
func ChannelID(x int64) int64 { return MaxChannelID - x }

// ChatID converts between a raw basic-group id and its Bot-API form (-x).
func ChatID(x int64) int64 { return -x }
