package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ory/fosite"
	"github.com/redis/go-redis/v9"
)

// RedisSessionStore keeps login sessions in Redis, shared by every replica.
// Under the key prefix it keeps:
//
//   - "session:<id>": a hash with the session as JSON ("data"), its user
//     ("user") and its last activity in Unix nanoseconds ("seen");
//   - "session:<id>:clients": a set of the clients issued a code in it.
//
// Both live until the session's deadline (see LoginSession.Deadline), so
// Redis itself drops a session that lapses. Sorted sets scored by deadline
// in Unix milliseconds index the live sessions:
//
//   - "user:<id>:sessions": a user's sessions;
//   - "stats:sessions", "stats:mfa": all sessions, those that used MFA;
//   - "stats:client:<id>": the sessions in which a client got a code;
//   - "stats:users", "stats:clients": users and clients, scored by the
//     last deadline of their sessions;
//   - "stats:activity": users scored by their last activity time;
//   - "stats:logins:<unix hour>": a counter of the logins in that hour.
//
// Statistics count index entries with a deadline in the future; lapsed
// entries are trimmed as statistics are read.
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

// SetClock replaces the wall clock, for tests that script time. Redis still
// expires keys on its own clock.
func (r *RedisSessionStore) SetClock(now func() time.Time) { r.now = now }

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
func (r *RedisSessionStore) clientsKey(id string) string {
	return r.prefix + "session:" + id + ":clients"
}
func (r *RedisSessionStore) userKey(userID string) string {
	return r.prefix + "user:" + userID + ":sessions"
}
func (r *RedisSessionStore) statsKey(name string) string { return r.prefix + "stats:" + name }
func (r *RedisSessionStore) loginsKey(hour time.Time) string {
	return r.statsKey("logins:" + strconv.FormatInt(hour.Unix(), 10))
}

// millis is a sorted-set score: t in Unix milliseconds.
func millis(t time.Time) float64 { return float64(t.UnixMilli()) }

func millisArg(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

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

// Create stores a new session and counts it as a login.
func (r *RedisSessionStore) Create(ctx context.Context, s *LoginSession) error {
	now := r.now()
	deadline := s.Deadline()
	ttl := deadline.Sub(now)
	if ttl <= 0 {
		return errors.New("session is already expired")
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}

	score := millis(deadline)
	userKey := r.userKey(s.UserID)
	loginsKey := r.loginsKey(now.UTC().Truncate(time.Hour))
	_, err = r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		sessionKey := r.sessionKey(s.ID)
		pipe.HSet(ctx, sessionKey, "data", data, "user", s.UserID, "seen", s.LastSeenAt.UnixNano())
		pipe.PExpire(ctx, sessionKey, ttl)
		if len(s.Clients) > 0 {
			clientsKey := r.clientsKey(s.ID)
			for _, clientID := range s.Clients {
				pipe.SAdd(ctx, clientsKey, clientID)
				pipe.ZAdd(ctx, r.statsKey("client:"+clientID), redis.Z{Score: score, Member: s.ID})
				pipe.ZAddGT(ctx, r.statsKey("clients"), redis.Z{Score: score, Member: clientID})
			}
			pipe.PExpire(ctx, clientsKey, ttl)
		}
		// Lapsed entries go as new ones come, so that no index grows
		// without bound between reads of the statistics.
		lapsed := millisArg(now)
		for _, key := range []string{userKey, r.statsKey("sessions"), r.statsKey("mfa"), r.statsKey("users")} {
			pipe.ZRemRangeByScore(ctx, key, "-inf", lapsed)
		}
		pipe.ZAdd(ctx, userKey, redis.Z{Score: score, Member: s.ID})
		// The set lives as long as its longest-lived session: NX sets an
		// expiry on a new set, GT only ever extends an existing one.
		pipe.ExpireNX(ctx, userKey, s.ExpiresAt.Sub(now)+time.Minute)
		pipe.ExpireGT(ctx, userKey, s.ExpiresAt.Sub(now)+time.Minute)

		pipe.ZAdd(ctx, r.statsKey("sessions"), redis.Z{Score: score, Member: s.ID})
		if s.UsedMFA() {
			pipe.ZAdd(ctx, r.statsKey("mfa"), redis.Z{Score: score, Member: s.ID})
		}
		pipe.ZAddGT(ctx, r.statsKey("users"), redis.Z{Score: score, Member: s.UserID})
		pipe.ZAdd(ctx, r.statsKey("activity"), redis.Z{Score: millis(now), Member: s.UserID})
		pipe.Incr(ctx, loginsKey)
		pipe.Expire(ctx, loginsKey, (statsHours+1)*time.Hour)
		return nil
	})
	return redisError(err)
}

