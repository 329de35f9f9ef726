// Package gotdstore runs a gotd/td Telegram client (github.com/gotd/td) on a
// tgsession Redis store: gotd's session storage, its update-state storage
// and access hashers, and its peer storage and cache, all on one
// redisstore.Store that holds the session's lease.
//
// It lives in its own Go module so that the core module never depends on
// gotd (whose generated tg package takes minutes and gigabytes to compile).
//
// What goes where:
//   - the auth key and dc_id are the session's fields (written only when they
//     change, so a durable write is not paid on every reconnect); gotd's salt,
//     DC config and address are client data under "gotd";
//   - the update state (pts, qts, date, seq, per-channel pts) is the store's
//     update state, so a worker that takes the session over resumes
//     getDifference where the old owner stopped;
//   - access hashes and peers are rows of the peer cache, merged (a bare
//     access-hash save never wipes a stored username or phone number), so the
//     Hydrogram view (PeerByUsername, session strings) sees gotd's data;
//   - user_id and is_bot come from the client's self (OnSelfSuccess), api_id
//     from the app id, so the session exports a Hydrogram session string.
//
// The lease is the guard against AUTH_KEY_DUPLICATED: Run stops the client
// the moment Lease().Lost() fires, and every write of a deposed worker is
// refused inside Redis (lock.ErrLeaseLost).
package gotdstore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/peers"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/storage"
)

// clientDataKey is the client-data key of gotd's own session data.
const clientDataKey = "gotd"

// contactsHashKey is the client-data key of gotd's contacts hash.
const contactsHashKey = "gotd_contacts_hash"

// Store adapts an open redisstore.Store to gotd. It implements
// session.Storage, updates.StateStorage, updates.ChannelAccessHasher,
// updates.UserAccessHasher, peers.Storage and peers.Cache.
type Store struct {
	st *redisstore.Store
}

var (
	_ session.Storage             = (*Store)(nil)
	_ updates.StateStorage        = (*Store)(nil)
	_ updates.ChannelAccessHasher = (*Store)(nil)
	_ updates.UserAccessHasher    = (*Store)(nil)
	_ peers.Storage               = (*Store)(nil)
	_ peers.Cache                 = (*Store)(nil)
)

// New returns the adapter for st, which must be open (a Leased store holds
// its lease).
func New(st *redisstore.Store) *Store { return &Store{st: st} }

// Storage returns the underlying store (for the Hydrogram view: Session,
// PeerByUsername, ExportSessionString).
func (s *Store) Storage() *redisstore.Store { return s.st }

// gotdData is what gotd keeps besides the key and the DC.
type gotdData struct {
	Config session.Config
	Addr   string
	Salt   int64
}

// jsonData is session.Loader's format (Version 1).
type jsonData struct {
	Version int
	Data    session.Data
}

// keyID is the MTProto auth key id: the low 8 bytes of SHA-1(key), as gotd
// checks it (sha1(key)[12:20]).
func keyID(key []byte) []byte {
	h := sha1.Sum(key)
	return h[12:20]
}

// LoadSession returns the session in session.Loader's Version-1 JSON, or
// session.ErrNotFound when the session has no auth key yet.
func (s *Store) LoadSession(ctx context.Context) ([]byte, error) {
	sess, err := s.st.Session(ctx)
	if err != nil {
		return nil, err
	}
	if sess.AuthKey == nil {
		return nil, session.ErrNotFound
	}
	d := session.Data{DC: sess.DCID.V, AuthKey: []byte(sess.AuthKey), AuthKeyID: keyID(sess.AuthKey)}
	if raw, found, err := s.st.ClientData(ctx, clientDataKey); err != nil {
		return nil, err
	} else if found {
		var g gotdData
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, fmt.Errorf("gotdstore: stored gotd data: %w", err)
		}
		d.Config, d.Addr, d.Salt = g.Config, g.Addr, g.Salt
	}
	return json.Marshal(jsonData{Version: 1, Data: d})
}

