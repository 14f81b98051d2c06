package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"github.com/redis/go-redis/v9"
)

// RedisSessionStore keeps login sessions in Redis, shared by every replica.
// Each session is a JSON value under "<prefix>session:<id>" whose time to
// live is the shorter of its idle timeout and its remaining absolute
// lifetime, so Redis itself drops it when either runs out. A sorted set per
// user, "<prefix>user:<id>:sessions" scored by absolute expiry, lists a
// user's sessions.
type RedisSessionStore struct {
	client *redis.Client
	prefix string
	now    func() time.Time
}

// NewRedisSessionStore returns a store using client. Every key starts with
// prefix, so that several deployments or test runs can share one Redis.
func NewRedisSessionStore(client *redis.Client, prefix string) *RedisSessionStore {
	return &RedisSessionStore{client: client, prefix: prefix, now: time.Now}
}

// OpenRedis parses a redis:// or rediss:// URL and checks that the server
// responds. It fails with ErrUnavailable when it does not.
func OpenRedis(ctx context.Context, redisURL string) (*redis.Client, error) {
	options, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("invalid Redis URL: %w", err)
	}
	options.DialTimeout = 2 * time.Second
	options.ReadTimeout = 2 * time.Second
	options.WriteTimeout = 2 * time.Second
	client := redis.NewClient(options)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("%w: Redis does not respond: %v", ErrUnavailable, err)
	}
	return client, nil
}

func (r *RedisSessionStore) sessionKey(id string) string { return r.prefix + "session:" + id }
func (r *RedisSessionStore) userKey(userID string) string {
	return r.prefix + "user:" + userID + ":sessions"
}

// ttl returns how long a session stays alive from now if unused, or zero if
// it is already dead.
func (r *RedisSessionStore) ttl(s *LoginSession, now time.Time) time.Duration {
	remaining := s.ExpiresAt.Sub(now)
	if s.IdleTimeout > 0 {
		remaining = min(remaining, s.LastSeenAt.Add(s.IdleTimeout).Sub(now))
	}
	return max(remaining, 0)
}

// redisError maps go-redis errors to this package's sentinels.
func redisError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.Nil) {
		return fosite.ErrNotFound
	}
	return errors.Join(ErrUnavailable, err)
}

// Create stores a new session.
func (r *RedisSessionStore) Create(ctx context.Context, s *LoginSession) error {
	ttl := r.ttl(s, r.now())
	if ttl <= 0 {
		return errors.New("session is already expired")
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}

	userKey := r.userKey(s.UserID)
	_, err = r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, r.sessionKey(s.ID), data, ttl)
		pipe.ZAdd(ctx, userKey, redis.Z{Score: float64(s.ExpiresAt.Unix()), Member: s.ID})
		// The set lives as long as its longest-lived session: NX sets an
		// expiry on a new set, GT only ever extends an existing one.
		pipe.ExpireNX(ctx, userKey, s.ExpiresAt.Sub(r.now())+time.Minute)
		pipe.ExpireGT(ctx, userKey, s.ExpiresAt.Sub(r.now())+time.Minute)
		return nil
	})
	return redisError(err)
}

func (r *RedisSessionStore) load(ctx context.Context, id string) (*LoginSession, error) {
	data, err := r.client.Get(ctx, r.sessionKey(id)).Bytes()
	if err != nil {
		return nil, redisError(err)
	}
	var s LoginSession
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode login session: %w", err)
	}
	if !s.alive(r.now()) {
		return nil, fosite.ErrNotFound
	}
	return &s, nil
}

// Get returns a live session, or fosite.ErrNotFound.
func (r *RedisSessionStore) Get(ctx context.Context, id string) (*LoginSession, error) {
	return r.load(ctx, id)
}

// Touch records activity on a live session, extending its idle timeout but
// never its absolute lifetime. Two concurrent touches may both write; the
// later LastSeenAt wins, which is the intended result either way.
func (r *RedisSessionStore) Touch(ctx context.Context, id string) error {
	s, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	now := r.now()
	s.LastSeenAt = now
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ttl := r.ttl(s, now)
	if ttl <= 0 {
		return fosite.ErrNotFound
	}
	// XX: never recreate a session that was deleted since it was read.
	err = r.client.SetArgs(ctx, r.sessionKey(id), data, redis.SetArgs{Mode: "XX", TTL: ttl}).Err()
	return redisError(err)
}

// ListByUser returns a user's live sessions, newest first.
func (r *RedisSessionStore) ListByUser(ctx context.Context, userID string) ([]*LoginSession, error) {
	userKey := r.userKey(userID)
	ids, err := r.client.ZRevRange(ctx, userKey, 0, -1).Result()
	if err != nil {
		return nil, redisError(err)
	}
	if len(ids) == 0 {
		return nil, nil
	}

	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.sessionKey(id)
	}
	values, err := r.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, redisError(err)
	}

	now := r.now()
	var sessions []*LoginSession
	var stale []any
	for i, value := range values {
		data, ok := value.(string)
		var s LoginSession
		if !ok || json.Unmarshal([]byte(data), &s) != nil || !s.alive(now) {
			stale = append(stale, ids[i])
			continue
		}
		sessions = append(sessions, &s)
	}
	if len(stale) > 0 {
		if err := r.client.ZRem(ctx, userKey, stale...).Err(); err != nil {
			return nil, redisError(err)
		}
	}
	sortNewestFirst(sessions)
	return sessions, nil
}

// Delete removes one session. Deleting a missing session is not an error.
func (r *RedisSessionStore) Delete(ctx context.Context, id string) error {
	s, err := r.load(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return redisError(r.client.Del(ctx, r.sessionKey(id)).Err())
	}
	if err != nil {
		return err
	}
	_, err = r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, r.sessionKey(id))
		pipe.ZRem(ctx, r.userKey(s.UserID), id)
		return nil
	})
	return redisError(err)
}

// DeleteByUser removes every session of a user.
func (r *RedisSessionStore) DeleteByUser(ctx context.Context, userID string) error {
	userKey := r.userKey(userID)
	ids, err := r.client.ZRange(ctx, userKey, 0, -1).Result()
	if err != nil {
		return redisError(err)
	}
	keys := []string{userKey}
	for _, id := range ids {
		keys = append(keys, r.sessionKey(id))
	}
	return redisError(r.client.Del(ctx, keys...).Err())
}

// Ping checks that Redis responds.
func (r *RedisSessionStore) Ping(ctx context.Context) error {
	return redisError(r.client.Ping(ctx).Err())
}
