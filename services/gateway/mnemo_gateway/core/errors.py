"""Every error the gateway returns: one JSON shape, stable codes, one status mapping.

Body: ``{"type": "error", "error": {"code": ..., "type": ..., "message": ..., "field": ...}}``
— ``code`` is the stable machine-readable name, ``field`` (when present) names the request
field at fault. The top-level ``type`` and ``error.type`` make the same body readable by the
Anthropic and OpenAI SDKs, which raise their usual ``APIStatusError`` on it.

gRPC status → HTTP status mapping lives here and nowhere else (:func:`from_grpc`), as does
the LLM error mapping (:func:`from_llm`).
"""

from __future__ import annotations

import math
from typing import Any

import grpc
from mnemo_common.ids import InvalidIdError, validate_id
from mnemo_common.llm.base import LLMError, LLMErrorKind
from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error answer: HTTP status, stable ``code``, human message, optional field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {
            "code": self.code,
            "type": _error_type(self.status),
            "message": self.message,
        }
        if self.field:
            err["field"] = self.field
        return {"type": "error", "error": err}

    def to_response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _error_type(status: int) -> str:
    # Anthropic's error type names, which OpenAI clients also accept as free text
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        422: "invalid_request_error",
        429: "rate_limit_error",
        501: "api_error",
        502: "api_error",
        503: "overloaded_error",
        504: "timeout_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


def internal_error() -> ApiError:
    """The answer to an unexpected exception (details only in the log)."""
    return ApiError(
        500,
        "internal_error",
        "internal error; see the gateway log (request id in the X-Request-Id header)",
    )


def invalid_id(exc: InvalidIdError) -> ApiError:
    return ApiError(422, "invalid_id", f"{exc.field} {exc.reason}", field=exc.field)


def valid_id(value: str, field: str) -> str:
    """``value`` when it is a safe id (:func:`mnemo_common.ids.validate_id`); a 422
    ``invalid_id`` naming ``field`` otherwise. The one wrapper every HTTP id goes through."""
    try:
        return validate_id(value, field)
    except InvalidIdError as exc:
        raise invalid_id(exc) from None


# --- gRPC → HTTP -------------------------------------------------------------------------

_GRPC_TO_HTTP: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "invalid_argument"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "forbidden"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limited"),
    grpc.StatusCode.UNAVAILABLE: (503, "memory_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "memory_timeout"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "not_implemented"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition"),
    grpc.StatusCode.ABORTED: (409, "conflict"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "already_exists"),
    # the memory service refused the gateway's own token: a deployment error, not the caller's
    grpc.StatusCode.UNAUTHENTICATED: (502, "memory_auth_failed"),
    grpc.StatusCode.CANCELLED: (499, "cancelled"),
}


def retry_after_from(err: grpc.aio.AioRpcError) -> str | None:
    """Whole seconds from the ``retry-after`` trailing metadata, when present."""
    for md in (err.trailing_metadata() or (), err.initial_metadata() or ()):
        for key, value in md:
            if key.lower() == "retry-after":
                raw = value.decode() if isinstance(value, bytes) else str(value)
                try:
                    return str(max(1, math.ceil(float(raw))))
                except ValueError:
                    return None
    return None


def from_grpc(err: grpc.aio.AioRpcError) -> ApiError:
    """The one place a memory-service status becomes an HTTP answer."""
    code = err.code()
    status, name = _GRPC_TO_HTTP.get(code, (502, "memory_error"))
    message = err.details() or code.name.lower()
    field = None
    headers: dict[str, str] = {}
    if code is grpc.StatusCode.INVALID_ARGUMENT and ":" in message:
        # the memory service names the field first ("thread_id: may contain only ...")
        candidate = message.split(":", 1)[0].strip()
        if candidate.replace("_", "").replace(".", "").isalnum():
            field = candidate
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        headers["Retry-After"] = retry_after_from(err) or "1"
    if code is grpc.StatusCode.UNIMPLEMENTED:
        message = "this memory operation is not available on the memory service yet"
    return ApiError(status, name, message, field=field, headers=headers)


# --- LLM → HTTP ---------------------------------------------------------------------------

_LLM_TO_HTTP: dict[LLMErrorKind, tuple[int, str]] = {
    LLMErrorKind.RATE_LIMITED: (503, "llm_rate_limited"),
    LLMErrorKind.OVERLOADED: (503, "llm_overloaded"),
    LLMErrorKind.TIMEOUT: (504, "llm_timeout"),
    LLMErrorKind.UNAVAILABLE: (502, "llm_unavailable"),
    LLMErrorKind.AUTH: (502, "llm_auth_failed"),
    # not the client's mistake: e.g. a 404 for the gateway's configured model or base URL
    LLMErrorKind.BAD_REQUEST: (502, "llm_error"),
    LLMErrorKind.INVALID_OUTPUT: (502, "llm_invalid_output"),
}

#: upstream statuses that refuse the request itself (e.g. max_tokens over the model's
#: limit): the client's mistake, a 400 — a 5xx would make the SDKs retry it in vain
_LLM_CLIENT_MISTAKES = frozenset({400, 413, 422})


def from_llm(err: LLMError) -> ApiError:
    """An LLM provider failure as an answer carrying the provider's reason."""
    status, name = _LLM_TO_HTTP.get(err.kind, (502, "llm_error"))
    if err.kind is LLMErrorKind.BAD_REQUEST and err.status_code in _LLM_CLIENT_MISTAKES:
        status, name = 400, "llm_bad_request"
    headers = {}
    if err.retry_after_s:
        headers["Retry-After"] = str(max(1, math.ceil(err.retry_after_s)))
    upstream = f" (upstream status {err.status_code})" if err.status_code else ""
    return ApiError(status, name, f"{err.provider}: {err.message}{upstream}", headers=headers)
