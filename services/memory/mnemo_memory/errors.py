"""Domain errors of the memory service. Stores, the long-term layer and the servicers
raise them and nothing gRPC-specific; the server's ``ErrorMapping`` (``interceptors.py``,
one table, wrapped around every handler) maps them to gRPC status codes."""

from __future__ import annotations


class MemoryError_(Exception):
    """Base class of every domain error."""


class InvalidArgumentError(MemoryError_):
    """Bad input; ``field`` names the request field (→ INVALID_ARGUMENT)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFoundError(MemoryError_):
    """Unknown thread or memory (→ NOT_FOUND)."""


class PermissionDeniedError(MemoryError_):
    """The object belongs to another user (→ PERMISSION_DENIED)."""


class RateLimitedError(MemoryError_):
    """A rate-limit window is full (→ RESOURCE_EXHAUSTED, ``retry-after`` metadata)."""

    def __init__(self, window: str, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"rate limit of {limit} requests per {window} reached; retry after {retry_after_s}s"
        )
        self.window = window
        self.limit = limit
        self.retry_after_s = retry_after_s


class UnavailableError(MemoryError_):
    """A backing store is unreachable (→ UNAVAILABLE); ``component`` names it."""

    def __init__(self, component: str, detail: str = "") -> None:
        super().__init__(f"{component} unavailable" + (f": {detail}" if detail else ""))
        self.component = component


class ConflictError(MemoryError_):
    """The state changed underneath an operation (→ ABORTED)."""


class ErasedError(MemoryError_):
    """A write for a user whose erasure is running, or for a turn that began before it
    (→ FAILED_PRECONDITION): nothing is stored."""


class ModelMismatchError(MemoryError_):
    """The configured embedding model differs from the one a collection was built with
    (→ FAILED_PRECONDITION)."""


def store_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says a store is down, unreachable, loading or failing over (Redis
    or the vector store) — a condition of the deployment, not of the request or job that
    met it: RPCs answer UNAVAILABLE, the worker waits and retries without spending an
    attempt."""
    from redis import exceptions as redis_errors

    down = (
        UnavailableError,
        redis_errors.ConnectionError,  # includes redis' TimeoutError's siblings below
        redis_errors.TimeoutError,
        redis_errors.BusyLoadingError,
        redis_errors.ClusterDownError,
        redis_errors.MasterDownError,
        redis_errors.TryAgainError,
        redis_errors.ReadOnlyError,  # a replica just after failover
        ConnectionError,
    )
    return isinstance(exc, down)
