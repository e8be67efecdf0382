/**
 * Lua scripts of the Redis presence store: every multi-step change runs as one script, so two
 * nodes can never interleave (the last connection going, its offline change and last_seen are
 * one step). Changes are PUBLISHed from inside the script, so a change and its signal are atomic.
 *
 * Key layout (P = key prefix), all given to the scripts as KEYS:
 *   P conns:<user>  ZSET connection id → last heartbeat (ms, the store's clock)
 *   P nodes:<user>  HASH connection id → node id
 *   P user:<user>   HASH status (explicit: away | offline), last_seen (ms), shown (last published)
 *   P live          ZSET JSON [user, connection] → last heartbeat: what sweep() scans
 *   P typing:<conv> ZSET user → typing expiry (ms)
 *   P typing-to:<conv>  HASH user → recipients of their typing (JSON array), for the expiry's signal
 *   P typers        ZSET JSON [conversation, user] → typing expiry: what sweep() scans
 *   P throttle:<n>:<user>:<conv>  STRING time of the last accepted typing signal (n = user length)
 * Time always comes from ARGV (the store's clock). PEXPIRE / PX are garbage-collection backstops
 * only, set well beyond the TTLs the scores decide.
 */

/** ARGV[1] now, ARGV[2] presence TTL, ARGV[3] channel, ARGV[4] user id, ARGV[5] origin node. */
const PRESENCE_PRELUDE = `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local channel, uid, origin = ARGV[3], ARGV[4], ARGV[5]

local function live_count(conns)
  return redis.call('ZCOUNT', conns, '(' .. string.format('%d', now - ttl), '+inf')
end

local function effective(conns, user)
  local h = redis.call('HMGET', user, 'status', 'last_seen')
  if live_count(conns) > 0 then
    if h[1] == 'away' then return 'away', false end
    if h[1] == 'offline' then return 'offline', h[2] end
    return 'online', false
  end
  return 'offline', h[2]
end

-- A sign of life: last_seen moves forward unless the user appears offline (then it is frozen).
local function touch(user)
  local h = redis.call('HMGET', user, 'status', 'last_seen')
  if h[1] == 'offline' then return end
  if (not h[2]) or tonumber(h[2]) < now then redis.call('HSET', user, 'last_seen', ARGV[1]) end
end

-- Publishes the user's presence if it differs from what was last published.
local function announce(conns, user)
  local status, last_seen = effective(conns, user)
  local shown = status .. '|' .. (last_seen or '')
  local previous = redis.call('HGET', user, 'shown') or 'offline|'
  if previous == shown then return 0 end
  redis.call('HSET', user, 'shown', shown)
  local signal = { v = 1, kind = 'presence', user_id = uid, status = status, origin = origin }
  if last_seen then signal.last_seen_ms = tonumber(last_seen) end
  redis.call('PUBLISH', channel, cjson.encode(signal))
  return 1
end
`;

/** KEYS conns, nodes, user, live. ARGV prelude + [6] connection, [7] node, [8] live member, [9] backstop ms. */
export const CONNECT = `${PRESENCE_PRELUDE}
local conns, nodes, user, live = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('ZCARD', conns) == 0 then redis.call('HDEL', user, 'status') end
redis.call('ZADD', conns, ARGV[1], ARGV[6])
redis.call('HSET', nodes, ARGV[6], ARGV[7])
redis.call('ZADD', live, ARGV[1], ARGV[8])
redis.call('PEXPIRE', conns, ARGV[9])
redis.call('PEXPIRE', nodes, ARGV[9])
touch(user)
announce(conns, user)
return 1
`;

/** KEYS conns, nodes, user, live. ARGV prelude + [6] connection, [7] live member, [8] backstop ms. Returns 0 if unknown. */
export const HEARTBEAT = `${PRESENCE_PRELUDE}
local conns, nodes, user, live = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local beat = redis.call('ZSCORE', conns, ARGV[6])
if not beat then return 0 end
if tonumber(beat) < now then
  redis.call('ZADD', conns, ARGV[1], ARGV[6])
  redis.call('ZADD', live, ARGV[1], ARGV[7])
end
redis.call('PEXPIRE', conns, ARGV[8])
redis.call('PEXPIRE', nodes, ARGV[8])
touch(user)
announce(conns, user)
return 1
`;

/**
 * KEYS conns, nodes, user, live. ARGV prelude + [6] connection, [7] live member,
 * [8] 'disconnect' | 'expire' (expire removes the connection only if its heartbeat is stale).
 * Returns 1 if the connection was removed.
 */
