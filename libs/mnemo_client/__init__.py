"""``mnemo_client``: a typed Python client of the Mnemo gateway, sync and async.

    from mnemo_client import MnemoClient

    with MnemoClient("http://127.0.0.1:8000", user="ada") as mnemo:
        mnemo.chat("I live in Lisbon")
        for hit in mnemo.search_memories("where do I live?")["results"]:
            print(hit["memory"]["text"])

Shipped in the ``mnemo-libs`` distribution (libs/); it depends on httpx only.
"""

from ._requests import DEFAULT_URL, ME
from .client import AsyncMnemoClient, MnemoClient
from .errors import (
    AuthenticationError,
    Conflict,
    GatewayUnreachable,
    InvalidRequest,
    MnemoError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)

__all__ = [
    "DEFAULT_URL",
    "ME",
    "AsyncMnemoClient",
    "AuthenticationError",
    "Conflict",
    "GatewayUnreachable",
    "InvalidRequest",
    "MnemoClient",
    "MnemoError",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
]