// load reads a session with one round trip and checks that it is live.
func (r *RedisSessionStore) load(ctx context.Context, id string) (*LoginSession, error) {
	pipe := r.client.Pipeline()
	fields := pipe.HGetAll(ctx, r.sessionKey(id))
	clients := pipe.SMembers(ctx, r.clientsKey(id))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisError(err)
	}
	return r.decode(fields.Val(), clients.Val())
}

// decode builds a live session from its hash fields and clients, or fails
// with fosite.ErrNotFound.
func (r *RedisSessionStore) decode(fields map[string]string, clients []string) (*LoginSession, error) {
	data, ok := fields["data"]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	var s LoginSession
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		return nil, fmt.Errorf("decode login session: %w", err)
	}
	if seen, err := strconv.ParseInt(fields["seen"], 10, 64); err == nil {
		s.LastSeenAt = time.Unix(0, seen).UTC()
	}
	// The set is unordered: keep the order recorded at creation and add
	// later clients sorted, so that listings are stable.
	known := map[string]bool{}
	for _, clientID := range s.Clients {
		known[clientID] = true
	}
	var added []string
	for _, clientID := range clients {
		if !known[clientID] {
			added = append(added, clientID)
		}
	}
	slices.Sort(added)
	s.Clients = append(s.Clients, added...)
	if !s.alive(r.now()) {
		return nil, fosite.ErrNotFound
	}
	return &s, nil
}

// Get returns a live session, or fosite.ErrNotFound.
func (r *RedisSessionStore) Get(ctx context.Context, id string) (*LoginSession, error) {
	return r.load(ctx, id)
}

// touchScript records activity on a session that still exists and moves
// its deadline in every index. The session exists, so it belongs in the
// indexes even if a reader with a faster clock trimmed it from them. ARGV: prefix, session id, user id, last seen
// (Unix ns), time to live (ms), deadline (Unix ms), now (Unix ms).
var touchScript = redis.NewScript(`
local p, id, uid = ARGV[1], ARGV[2], ARGV[3]
local key = p .. 'session:' .. id
if redis.call('EXISTS', key) == 0 then return 0 end
local clients = key .. ':clients'
local deadline = ARGV[6]
redis.call('HSET', key, 'seen', ARGV[4])
redis.call('PEXPIRE', key, ARGV[5])
redis.call('PEXPIRE', clients, ARGV[5])
redis.call('ZADD', p .. 'user:' .. uid .. ':sessions', deadline, id)
redis.call('ZADD', p .. 'stats:sessions', deadline, id)
redis.call('ZADD', p .. 'stats:mfa', 'XX', deadline, id)
redis.call('ZADD', p .. 'stats:users', 'GT', deadline, uid)
redis.call('ZADD', p .. 'stats:activity', ARGV[7], uid)
for _, client in ipairs(redis.call('SMEMBERS', clients)) do
  redis.call('ZADD', p .. 'stats:client:' .. client, deadline, id)
  redis.call('ZADD', p .. 'stats:clients', 'GT', deadline, client)
end
return 1
`)

