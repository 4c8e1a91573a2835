"""Lua scripts of :mod:`.threads` (each runs atomically on one Redis node).

Keys 1-5 are one user's thread keys (one Cluster slot). The global keys (activity index,
job stream) follow only when the deployment allows cross-slot scripts (``inline == '1'``);
on Cluster the script writes those writes into the user's outbox instead (same slot) and
:mod:`.outbox` relays them to the global keys (ADR 0012).
"""

from __future__ import annotations

from .lua import LuaScript

# KEYS: 1 messages, 2 meta, 3 idem, 4 user thread index, 5 summary,
#       inline: 6 activity index, 7 job stream; Cluster: 6 the user's outbox;
#       then always last: the user's erasure job (hash), the user's in-flight turns (zset)
# ARGV: 1 now_ms, 2 user_id, 3 thread_id, 4 idempotency key, 5 user msg json,
#       6 assistant msg json, 7 assistant msg id, 8 max messages, 9 thread ttl ms,
#       10 idem ttl ms, 11 idem cap, 12 extract every, 13 summary threshold,
#       14 summary stale ms, 15 inline, 16 title, 17 the extract job, 18 the summary job
#       (each ``Job.lua_template``: a JSON array of its fields whose last value is the
#       count this script computes: new messages, messages held),
#       19 activity member, 20 in-flight member ("tid:idempotency key")
# Returns {status, message_count, created, extract(0/1), new_messages, summarize(0/1)};
# status 'erasing' while the user's erasure runs, 'erased' for a turn PrepareTurn saw
# before the user's last erasure began (or never saw, within the erasure marker's life)
APPEND_TURN = LuaScript(
    "append_turn",
    r"""
local now = tonumber(ARGV[1])
local inline = ARGV[15] == '1'
local ttl = tonumber(ARGV[9])
if redis.call('ZSCORE', KEYS[3], ARGV[4]) then
  return {'duplicate', redis.call('LLEN', KEYS[1]), 0, 0, 0, 0}
end
local erasure = redis.call('HMGET', KEYS[#KEYS - 1], 'state', 'started_at_ms')
if erasure[1] == 'running' then return {'erasing', 0, 0, 0, 0, 0} end
if erasure[1] then
  local seen = redis.call('ZSCORE', KEYS[#KEYS], ARGV[20])
  if not seen or tonumber(seen) < tonumber(erasure[2]) then
    return {'erased', 0, 0, 0, 0, 0}
  end
end
redis.call('ZREM', KEYS[#KEYS], ARGV[20])
local created = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  created = 1
  -- a thread (re)created under an expired id starts without the old one's summary
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[2], 'user_id', ARGV[2], 'thread_id', ARGV[3],
             'created_at_ms', now, 'title', ARGV[16], 'total_messages', 0,
             'since_extract', 0, 'summary_job_ms', 0)
end
redis.call('RPUSH', KEYS[1], ARGV[5], ARGV[6])
local len = redis.call('LLEN', KEYS[1])
local max = tonumber(ARGV[8])
if len > max then
  redis.call('LTRIM', KEYS[1], len - max, -1)
  len = max
end
redis.call('HINCRBY', KEYS[2], 'total_messages', 2)
local since = redis.call('HINCRBY', KEYS[2], 'since_extract', 2)
redis.call('HSET', KEYS[2], 'updated_at_ms', now, 'message_count', len, 'closed', 0)
-- idempotency keys: remember this one, forget expired ones, cap the set
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[10]))
local nidem = redis.call('ZCARD', KEYS[3])
local cap = tonumber(ARGV[11])
if nidem > cap then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, nidem - cap - 1) end
redis.call('ZADD', KEYS[4], now, ARGV[3])
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
-- background jobs
local extract = 0
local new_messages = 0
if since >= tonumber(ARGV[12]) then
  extract = 1
  new_messages = since
  redis.call('HSET', KEYS[2], 'since_extract', 0)
end
local summarize = 0
if len > tonumber(ARGV[13]) then
  local pending = tonumber(redis.call('HGET', KEYS[2], 'summary_job_ms') or '0')
  if pending == 0 or now - pending > tonumber(ARGV[14]) then
    summarize = 1
    redis.call('HSET', KEYS[2], 'summary_job_ms', now)
  end
end
local writes = {}
local function job(template, count)
  local fields = cjson.decode(template)
  fields[#fields] = tostring(count)
  return fields
end
if extract == 1 then writes[#writes + 1] = job(ARGV[17], new_messages) end
if summarize == 1 then writes[#writes + 1] = job(ARGV[18], len) end
if inline then
  redis.call('ZADD', KEYS[6], now, ARGV[19])
  for _, job in ipairs(writes) do redis.call('XADD', KEYS[7], '*', unpack(job)) end
else
  -- same slot as the turn: durable with it, relayed to the global keys afterwards
  redis.call('ZADD', KEYS[6], now, cjson.encode({'activity', ARGV[19], ARGV[1]}))
  for _, job in ipairs(writes) do redis.call('ZADD', KEYS[6], now, cjson.encode({'job', job})) end
  redis.call('PEXPIRE', KEYS[6], ttl)
end
return {'ok', len, created, extract, new_messages, summarize}
""",
)

