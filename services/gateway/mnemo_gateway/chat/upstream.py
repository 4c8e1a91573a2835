"""Plain HTTP to the configured provider's endpoints beside chat (model list, token count).

The chat path goes through the provider layer (:mod:`mnemo_common.llm`); these endpoints
only forward a request and hand back the answer, so they use one pooled ``httpx`` client
with the provider's base URL and key. The ``offline`` provider has no upstream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from mnemo_common.settings import CommonSettings

from ..core.errors import ApiError

log = logging.getLogger(__name__)

Vendor = Literal["anthropic", "openai"]
#: what the anthropic SDK uses when no base URL is configured
ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
#: client headers worth forwarding (feature flags the upstream needs to read the body)
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


@dataclass(frozen=True)
class UpstreamReply:
    status: int
    body: Any  # parsed JSON, or None when the body was not JSON


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return (getter() if getter else "") or ""


class Upstream:
    """The provider's HTTP API, or nothing (``vendor`` None) for the offline provider."""

    def __init__(self, settings: CommonSettings, provider_name: str) -> None:
        llm = settings.llm
        self.vendor: Vendor | None = None
        self._client: httpx.AsyncClient | None = None
        headers: dict[str, str] = {}
        if provider_name == "anthropic":
            self.vendor, base = "anthropic", llm.anthropic_base_url or ANTHROPIC_DEFAULT_BASE_URL
            headers = {
                "x-api-key": _secret(settings.anthropic_api_key),
                "anthropic-version": ANTHROPIC_VERSION,
            }
            base = base.rstrip("/") + "/v1"
        elif provider_name == "openai-compatible" and llm.openai_base_url:
            self.vendor, base = "openai", llm.openai_base_url.rstrip("/")
            key = _secret(llm.openai_api_key)
            headers = {"authorization": f"Bearer {key}"} if key else {}
        else:
            return
        # paths below are relative to the API root: ".../v1" for both vendors
        self._client = httpx.AsyncClient(base_url=base, headers=headers, timeout=llm.timeout_s)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        client_headers: Any = None,
    ) -> UpstreamReply:
        """One call to ``path`` (relative to ``/v1``). Network failures and the provider
        refusing the gateway's own key are 5xx :class:`ApiError`; any other answer comes
        back as it is."""
        assert self._client is not None, "no upstream for this provider"
        headers = {
            name: client_headers[name]
            for name in FORWARDED_HEADERS
            if client_headers is not None and client_headers.get(name)
        }
        try:
            resp = await self._client.request(
                method, path.lstrip("/"), params=params, json=json, headers=headers
            )
        except httpx.TimeoutException:
            raise ApiError(504, "llm_timeout", f"{self.vendor}: no answer in time") from None
        except httpx.HTTPError as exc:
            raise ApiError(502, "llm_unavailable", f"{self.vendor}: {exc}") from None
        if resp.status_code in (401, 403):
            log.error("the LLM provider refused the gateway's key", extra={"path": path})
            raise ApiError(
                502,
                "llm_auth_failed",
                f"{self.vendor}: the provider refused the gateway's credential "
                f"(upstream status {resp.status_code})",
            )
        try:
            body = resp.json()
        except ValueError:
            body = None
        return UpstreamReply(resp.status_code, body)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