// StoreSession writes gotd's session: the auth key and dc_id only when they
// changed, gotd's salt, config and address as client data.
func (s *Store) StoreSession(ctx context.Context, data []byte) error {
	var v jsonData
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("gotdstore: %w: session JSON: %w", storage.ErrInvalid, err)
	}
	if v.Version != 1 {
		return fmt.Errorf("gotdstore: %w: session version %d, want 1", storage.ErrInvalid, v.Version)
	}
	d := v.Data
	if len(d.AuthKey) != storage.AuthKeySize || !bytes.Equal(d.AuthKeyID, keyID(d.AuthKey)) {
		return fmt.Errorf("gotdstore: %w: auth key of %d bytes whose id does not match it", storage.ErrInvalid, len(d.AuthKey))
	}
	cur, err := s.st.Session(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur.AuthKey, d.AuthKey) || !cur.DCID.Valid || cur.DCID.V != d.DC {
		next := storage.Session{DCID: storage.Some(d.DC), AuthKey: storage.AuthKey(d.AuthKey)}
		if err := s.st.SetFields(ctx, next, storage.FieldDCID|storage.FieldAuthKey); err != nil {
			return err
		}
	}
	g, err := json.Marshal(gotdData{Config: d.Config, Addr: d.Addr, Salt: d.Salt})
	if err != nil {
		return err
	}
	if old, found, err := s.st.ClientData(ctx, clientDataKey); err != nil {
		return err
	} else if found && bytes.Equal(old, g) {
		return nil
	}
	return s.st.SetClientData(ctx, clientDataKey, g)
}

// state returns the stored update state if it belongs to userID.
func (s *Store) state(ctx context.Context, userID int64) (storage.UpdateState, map[int64]int, bool, error) {
	st, ch, found, err := s.st.UpdateState(ctx)
	if err != nil || !found || st.UserID != userID {
		return storage.UpdateState{}, nil, false, err
	}
	return st, ch, true, nil
}

// GetState returns the update state of userID.
func (s *Store) GetState(ctx context.Context, userID int64) (updates.State, bool, error) {
	st, _, found, err := s.state(ctx, userID)
	return updates.State{Pts: st.Pts, Qts: st.Qts, Date: st.Date, Seq: st.Seq}, found, err
}

// SetState stores the whole state of userID (forgetting channels' pts).
func (s *Store) SetState(ctx context.Context, userID int64, v updates.State) error {
	return s.st.SetUpdateState(ctx, storage.UpdateState{UserID: userID, Pts: v.Pts, Qts: v.Qts, Date: v.Date, Seq: v.Seq})
}

func (s *Store) setFields(ctx context.Context, v storage.UpdateState, which storage.UpdateField) error {
	return s.st.SetUpdateFields(ctx, v, which)
}

// SetPts sets pts; it fails when no state of userID is stored.
func (s *Store) SetPts(ctx context.Context, userID int64, pts int) error {
	return s.setFields(ctx, storage.UpdateState{UserID: userID, Pts: pts}, storage.UpdatePts)
}

// SetQts sets qts; it fails when no state of userID is stored.
func (s *Store) SetQts(ctx context.Context, userID int64, qts int) error {
	return s.setFields(ctx, storage.UpdateState{UserID: userID, Qts: qts}, storage.UpdateQts)
}

// SetDate sets date; it fails when no state of userID is stored.
func (s *Store) SetDate(ctx context.Context, userID int64, date int) error {
	return s.setFields(ctx, storage.UpdateState{UserID: userID, Date: date}, storage.UpdateDate)
}

// SetSeq sets seq; it fails when no state of userID is stored.
func (s *Store) SetSeq(ctx context.Context, userID int64, seq int) error {
	return s.setFields(ctx, storage.UpdateState{UserID: userID, Seq: seq}, storage.UpdateSeq)
}

// SetDateSeq sets date and seq in one write.
func (s *Store) SetDateSeq(ctx context.Context, userID int64, date, seq int) error {
	return s.setFields(ctx, storage.UpdateState{UserID: userID, Date: date, Seq: seq}, storage.UpdateDate|storage.UpdateSeq)
}

// GetChannelPts returns a channel's pts.
func (s *Store) GetChannelPts(ctx context.Context, userID, channelID int64) (int, bool, error) {
	_, ch, found, err := s.state(ctx, userID)
	if err != nil || !found {
		return 0, false, err
	}
	pts, ok := ch[channelID]
	return pts, ok, nil
}