# KEYS: 1 messages, 2 meta, 3 summary
# ARGV: 1 now_ms, 2 thread ttl ms, 3 summary text, 4.. message ids (oldest first)
# Returns 1 when replaced, 0 when the oldest messages are not exactly those ids.
REPLACE_WITH_SUMMARY = LuaScript(
    "replace_oldest_with_summary",
    r"""
local n = #ARGV - 3
if n < 1 or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #head ~= n then return 0 end
for i = 1, n do
  local ok, msg = pcall(cjson.decode, head[i])
  if not ok or type(msg) ~= 'table' or msg['id'] ~= ARGV[3 + i] then return 0 end
end
redis.call('LTRIM', KEYS[1], n, -1)
-- the summary expires with the thread, not a full TTL after the last summary
local ttl = redis.call('PTTL', KEYS[2])
if ttl <= 0 then ttl = tonumber(ARGV[2]) end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ttl)
redis.call('HSET', KEYS[2], 'message_count', redis.call('LLEN', KEYS[1]),
           'summary_updated_at_ms', ARGV[1], 'summary_job_ms', 0)
redis.call('HINCRBY', KEYS[2], 'summarized_messages', n)
return 1
""",
)

# KEYS: 1 messages, 2 meta, 3 idem, 4 summary, 5 user thread index,
#       [6 activity index] (inline only)
# ARGV: 1 thread_id, 2 inline, 3 activity member
# Returns the number of messages deleted, or -1 when the thread did not exist.
DELETE_THREAD = LuaScript(
    "delete_thread",
    r"""
local existed = redis.call('EXISTS', KEYS[2]) + redis.call('EXISTS', KEYS[1])
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local indexed = redis.call('ZREM', KEYS[5], ARGV[1])
if ARGV[2] == '1' then redis.call('ZREM', KEYS[6], ARGV[3]) end
if existed + indexed == 0 then return -1 end
return n
""",
)

# KEYS: 1 the user's in-flight turns (zset). ARGV: 1 member, 2 ttl ms.
# PrepareTurn records, in Redis time, that it saw the turn: a commit of a turn seen before
# the user's erasure began is refused (APPEND_TURN), one seen after it is stored.
NOTE_TURN = LuaScript(
    "note_turn",
    r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now
""",
)

# KEYS: 1 messages, 2 meta, 3 summary. ARGV: message ids.
# Removes the held messages with those ids (a deleted memory's sources); when some are no
# longer held they were folded into the running summary, which then goes too.
# Returns {messages removed, summaries removed}.
REDACT_MESSAGES = LuaScript(
    "redact_messages",
    r"""
local want = {}
for i = 1, #ARGV do want[ARGV[i]] = true end
local removed = 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, msg = pcall(cjson.decode, raw)
  if ok and type(msg) == 'table' and want[msg['id']] then
    removed = removed + redis.call('LREM', KEYS[1], 1, raw)
  end
end
local dropped = 0
if removed < #ARGV then dropped = redis.call('DEL', KEYS[3]) end
if removed > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'message_count', redis.call('LLEN', KEYS[1]))
end
return {removed, dropped}
""",
)

# KEYS: 1 meta. ARGV: field, value, ... Sets the fields only when the hash exists, so a
# thread that just expired is not resurrected as a metadata hash without TTL.
HSET_IF_EXISTS = LuaScript(
    "hset_if_exists",
    r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
""",
)