// Touch records activity on a live session, extending its idle timeout but
// never its absolute lifetime.
func (r *RedisSessionStore) Touch(ctx context.Context, id string) error {
	s, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	now := r.now()
	s.LastSeenAt = now
	deadline := s.Deadline()
	ttl := deadline.Sub(now)
	if ttl <= 0 {
		return fosite.ErrNotFound
	}
	touched, err := touchScript.Run(ctx, r.client, nil, r.prefix, id, s.UserID,
		now.UnixNano(), ttl.Milliseconds(), millisArg(deadline), millisArg(now)).Int()
	if err != nil {
		return redisError(err)
	}
	if touched == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// addClientScript records a client in a session that still exists and
// trims the client's lapsed entries. ARGV: prefix, session id, client id,
// now (Unix ms).
var addClientScript = redis.NewScript(`
local p, id, client = ARGV[1], ARGV[2], ARGV[3]
local key = p .. 'session:' .. id
local ttl = redis.call('PTTL', key)
if ttl < 0 then return 0 end
local clients = key .. ':clients'
redis.call('SADD', clients, client)
redis.call('PEXPIRE', clients, ttl)
local deadline = redis.call('ZSCORE', p .. 'stats:sessions', id)
if deadline then
  redis.call('ZREMRANGEBYSCORE', p .. 'stats:client:' .. client, '-inf', ARGV[4])
  redis.call('ZADD', p .. 'stats:client:' .. client, deadline, id)
  redis.call('ZADD', p .. 'stats:clients', 'GT', deadline, client)
end
return 1
`)

// AddClient records that clientID was issued a code in a live session.
func (r *RedisSessionStore) AddClient(ctx context.Context, id, clientID string) error {
	added, err := addClientScript.Run(ctx, r.client, nil, r.prefix, id, clientID, millisArg(r.now())).Int()
	if err != nil {
		return redisError(err)
	}
	if added == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// ListByUser returns a user's live sessions, newest first, with one round
// trip for the index and one for the sessions.
func (r *RedisSessionStore) ListByUser(ctx context.Context, userID string) ([]*LoginSession, error) {
	userKey := r.userKey(userID)
	ids, err := r.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: userKey, ByScore: true, Start: "(" + millisArg(r.now()), Stop: "+inf",
	}).Result()
	if err != nil {
		return nil, redisError(err)
	}
	if len(ids) == 0 {
		return nil, nil
	}

	pipe := r.client.Pipeline()
	fields := make([]*redis.MapStringStringCmd, len(ids))
	clients := make([]*redis.StringSliceCmd, len(ids))
	for i, id := range ids {
		fields[i] = pipe.HGetAll(ctx, r.sessionKey(id))
		clients[i] = pipe.SMembers(ctx, r.clientsKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisError(err)
	}

	var sessions []*LoginSession
	for i := range ids {
		s, err := r.decode(fields[i].Val(), clients[i].Val())
		if err != nil {
			continue
		}
		sessions = append(sessions, s)
	}
	sortNewestFirst(sessions)
	return sessions, nil
}

// deleteScript removes a session and its entries in every index, then
// rescores its user by the last deadline of their other sessions.
// ARGV: prefix, session id, now (Unix ms), and the user id when the caller
// knows it, which finds the user's index after the session lapsed.
var deleteScript = redis.NewScript(`
local p, id = ARGV[1], ARGV[2]
local key = p .. 'session:' .. id
local clients = key .. ':clients'
local uid = redis.call('HGET', key, 'user')
if not uid and ARGV[4] ~= '' then uid = ARGV[4] end
for _, client in ipairs(redis.call('SMEMBERS', clients)) do
  redis.call('ZREM', p .. 'stats:client:' .. client, id)
end
redis.call('DEL', key, clients)
redis.call('ZREM', p .. 'stats:sessions', id)
redis.call('ZREM', p .. 'stats:mfa', id)
if not uid then return 0 end
local sessions = p .. 'user:' .. uid .. ':sessions'
redis.call('ZREM', sessions, id)
local last = redis.call('ZRANGE', sessions, 0, 0, 'REV', 'WITHSCORES')
if last[2] and tonumber(last[2]) > tonumber(ARGV[3]) then
  redis.call('ZADD', p .. 'stats:users', last[2], uid)
else
  redis.call('ZREM', p .. 'stats:users', uid)
end
return 1
`)

// Delete removes one session. Deleting a missing session is not an error.
func (r *RedisSessionStore) Delete(ctx context.Context, id string) error {
	return r.delete(ctx, id, "")
}

func (r *RedisSessionStore) delete(ctx context.Context, id, userID string) error {
	err := deleteScript.Run(ctx, r.client, nil, r.prefix, id, millisArg(r.now()), userID).Err()
	return redisError(err)
}

// DeleteByUser removes every session of a user.
func (r *RedisSessionStore) DeleteByUser(ctx context.Context, userID string) error {
	ids, err := r.client.ZRange(ctx, r.userKey(userID), 0, -1).Result()
	if err != nil {
		return redisError(err)
	}
	for _, id := range ids {
		if err := r.delete(ctx, id, userID); err != nil {
			return err
		}
	}
	return nil
}

// Stats returns the session statistics at the store's clock, trimming
// lapsed index entries as it reads.
func (r *RedisSessionStore) Stats(ctx context.Context) (*SessionStats, error) {
	now := r.now()
	hours := statsHourStarts(now)
	loginKeys := make([]string, len(hours))
	for i, hour := range hours {
		loginKeys[i] = r.loginsKey(hour)
	}

	// Every client's index is trimmed before the list of clients is, so
	// that a client leaving the list leaves no lapsed entries behind.
	clients, err := r.client.ZRange(ctx, r.statsKey("clients"), 0, -1).Result()
	if err != nil {
		return nil, redisError(err)
	}
	counts := make([]*redis.IntCmd, len(clients))
	var sessions, users, mfa, month, day *redis.IntCmd
	var logins *redis.SliceCmd
	_, err = r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, clientID := range clients {
			key := r.statsKey("client:" + clientID)
			pipe.ZRemRangeByScore(ctx, key, "-inf", millisArg(now))
			counts[i] = pipe.ZCard(ctx, key)
		}
		for _, name := range []string{"sessions", "users", "mfa", "clients"} {
			pipe.ZRemRangeByScore(ctx, r.statsKey(name), "-inf", millisArg(now))
		}
		pipe.ZRemRangeByScore(ctx, r.statsKey("activity"), "-inf", millisArg(now.Add(-activityMonth)))
		sessions = pipe.ZCard(ctx, r.statsKey("sessions"))
		users = pipe.ZCard(ctx, r.statsKey("users"))
		mfa = pipe.ZCard(ctx, r.statsKey("mfa"))
		month = pipe.ZCount(ctx, r.statsKey("activity"), "("+millisArg(now.Add(-activityMonth)), "+inf")
		day = pipe.ZCount(ctx, r.statsKey("activity"), "("+millisArg(now.Add(-activityDay)), "+inf")
		logins = pipe.MGet(ctx, loginKeys...)
		return nil
	})
	if err != nil {
		return nil, redisError(err)
	}

	stats := &SessionStats{
		ActiveSessions:    sessions.Val(),
		ActiveUsers:       users.Val(),
		ActiveUsers24h:    day.Val(),
		ActiveUsers30d:    month.Val(),
		MFASessions:       mfa.Val(),
		SessionsPerClient: map[string]int64{},
	}
	for i, value := range logins.Val() {
		var count int64
		if text, ok := value.(string); ok {
			count, _ = strconv.ParseInt(text, 10, 64)
		}
		stats.LoginsPerHour = append(stats.LoginsPerHour, HourlyCount{Hour: hours[i], Count: count})
	}

	for i, clientID := range clients {
		if n := counts[i].Val(); n > 0 {
			stats.SessionsPerClient[clientID] = n
		}
	}
	return stats, nil
}