// SetChannelPts sets a channel's pts; it fails when no state is stored.
func (s *Store) SetChannelPts(ctx context.Context, userID, channelID int64, pts int) error {
	return s.st.SetChannelPts(ctx, userID, channelID, pts)
}

// ForEachChannels calls f for every channel's pts.
func (s *Store) ForEachChannels(ctx context.Context, userID int64, f func(ctx context.Context, channelID int64, pts int) error) error {
	_, ch, found, err := s.state(ctx, userID)
	if err != nil || !found {
		return err
	}
	for id, pts := range ch {
		if err := f(ctx, id, pts); err != nil {
			return err
		}
	}
	return nil
}

// merge writes the cached row of id with change applied, keeping every
// other field (usernames, phone, type) and its timestamp; typ is the type of
// a new row. A bare access-hash or phone save never wipes the rest.
func (s *Store) merge(ctx context.Context, id int64, typ storage.PeerType, change func(*storage.Peer)) error {
	p, err := s.st.PeerByID(ctx, id)
	switch {
	case errors.Is(err, storage.ErrPeerNotFound):
		p = storage.Peer{ID: id, Type: typ}
	case err != nil:
		return err
	}
	change(&p)
	if p.LastUpdateOn == 0 {
		return s.st.UpdatePeers(ctx, []storage.Peer{p}) // stamped now
	}
	return s.st.ImportPeers(ctx, []storage.Peer{p}) // keeps the row's time (and its usernames' freshness)
}

func (s *Store) hash(ctx context.Context, id int64) (int64, bool, error) {
	p, err := s.st.PeerByID(ctx, id)
	if errors.Is(err, storage.ErrPeerNotFound) {
		return 0, false, nil
	}
	if err != nil || !p.AccessHash.Valid {
		return 0, false, err
	}
	return p.AccessHash.V, true, nil
}

// SetChannelAccessHash caches a channel's access hash (merged into its row).
func (s *Store) SetChannelAccessHash(ctx context.Context, _, channelID, accessHash int64) error {
	return s.merge(ctx, storage.ChannelID(channelID), storage.PeerChannel, func(p *storage.Peer) { p.AccessHash, p.Min = storage.Some(accessHash), false })
}

// GetChannelAccessHash returns a channel's cached access hash.
func (s *Store) GetChannelAccessHash(ctx context.Context, _, channelID int64) (int64, bool, error) {
	return s.hash(ctx, storage.ChannelID(channelID))
}

// SetUserAccessHash caches a user's access hash (merged into its row).
func (s *Store) SetUserAccessHash(ctx context.Context, _, targetUserID, accessHash int64) error {
	return s.merge(ctx, targetUserID, storage.PeerUser, func(p *storage.Peer) { p.AccessHash, p.Min = storage.Some(accessHash), false })
}

// GetUserAccessHash returns a user's cached access hash.
func (s *Store) GetUserAccessHash(ctx context.Context, _, targetUserID int64) (int64, bool, error) {
	return s.hash(ctx, targetUserID)
}

// peerOf maps gotd's peer key to a Bot-API style id and the type of a new row.
func peerOf(k peers.Key) (int64, storage.PeerType, error) {
	switch k.Prefix {
	case "users_":
		return k.ID, storage.PeerUser, nil
	case "chats_":
		return storage.ChatID(k.ID), storage.PeerGroup, nil
	case "channel_":
		return storage.ChannelID(k.ID), storage.PeerChannel, nil
	}
	return 0, "", fmt.Errorf("gotdstore: %w: unknown peer key prefix %s", storage.ErrInvalid, storage.Excerpt(k.Prefix))
}

// keyOf is peerOf's inverse.
func keyOf(p storage.Peer) peers.Key {
	switch p.Type {
	case storage.PeerGroup:
		return peers.Key{Prefix: "chats_", ID: storage.ChatID(p.ID)}
	case storage.PeerChannel, storage.PeerSupergroup:
		return peers.Key{Prefix: "channel_", ID: storage.ChannelID(p.ID)}
	}
	return peers.Key{Prefix: "users_", ID: p.ID}
}

