"""The gateway's Prometheus metrics (one registry per process, mnemo_common.metrics)."""

from __future__ import annotations

from mnemo_common import metrics

HTTP_REQUESTS = metrics.counter(
    "mnemo_gateway_http_requests",
    "HTTP requests by route template, method and status",
    ("route", "method", "status"),
)
HTTP_LATENCY = metrics.histogram(
    "mnemo_gateway_http_request_seconds",
    "HTTP request duration until the last byte",
    ("route", "method"),
)
TIME_TO_FIRST_TOKEN = metrics.histogram(
    "mnemo_gateway_time_to_first_token_seconds",
    "From request start to the first answer text sent (streams) or ready (non-streams)",
    ("endpoint", "stream"),
)
LLM_TOKENS = metrics.counter(
    "mnemo_gateway_llm_tokens",
    "LLM tokens by direction (in|out) and provider",
    ("direction", "provider"),
)
LLM_ERRORS = metrics.counter(
    "mnemo_gateway_llm_errors",
    "LLM provider failures by kind",
    ("kind", "provider"),
)
DEGRADED_ANSWERS = metrics.counter(
    "mnemo_gateway_degraded_answers",
    "Chat answers given without memory because the memory service failed",
    ("reason",),
)
MEMORY_CALLS = metrics.counter(
    "mnemo_gateway_memory_calls",
    "Memory service calls by method and gRPC status",
    ("method", "code"),
)
MEMORY_WIRE_FALLBACKS = metrics.counter(
    "mnemo_gateway_memory_wire_fallbacks",
    "Memory calls sent over gRPC because GATEWAY__MEMORY_WIRE_ADDR could not be connected",
)
MEMORY_LATENCY = metrics.histogram(
    "mnemo_gateway_memory_call_seconds",
    "Memory service call latency",
    ("method",),
)
BREAKER_STATE = metrics.gauge(
    "mnemo_gateway_memory_breaker_state",
    "Circuit breaker towards the memory service: 0 closed, 1 open, 2 half-open",
)
UNSTORED_TURNS = metrics.counter(
    "mnemo_gateway_turns_unstored",
    "Chat turns answered but not stored (reported to the client as X-Mnemo-Memory: degraded /"
    " committed false), by reason: memory_unavailable (PrepareTurn failed), commit_<status>",
    ("reason", "endpoint"),
)
STORE_BREAKERS_OPEN = metrics.gauge(
    "mnemo_gateway_memory_store_breakers_open",
    "Per-(method, user) breakers open after failures the memory service reported for its "
    "stores (a shard failing over), as of the last such failure",
)
RATE_LIMIT_UNCHECKED = metrics.counter(
    "mnemo_gateway_rate_limit_unchecked",
    "Chat turns whose rate limit could not be checked (memory service unavailable), by "
    "what GATEWAY__RATE_LIMIT_FAIL_MODE did with them: admitted (open) | refused (closed)",
    ("outcome",),
)
COMMITTED_TURNS = metrics.counter(
    "mnemo_gateway_committed_turns",
    "Chat turns stored by CommitTurn",
    ("endpoint",),
)
TRUNCATED_ANSWERS = metrics.counter(
    "mnemo_gateway_truncated_answers",
    "Answers longer than MEMORY__MAX_MESSAGE_BYTES, stored truncated",
)
REPLAYED_TURNS = metrics.counter(
    "mnemo_gateway_replayed_turns",
    "Retried turns answered with the answer stored under their idempotency key (no LLM call)",
    ("endpoint",),
)