export const REMOVE = `${PRESENCE_PRELUDE}
local conns, nodes, user, live = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local beat = redis.call('ZSCORE', conns, ARGV[6])
if not beat then
  -- Unknown (or its keys expired by the backstop): drop the index entry, settle what was shown.
  redis.call('ZREM', live, ARGV[7])
  redis.call('HDEL', nodes, ARGV[6])
  if redis.call('ZCARD', conns) == 0 then redis.call('HDEL', user, 'status') end
  announce(conns, user)
  return 0
end
if ARGV[8] == 'expire' and tonumber(beat) > now - ttl then
  redis.call('ZADD', live, beat, ARGV[7])
  return 0
end
redis.call('ZREM', conns, ARGV[6])
redis.call('HDEL', nodes, ARGV[6])
redis.call('ZREM', live, ARGV[7])
if redis.call('ZCARD', conns) == 0 then redis.call('HDEL', user, 'status') end
announce(conns, user)
return 1
`;

/** KEYS conns, user. ARGV prelude + [6] online | away | offline. */
export const SET_STATUS = `${PRESENCE_PRELUDE}
local conns, user = KEYS[1], KEYS[2]
if redis.call('ZCARD', conns) == 0 then return 0 end
local status = ARGV[6]
if status == 'offline' then
  if redis.call('HGET', user, 'status') ~= 'offline' then
    touch(user)
    redis.call('HSET', user, 'status', 'offline')
  end
elseif status == 'away' then
  redis.call('HSET', user, 'status', 'away')
  touch(user)
else
  redis.call('HDEL', user, 'status')
  touch(user)
end
return announce(conns, user)
`;

/** Read-only. KEYS conns, user. ARGV prelude. Returns { status, last_seen ms or false }. */
export const GET = `${PRESENCE_PRELUDE}
local status, last_seen = effective(KEYS[1], KEYS[2])
return { status, last_seen }
`;

/**
 * Read-only. The node ids of each user's live connections, for many users in one call (a delivery
 * batch's recipients). KEYS: each user's conns and nodes keys, in pairs. ARGV[1] now, [2] ttl.
 * Returns one list per user, in KEYS order (an entry may be nil).
 */
export const NODES_MANY = `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local since = '(' .. string.format('%d', now - ttl)
local out = {}
for i = 1, #KEYS, 2 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[i], since, '+inf')
  if #ids == 0 then out[#out + 1] = {} else out[#out + 1] = redis.call('HMGET', KEYS[i + 1], unpack(ids)) end
end
return out
`;

/**
 * ARGV[1] now, [2] channel, [3] user, [4] origin, [5] conversation. A signal names its recipients:
 * a JSON array of user ids made by the caller, spliced in as it is (cjson would encode an empty
 * table as an object).
 */
const TYPING_PRELUDE = `
local now = tonumber(ARGV[1])
local channel, uid, origin, conversation = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local function signal(is_typing, recipients)
  local body = cjson.encode({
    v = 1, kind = 'typing', conversation_id = conversation, user_id = uid, is_typing = is_typing, origin = origin
  })
  redis.call('PUBLISH', channel, string.sub(body, 1, -2) .. ',"recipients":' .. recipients .. '}')
end
`;

/**
 * KEYS throttle, typing, typers, recipients. ARGV prelude + [6] typers member, [7] throttle ms,
 * [8] typing TTL ms, [9] throttle backstop ms, [10] typing backstop ms, [11] recipients (JSON).
 * Returns 0 when throttled (nothing published). The recipients are kept for the expiry's signal.
 */
export const TYPING_START = `${TYPING_PRELUDE}
local last = redis.call('GET', KEYS[1])
if last and now - tonumber(last) < tonumber(ARGV[7]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[9])
local expires = string.format('%d', now + tonumber(ARGV[8]))
redis.call('ZADD', KEYS[2], expires, uid)
redis.call('PEXPIRE', KEYS[2], ARGV[10])
redis.call('ZADD', KEYS[3], expires, ARGV[6])
redis.call('HSET', KEYS[4], uid, ARGV[11])
redis.call('PEXPIRE', KEYS[4], ARGV[10])
signal(true, ARGV[11])
return 1
`;

/**
 * KEYS typing, typers, recipients. ARGV prelude + [6] typers member, [7] recipients (JSON).
 * Publishes only if the user was typing.
 */
export const TYPING_STOP = `${TYPING_PRELUDE}
local was = redis.call('ZSCORE', KEYS[2], ARGV[6])
redis.call('ZREM', KEYS[1], uid)
redis.call('ZREM', KEYS[2], ARGV[6])
redis.call('HDEL', KEYS[3], uid)
if was then signal(false, ARGV[7]) return 1 end
return 0
`;

/**
 * KEYS typing, typers, recipients. ARGV prelude + [6] typers member. Ends a typing state whose
 * expiry passed, telling those its start told.
 */
export const TYPING_EXPIRE = `${TYPING_PRELUDE}
local expires = redis.call('ZSCORE', KEYS[2], ARGV[6])
if not expires then return 0 end
if tonumber(expires) > now then return 0 end
local recipients = redis.call('HGET', KEYS[3], uid) or '[]'
redis.call('ZREM', KEYS[1], uid)
redis.call('ZREM', KEYS[2], ARGV[6])
redis.call('HDEL', KEYS[3], uid)
signal(false, recipients)
return 1
`;
