"""One conversation = one thread, without a header (ADR 0011).

A drop-in client (Anthropic Messages, OpenAI Chat Completions) resends the whole
conversation on every call and appends one message. What every call of a conversation
shares — and a retry of the very first call shares too — is its *opening*: the system
prompt and the first user message. The thread id is a hash of that opening, scoped to the
memory user (which carries the api-key tenant), so:

* every call of one conversation, streamed or not, retried or not, names the same thread
  before the model has answered (the response header goes out first);
* another opening, or another user with the same opening, is another thread;
* nothing is looked up or stored to find the thread: a turn answered without memory, an
  expired or deleted thread, or a second gateway replica all compute the same id.

Two conversations of the same user with the same system prompt *and* the same first
message share a thread: at their first call they are byte-for-byte a retry of each other.
The explicit ``X-Mnemo-Thread-Id`` header separates them (it always wins).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

#: prefix of fingerprinted thread ids (gateway-made random ones are ``th_``)
CONVERSATION_PREFIX = "cv_"
#: bumped if the canonical form ever changes (old conversations would then fork once)
FINGERPRINT_VERSION = 1
#: keys that mark prompt-caching breakpoints, which clients move between calls
_VOLATILE_KEYS = frozenset({"cache_control"})


def _blocks(content: Any) -> list[Any]:
    """Content in one canonical shape: a list of blocks, text blocks as ``type`` + ``text``
    only, so ``"hi"`` and ``[{"type": "text", "text": "hi"}]`` are the same opening."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return [_canonical(content)]
    out: list[Any] = []
    for block in content:
        if isinstance(block, str):
            out.append({"type": "text", "text": block})
        elif isinstance(block, Mapping) and block.get("type") == "text":
            out.append({"type": "text", "text": block.get("text", "")})
        else:
            out.append(_canonical(block))
    return out


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _first_user(messages: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for message in messages:
        if message.get("role") == "user":
            return message
    return None


def anthropic_opening(system: Any, messages: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The opening of an Anthropic Messages conversation: ``system`` and the first user
    message."""
    first = _first_user(messages)
    return {"system": _blocks(system), "first": _blocks(first.get("content") if first else None)}


def openai_opening(messages: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The opening of a Chat Completions conversation: the system/developer messages before
    the first user message, and that message."""
    system: list[Any] = []
    first: Mapping[str, Any] | None = None
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system += _blocks(message.get("content"))
        elif role == "user":
            first = message
            break
    return {"system": system, "first": _blocks(first.get("content") if first else None)}


def conversation_thread_id(user_id: str, opening: Mapping[str, Any]) -> str:
    """The thread of the conversation that starts with ``opening``, for memory user
    ``user_id`` (tenant-prefixed in api-key mode): ``cv_`` + 128 bits of SHA-256.

    Every piece is fed length-prefixed (unambiguous), text as its UTF-8 bytes: long system
    prompts are hashed without being JSON-escaped first.
    """
    digest = hashlib.sha256(f"mnemo-conversation-v{FINGERPRINT_VERSION}".encode())
    _feed(digest, user_id)
    for part in ("system", "first"):
        blocks = opening.get(part) or []
        _feed(digest, f"{part}:{len(blocks)}")
        for block in blocks:
            if isinstance(block, Mapping) and block.get("type") == "text" and len(block) == 2:
                _feed(digest, "text")
                _feed(digest, str(block.get("text", "")))
            else:
                _feed(digest, "json")
                _feed(digest, json.dumps(block, sort_keys=True, separators=(",", ":")))
    return CONVERSATION_PREFIX + digest.hexdigest()[:32]


def _feed(digest: Any, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