// Save caches an access hash (merged into the peer's row).
func (s *Store) Save(ctx context.Context, key peers.Key, value peers.Value) error {
	id, typ, err := peerOf(key)
	if err != nil {
		return err
	}
	return s.merge(ctx, id, typ, func(p *storage.Peer) {
		if typ != storage.PeerGroup {
			p.AccessHash, p.Min = storage.Some(value.AccessHash), false
		}
	})
}

// Find returns a cached access hash.
func (s *Store) Find(ctx context.Context, key peers.Key) (peers.Value, bool, error) {
	id, _, err := peerOf(key)
	if err != nil {
		return peers.Value{}, false, err
	}
	p, err := s.st.PeerByID(ctx, id)
	if errors.Is(err, storage.ErrPeerNotFound) {
		return peers.Value{}, false, nil
	}
	if err != nil {
		return peers.Value{}, false, err
	}
	return peers.Value{AccessHash: p.AccessHash.V}, true, nil
}

// SavePhone records a phone number on the peer's row.
func (s *Store) SavePhone(ctx context.Context, phone string, key peers.Key) error {
	id, typ, err := peerOf(key)
	if err != nil {
		return err
	}
	return s.merge(ctx, id, typ, func(p *storage.Peer) { p.PhoneNumber = storage.NormalizePhoneNumber(phone) })
}

// FindPhone returns the peer holding a phone number.
func (s *Store) FindPhone(ctx context.Context, phone string) (peers.Key, peers.Value, bool, error) {
	p, err := s.st.PeerByPhoneNumber(ctx, phone)
	if errors.Is(err, storage.ErrPeerNotFound) {
		return peers.Key{}, peers.Value{}, false, nil
	}
	if err != nil {
		return peers.Key{}, peers.Value{}, false, err
	}
	return keyOf(p), peers.Value{AccessHash: p.AccessHash.V}, true, nil
}

// GetContactsHash returns the stored contacts hash (0 when none).
func (s *Store) GetContactsHash(ctx context.Context) (int64, error) {
	v, found, err := s.st.ClientData(ctx, contactsHashKey)
	if err != nil || !found {
		return 0, err
	}
	var h int64
	_, err = fmt.Sscan(string(v), &h)
	return h, err
}

// SaveContactsHash stores the contacts hash.
func (s *Store) SaveContactsHash(ctx context.Context, hash int64) error {
	return s.st.SetClientData(ctx, contactsHashKey, []byte(fmt.Sprint(hash)))
}

// usernames lists a user's or channel's usernames, the primary first.
func usernames(primary string, all []tg.Username) []string {
	var out []string
	if primary != "" {
		out = append(out, strings.ToLower(primary))
	}
	for _, u := range all {
		if u.Active && u.Username != "" && !strings.EqualFold(u.Username, primary) {
			out = append(out, strings.ToLower(u.Username))
		}
	}
	return out
}

// SaveUsers caches full user rows (id, access hash, usernames, phone, bot).
func (s *Store) SaveUsers(ctx context.Context, users ...*tg.User) error {
	rows := make([]storage.Peer, 0, len(users))
	for _, u := range users {
		p := storage.Peer{ID: u.ID, Type: storage.PeerUser, Min: u.Min,
			Usernames: usernames(u.Username, u.Usernames), PhoneNumber: storage.NormalizePhoneNumber(u.Phone)}
		if u.Bot {
			p.Type = storage.PeerBot
		}
		if h, ok := u.GetAccessHash(); ok {
			p.AccessHash = storage.Some(h)
		}
		rows = append(rows, p)
	}
	return s.st.UpdatePeers(ctx, rows)
}

// SaveChats caches basic groups.
func (s *Store) SaveChats(ctx context.Context, chats ...*tg.Chat) error {
	rows := make([]storage.Peer, 0, len(chats))
	for _, c := range chats {
		rows = append(rows, storage.Peer{ID: storage.ChatID(c.ID), Type: storage.PeerGroup})
	}
	return s.st.UpdatePeers(ctx, rows)
}

