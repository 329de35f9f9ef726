package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore/internal/redisutil"
	"github.com/tgsession/redisstore/storage"
)

// Session reads every field in one round trip (HGETALL), or from the owner
// cache.
func (s *Store) Session(ctx context.Context) (storage.Session, error) {
	if err := s.checkOpen("read session"); err != nil {
		return storage.Session{}, err
	}
	c := s.ownCache()
	var gen uint64
	if c != nil {
		if sess, ok := c.sessionFields(); ok {
			return sess, nil
		}
		gen = c.generation()
	}
	m, err := s.rdb.HGetAll(ctx, s.keys.session).Result()
	if err != nil {
		return storage.Session{}, s.fail("read session", err)
	}
	if len(m) == 0 {
		return storage.Session{}, s.fail("read session", storage.ErrSessionNotFound)
	}
	sess, err := decodeSession(m, func(v string) (storage.AuthKey, error) { return s.openAuthKey(ctx, v) })
	if err == nil && c != nil {
		c.fillSession(gen, sess)
	}
	return sess, s.fail("read session", err)
}

// SetFields validates, then writes the fields of v named by which in one
// atomic script call. A NULL value removes the field.
func (s *Store) SetFields(ctx context.Context, v storage.Session, which storage.Field) error {
	if err := s.checkOpen("write session"); err != nil {
		return err
	}
	if err := v.Validate(which); err != nil {
		return s.fail("write session", err)
	}
	token, err := s.token("write session")
	if err != nil {
		return err
	}
	return s.setFields(ctx, token, v, which)
}

// Save stamps date with the store's clock.
func (s *Store) Save(ctx context.Context) error {
	return s.SetDate(ctx, s.clock.Now().Unix())
}

// setFields writes validated fields with the given lease token, waiting for
// replicas when Options.Durability asks for it and the auth key or dc_id is
// among them.
func (s *Store) setFields(ctx context.Context, token string, v storage.Session, which storage.Field) error {
	if s.cache != nil {
		s.cache.invalidateSession()
		defer s.cache.invalidateSession() // also after: a read racing the write must not refill
	}
	ak, err := s.sealAuthKey(ctx, v.AuthKey)
	if err != nil {
		return s.fail("write session", err)
	}
	c := setFieldsCall(s.keys, token, v, which, ak)
	if s.opts.Durability.Replicas > 0 && which&(storage.FieldAuthKey|storage.FieldDCID) != 0 {
		return s.durable(ctx, "write session", c)
	}
	return s.failWrite("write session", c.run(ctx, s.rdb).Err())
}

// durable runs a script call and WAIT on one connection to the keys' primary.
func (s *Store) durable(ctx context.Context, op string, c call) error {
	d := s.opts.Durability
	run := func(eval bool) (int, error) {
		return redisutil.Do(ctx, s.rdb, c.keys[0], d.Replicas, d.Timeout, func(p redis.Pipeliner) { c.queue(ctx, s.rdb, p, eval) })
	}
	n, err := run(false)
	// A restarted or promoted server (NOSCRIPT), or one that cannot compile
	// the shebang: send the script's body, in the form it takes.
	if redis.HasErrorPrefix(err, "NOSCRIPT") || redisutil.Rejected(s.rdb, err) {
		n, err = run(true)
	}
	if err != nil {
		return s.failWrite(op, err)
	}
	if n < d.Replicas {
		return s.fail(op, fmt.Errorf("%w: %d of %d replicas confirmed within %v", storage.ErrNotDurable, n, d.Replicas, d.Timeout))
	}
	return nil
}
