"""Pieces every provider shares: SDK error mapping, JSON-reply parsing, metrics.

Both official SDKs (``anthropic`` and ``openai``) are generated from the same template, so
their exceptions have the same shape (``APIStatusError`` with ``status_code``, ``response``
and ``body``; ``APITimeoutError`` below ``APIConnectionError``); one mapper serves both.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import jsonschema
import openai

from .. import metrics
from .base import LLMError, LLMErrorKind, Usage

_REQUESTS, _TOKENS = metrics.counters(
    (
        "mnemo_llm_requests_total",
        "LLM calls by provider, purpose and outcome (ok or an LLMErrorKind)",
        ("provider", "purpose", "outcome"),
    ),
    (
        "mnemo_llm_tokens_total",
        "Tokens reported by the provider, by direction (input/output)",
        ("provider", "direction"),
    ),
)
_LATENCY = metrics.histogram(
    "mnemo_llm_request_duration_seconds",
    "Wall time of an LLM call including SDK retries (streams: until the last event)",
    ("provider", "purpose"),
)

# Error types the vendors put in error bodies (Anthropic ``error.type``, OpenAI
# ``error.type``/``error.code``); they decide the kind of errors that arrive mid-stream on
# an HTTP 200 response. Errors with an HTTP error status are classified by the status.
_KIND_BY_ERROR_TYPE = {
    "rate_limit_error": LLMErrorKind.RATE_LIMITED,
    "rate_limit_exceeded": LLMErrorKind.RATE_LIMITED,
    "overloaded_error": LLMErrorKind.OVERLOADED,
    "authentication_error": LLMErrorKind.AUTH,
    "permission_error": LLMErrorKind.AUTH,
    "invalid_api_key": LLMErrorKind.AUTH,
    "invalid_request_error": LLMErrorKind.BAD_REQUEST,
    "not_found_error": LLMErrorKind.BAD_REQUEST,
    "request_too_large": LLMErrorKind.BAD_REQUEST,
    "timeout_error": LLMErrorKind.TIMEOUT,
    "api_error": LLMErrorKind.UNAVAILABLE,
    "server_error": LLMErrorKind.UNAVAILABLE,
}


def kind_for_status(status: int) -> LLMErrorKind:
    """The error kind of an HTTP status from an LLM API."""
    if status in (401, 403):
        return LLMErrorKind.AUTH
    if status == 429:
        return LLMErrorKind.RATE_LIMITED
    if status in (503, 529):
        return LLMErrorKind.OVERLOADED
    if status in (408, 504):
        return LLMErrorKind.TIMEOUT
    if status >= 500:
        return LLMErrorKind.UNAVAILABLE
    return LLMErrorKind.BAD_REQUEST


def _error_body(body: object) -> dict[str, Any]:
    """The ``error`` object of a vendor error body (or the body itself)."""
    if isinstance(body, dict):
        inner = body.get("error")
        return inner if isinstance(inner, dict) else body
    return {}


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (number or HTTP date), like the SDKs."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))
    return None


def map_sdk_error(exc: BaseException, provider: str) -> LLMError:
    """Translate any ``anthropic``/``openai`` SDK exception into an :class:`LLMError`."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError | openai.APITimeoutError):
        return LLMError(LLMErrorKind.TIMEOUT, "the model did not answer in time", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError | openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return LLMError(
            LLMErrorKind.UNAVAILABLE, f"cannot reach the API: {cause}", provider=provider
        )
    if isinstance(exc, anthropic.APIResponseValidationError | openai.APIResponseValidationError):
        return LLMError(
            LLMErrorKind.UNAVAILABLE,
            "the API sent a malformed response",
            provider=provider,
            status_code=exc.status_code,
        )
    if isinstance(exc, anthropic.APIError | openai.APIError):
        error = _error_body(exc.body)
        message = str(error.get("message") or exc.message)
        error_type = str(error.get("type") or error.get("code") or "")
        status: int | None = None
        retry_after: float | None = None
        if isinstance(exc, anthropic.APIStatusError | openai.APIStatusError):
            retry_after = parse_retry_after(exc.response.headers)
            if exc.status_code >= 400:  # SSE errors arrive on a 200 response
                status = exc.status_code
        if status is not None:
            kind = kind_for_status(status)
        else:  # an error event inside a stream: only the body says what happened
            kind = _KIND_BY_ERROR_TYPE.get(error_type, LLMErrorKind.UNAVAILABLE)
        return LLMError(
            kind, message, provider=provider, status_code=status, retry_after_s=retry_after
        )
    return LLMError(LLMErrorKind.UNAVAILABLE, f"{type(exc).__name__}: {exc}", provider=provider)


SDK_ERRORS: tuple[type[BaseException], ...] = (anthropic.AnthropicError, openai.OpenAIError)


# -- structured output ------------------------------------------------------------------

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", re.DOTALL)


def json_instructions(schema: dict[str, Any]) -> str:
    """System-prompt text asking for a bare JSON value matching ``schema``."""
    return (
        "Reply with a single JSON value that conforms to this JSON Schema, and nothing else: "
        "no prose, no explanation, no Markdown code fences.\nJSON Schema:\n"
        + json.dumps(schema, separators=(",", ":"), sort_keys=True)
    )


def check_schema(schema: dict[str, Any], provider: str) -> None:
    """Refuse an invalid JSON schema before spending a model call on it."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise LLMError(
            LLMErrorKind.BAD_REQUEST, f"invalid JSON schema: {exc.message}", provider=provider
        ) from None


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_json_reply(text: str, schema: dict[str, Any], provider: str) -> Any:
    """Parse a model's JSON reply (code fences tolerated) and validate it against ``schema``.

    Raises :class:`LLMError` ``INVALID_OUTPUT`` with a short reason; never returns
    unvalidated data.
    """
    candidate = text.strip()
    fenced = _FENCE.match(candidate)
    if fenced:
        candidate = fenced.group(1).strip()
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as exc:
        value = _first_json_value(candidate)
        if value is _MISSING:
            raise LLMError(
                LLMErrorKind.INVALID_OUTPUT,
                f"reply is not JSON ({exc.msg} at char {exc.pos}): {_shorten(text)!r}",
                provider=provider,
            ) from None
    validator_cls = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(value))
    if error is not None:
        where = error.json_path
        raise LLMError(
            LLMErrorKind.INVALID_OUTPUT,
            f"reply does not match the schema at {where}: {_shorten(error.message, 160)}",
            provider=provider,
        )
    return value


_MISSING = object()


def _first_json_value(text: str) -> Any:
    """The first JSON object/array embedded in prose (models sometimes add a preamble)."""
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(text, index)
            except ValueError:
                continue
            return value
    return _MISSING


# -- metrics ------------------------------------------------------------------------------


class CallRecord:
    """Outcome of one call, filled in by the provider inside :func:`observe_call`."""

    def __init__(self) -> None:
        self.usage: Usage | None = None


@contextmanager
def observe_call(provider: str, purpose: str) -> Iterator[CallRecord]:
    """Time a call and count its outcome; SDK exceptions leave as :class:`LLMError`."""
    record = CallRecord()
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield record
    except LLMError as exc:
        outcome = exc.kind.value
        raise
    except SDK_ERRORS as exc:
        mapped = map_sdk_error(exc, provider)
        outcome = mapped.kind.value
        raise mapped from exc
    except Exception:
        outcome = "error"
        raise
    except BaseException:  # cancellation, or a stream the caller stopped reading
        outcome = "cancelled"
        raise
    finally:
        _LATENCY.labels(provider, purpose).observe(time.perf_counter() - started)
        _REQUESTS.labels(provider, purpose, outcome).inc()
        if record.usage is not None:
            _TOKENS.labels(provider, "input").inc(record.usage.input_tokens)
            _TOKENS.labels(provider, "output").inc(record.usage.output_tokens)


def structured_reply(
    text: str, stop_reason: str | None, schema: dict[str, Any], provider: str
) -> Any:
    """:func:`parse_json_reply`, with a hint when the reply was cut at the token limit."""
    try:
        return parse_json_reply(text, schema, provider)
    except LLMError as exc:
        if stop_reason in ("max_tokens", "length"):
            exc.message += " (the reply was cut off at max_tokens; raise LLM__MAX_TOKENS)"
        raise


def join_system(*parts: str) -> str:
    """System prompt parts joined by a blank line, empty parts dropped."""
    return "\n\n".join(p for p in parts if p)
