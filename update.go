package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/storage"
)

var (
	_ storage.UpdateStateStore = (*Store)(nil)
	_ storage.ClientDataStore  = (*Store)(nil)
)

// UpdateState reads the update state and every channel's pts with one
// HGETALL.
func (s *Store) UpdateState(ctx context.Context) (storage.UpdateState, map[int64]int, bool, error) {
	const op = "read update state"
	if err := s.checkOpen(op); err != nil {
		return storage.UpdateState{}, nil, false, err
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.state).Result()
	if err != nil {
		return storage.UpdateState{}, nil, false, s.fail(op, err)
	}
	if len(h) == 0 {
		return storage.UpdateState{}, nil, false, nil
	}
	return decodeUpdateState(h)
}

// decodeUpdateState parses the update state hash (keys.go).
func decodeUpdateState(h map[string]string) (storage.UpdateState, map[int64]int, bool, error) {
	var st storage.UpdateState
	channels := map[int64]int{}
	bad := func(f string) error {
		return fmt.Errorf("redisstore: corrupt update state field %s: %w", storage.Excerpt(f), storage.ErrLayoutVersion)
	}
	for f, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return storage.UpdateState{}, nil, false, bad(f)
		}
		switch {
		case f == "user":
			st.UserID = n
		case f == "pts":
			st.Pts = int(n)
		case f == "qts":
			st.Qts = int(n)
		case f == "date":
			st.Date = int(n)
		case f == "seq":
			st.Seq = int(n)
		case strings.HasPrefix(f, "c:"):
			id, err := strconv.ParseInt(f[2:], 10, 64)
			if err != nil {
				return storage.UpdateState{}, nil, false, bad(f)
			}
			channels[id] = int(n)
		default:
			return storage.UpdateState{}, nil, false, bad(f)
		}
	}
	return st, channels, true, nil
}

// SetUpdateState stores the whole state (lua/update_state.lua, "state").
func (s *Store) SetUpdateState(ctx context.Context, v storage.UpdateState) error {
	if err := v.Validate(); err != nil {
		return s.fail("write update state", err)
	}
	return s.writeState(ctx, "state", v.UserID, counters(v, storage.UpdatePts|storage.UpdateQts|storage.UpdateDate|storage.UpdateSeq)...)
}

// SetUpdateFields writes some counters of the stored state ("fields").
func (s *Store) SetUpdateFields(ctx context.Context, v storage.UpdateState, which storage.UpdateField) error {
	if err := v.Validate(); err != nil {
		return s.fail("write update state", err)
	}
	return s.writeState(ctx, "fields", v.UserID, counters(v, which)...)
}

// SetChannelPts sets one channel's pts ("channel").
func (s *Store) SetChannelPts(ctx context.Context, userID, channelID int64, pts int) error {
	if err := storage.ValidChannelPts(channelID, pts); err != nil {
		return s.fail("write channel pts", err)
	}
	if userID <= 0 {
		return s.fail("write channel pts", fmt.Errorf("%w: user_id %d must be positive", storage.ErrInvalid, userID))
	}
	return s.writeState(ctx, "channel", userID, strconv.FormatInt(channelID, 10), strconv.Itoa(pts))
}

func counters(v storage.UpdateState, which storage.UpdateField) []any {
	var out []any
	for _, c := range []struct {
		f    storage.UpdateField
		name string
		v    int
	}{{storage.UpdatePts, "pts", v.Pts}, {storage.UpdateQts, "qts", v.Qts}, {storage.UpdateDate, "date", v.Date}, {storage.UpdateSeq, "seq", v.Seq}} {
		if which.Has(c.f) {
			out = append(out, c.name, strconv.Itoa(c.v))
		}
	}
	return out
}

func (s *Store) writeState(ctx context.Context, op string, userID int64, args ...any) error {
	const what = "write update state"
	if err := s.checkOpen(what); err != nil {
		return err
	}
	token, err := s.token(what)
	if err != nil {
		return err
	}
	err = updateStateCall(s.keys, token, op, append([]any{strconv.FormatInt(userID, 10)}, args...)...).run(ctx, s.rdb).Err()
	if redis.HasErrorPrefix(err, "NOSTATE") {
		return s.fail(what, storage.ErrUpdateStateNotFound)
	}
	return s.failWrite(what, err)
}

// ClientData reads one client-data value with HGET.
func (s *Store) ClientData(ctx context.Context, key string) ([]byte, bool, error) {
	const op = "read client data"
	if err := s.checkOpen(op); err != nil {
		return nil, false, err
	}
	v, err := s.rdb.HGet(ctx, s.keys.data, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.fail(op, err)
	}
	return v, true, nil
}

// SetClientData writes (or removes, with an empty value) one client-data
// value (lua/client_data.lua).
func (s *Store) SetClientData(ctx context.Context, key string, value []byte) error {
	const op = "write client data"
	if err := storage.ValidClientData(key, value); err != nil {
		return s.fail(op, err)
	}
	if err := s.checkOpen(op); err != nil {
		return err
	}
	token, err := s.token(op)
	if err != nil {
		return err
	}
	return s.failWrite(op, clientDataCall(s.keys, token, key, value).run(ctx, s.rdb).Err())
}