// SaveChannels caches channels and supergroups.
func (s *Store) SaveChannels(ctx context.Context, channels ...*tg.Channel) error {
	rows := make([]storage.Peer, 0, len(channels))
	for _, c := range channels {
		p := storage.Peer{ID: storage.ChannelID(c.ID), Type: storage.PeerChannel, Min: c.Min, Usernames: usernames(c.Username, c.Usernames)}
		if c.Megagroup {
			p.Type = storage.PeerSupergroup
		}
		if h, ok := c.GetAccessHash(); ok {
			p.AccessHash = storage.Some(h)
		}
		rows = append(rows, p)
	}
	return s.st.UpdatePeers(ctx, rows)
}

// SaveUserFulls is a no-op: full objects are not kept (the rows are).
func (s *Store) SaveUserFulls(context.Context, ...*tg.UserFull) error { return nil }

// SaveChatFulls is a no-op.
func (s *Store) SaveChatFulls(context.Context, ...*tg.ChatFull) error { return nil }

// SaveChannelFulls is a no-op.
func (s *Store) SaveChannelFulls(context.Context, ...*tg.ChannelFull) error { return nil }

// FindUser reports no cached object: gotd then asks the server (the access
// hash it needs is in peers.Storage).
func (s *Store) FindUser(context.Context, int64) (*tg.User, bool, error) { return nil, false, nil }

// FindUserFull reports no cached object.
func (s *Store) FindUserFull(context.Context, int64) (*tg.UserFull, bool, error) {
	return nil, false, nil
}

// FindChat reports no cached object.
func (s *Store) FindChat(context.Context, int64) (*tg.Chat, bool, error) { return nil, false, nil }

// FindChatFull reports no cached object.
func (s *Store) FindChatFull(context.Context, int64) (*tg.ChatFull, bool, error) {
	return nil, false, nil
}

// FindChannel reports no cached object.
func (s *Store) FindChannel(context.Context, int64) (*tg.Channel, bool, error) {
	return nil, false, nil
}

// FindChannelFull reports no cached object.
func (s *Store) FindChannelFull(context.Context, int64) (*tg.ChannelFull, bool, error) {
	return nil, false, nil
}

// Options returns o wired to the store: SessionStorage, and OnSelfSuccess
// recording user_id and is_bot (then calling o's own OnSelfSuccess). appID
// is recorded as api_id, which a Hydrogram session string needs. gotd asks
// for self (and so calls OnSelfSuccess) only when o has an UpdateHandler;
// without one it runs in no-updates mode. gotd signals ready before it
// saves a new session: a worker that must not lose a fresh key waits until
// LoadSession returns one before it works.
func (s *Store) Options(ctx context.Context, appID int, o telegram.Options) (telegram.Options, error) {
	if cur, err := s.st.APIID(ctx); err != nil {
		return o, err
	} else if !cur.Valid || cur.V != int64(appID) {
		if err := s.st.SetAPIID(ctx, storage.Some(int64(appID))); err != nil {
			return o, err
		}
	}
	o.SessionStorage = s
	next := o.OnSelfSuccess
	o.OnSelfSuccess = func(self *tg.User) {
		sess := storage.Session{UserID: storage.Some(self.ID), IsBot: storage.Some(self.Bot)}
		if cur, err := s.st.Session(context.Background()); err != nil || cur.UserID != sess.UserID || cur.IsBot != sess.IsBot {
			_ = s.st.SetFields(context.Background(), sess, storage.FieldUserID|storage.FieldIsBot)
		}
		if next != nil {
			next(self)
		}
	}
	return o, nil
}

// ErrLeaseLost is returned by Run when the store's lease was lost while the
// client ran: the client was stopped so that no two workers use the key.
var ErrLeaseLost = errors.New("gotdstore: the session's lease was lost; the client was stopped (another worker may own it now)")

// Run runs client until f returns, ctx is done, or the store's lease is lost
// (then the client is stopped at once and Run returns ErrLeaseLost). The
// store must be a Leased, open store.
func Run(ctx context.Context, st *redisstore.Store, client *telegram.Client, f func(ctx context.Context) error) error {
	l := st.Lease()
	if l == nil {
		return fmt.Errorf("gotdstore: the store holds no lease: open it with redisstore.Leased before running a client")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-l.Lost():
			cancel(ErrLeaseLost)
		case <-ctx.Done():
		}
	}()
	err := client.Run(ctx, f)
	if cause := context.Cause(ctx); errors.Is(cause, ErrLeaseLost) {
		return ErrLeaseLost
	}
	return err
}
