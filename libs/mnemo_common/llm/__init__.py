"""The LLM provider layer: one async interface (:mod:`.base`), three providers.

``build_provider(settings)`` returns the configured one:

* ``LLM__PROVIDER`` when set (``anthropic``, ``openai-compatible``, ``offline``);
* else ``anthropic`` when ``ANTHROPIC_API_KEY`` is set;
* else ``offline``, with a WARNING log saying replies do not come from a real model.

Configuration mistakes (a provider chosen without what it needs) raise
:class:`~mnemo_common.settings.SettingsError` naming the environment variable.
"""

from __future__ import annotations

import logging

from ..settings import CommonSettings, LLMProviderName, SettingsError
from .base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    LLMError,
    LLMErrorKind,
    LLMProvider,
    MemoryContext,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)
from .offline import OFFLINE_LABEL, OfflineProvider

log = logging.getLogger(__name__)

__all__ = [
    "OFFLINE_LABEL",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "LLMError",
    "LLMErrorKind",
    "LLMProvider",
    "MemoryContext",
    "OfflineProvider",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "Usage",
    "build_provider",
]


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return (getter() if getter else "") or ""


def build_provider(settings: CommonSettings) -> LLMProvider:
    """The provider the settings select (see the module docstring)."""
    llm = settings.llm
    choice = settings.llm_provider
    if choice is LLMProviderName.ANTHROPIC:
        from .anthropic_provider import AnthropicProvider

        api_key = _secret(settings.anthropic_api_key)
        if not api_key:
            raise SettingsError(
                "ANTHROPIC_API_KEY is required when LLM__PROVIDER=anthropic "
                "(or unset LLM__PROVIDER to fall back to the offline provider)"
            )
        log.info(
            "LLM provider: anthropic",
            extra={
                "llm_provider": "anthropic",
                "chat_model": llm.chat_model,
                "extraction_model": llm.extraction_model,
                "base_url": llm.anthropic_base_url or "default",
            },
        )
        return AnthropicProvider(llm, api_key)
    if choice is LLMProviderName.OPENAI_COMPATIBLE:
        from .openai_provider import OpenAICompatibleProvider

        if not llm.openai_base_url:
            raise SettingsError(
                "LLM__OPENAI_BASE_URL is required when LLM__PROVIDER=openai-compatible "
                "(the server's base URL, e.g. http://vllm:8000/v1 or http://ollama:11434/v1)"
            )
        if not llm.openai_chat_model:
            raise SettingsError(
                "LLM__OPENAI_CHAT_MODEL is required when LLM__PROVIDER=openai-compatible "
                "(the model name the server knows, e.g. llama3.1:8b)"
            )
        # one self-hosted model usually serves both purposes
        extraction_model = llm.openai_extraction_model or llm.openai_chat_model
        log.info(
            "LLM provider: openai-compatible",
            extra={
                "llm_provider": "openai-compatible",
                "chat_model": llm.openai_chat_model,
                "extraction_model": extraction_model,
                "base_url": llm.openai_base_url,
            },
        )
        return OpenAICompatibleProvider(
            llm,
            base_url=llm.openai_base_url,
            chat_model=llm.openai_chat_model,
            extraction_model=extraction_model,
            api_key=_secret(llm.openai_api_key) or None,
        )
    if llm.provider is None:
        log.warning(
            "LLM provider: offline (no ANTHROPIC_API_KEY and no LLM__PROVIDER set): replies "
            "are NOT from a real language model, they only echo the stored memory",
            extra={"llm_provider": "offline"},
        )
    else:
        log.warning(
            "LLM provider: offline (LLM__PROVIDER=offline): replies are NOT from a real "
            "language model, they only echo the stored memory",
            extra={"llm_provider": "offline"},
        )
    return OfflineProvider()