// Ping checks that Redis responds.
func (r *RedisSessionStore) Ping(ctx context.Context) error {
	return redisError(r.client.Ping(ctx).Err())
}

// elevateScript replaces the JSON of a session that still exists and puts
// it in or out of the MFA index. ARGV: prefix, session id, JSON, MFA
// ("1" or "0").
var elevateScript = redis.NewScript(`
local p, id = ARGV[1], ARGV[2]
local key = p .. 'session:' .. id
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'data', ARGV[3])
if ARGV[4] == '1' then
  local deadline = redis.call('ZSCORE', p .. 'stats:sessions', id)
  if deadline then redis.call('ZADD', p .. 'stats:mfa', deadline, id) end
else
  redis.call('ZREM', p .. 'stats:mfa', id)
end
return 1
`)

// Elevate records a further authentication in a live session, such as a
// second factor after the password or a new sign-in: it replaces the
// methods and the authentication time, and counts the session as MFA
// exactly when UsedMFA now holds. Two concurrent calls for one session may lose one's methods; the
// login flow makes one at a time.
func (r *RedisSessionStore) Elevate(ctx context.Context, id string, amr []string, authTime time.Time) error {
	s, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	s.AMR = slices.Clone(amr)
	s.AuthTime = authTime
	// Last activity and later clients live in their own fields, which the
	// script leaves alone.
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	mfa := "0"
	if s.UsedMFA() {
		mfa = "1"
	}
	elevated, err := elevateScript.Run(ctx, r.client, nil, r.prefix, id, data, mfa).Int()
	if err != nil {
		return redisError(err)
	}
	if elevated == 0 {
		return fosite.ErrNotFound
	}
	return nil
}
