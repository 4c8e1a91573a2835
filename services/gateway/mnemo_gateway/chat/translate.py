"""Request translation between the two drop-in protocols (client on the other vendor).

Text, system prompts, tools, tool calls and results, images and stop sequences have a
faithful counterpart and are translated. Every other field is refused with 422
``untranslatable`` naming it — never dropped — unless its value asks for nothing (e.g.
``n: 1``, ``thinking: {"type": "disabled"}``). Same-protocol requests never come here:
they are forwarded as sent.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import ApiError

#: OpenAI fields with no Anthropic counterpart, and the values that ask for nothing
_OPENAI_HARMLESS: dict[str, Any] = {
    "n": lambda v: v in (None, 1),
    "logprobs": lambda v: not v,
    "response_format": lambda v: v is None or v == {"type": "text"},
    "modalities": lambda v: v in (None, ["text"]),
    "parallel_tool_calls": lambda v: True,  # translated below
    "stream_options": lambda v: True,  # read by the gateway (include_usage)
    "store": lambda v: not v,
    "audio": lambda v: v is None,
}
_ANTHROPIC_HARMLESS: dict[str, Any] = {
    "thinking": lambda v: v is None or (isinstance(v, dict) and v.get("type") == "disabled"),
}


def refuse(field: str, why: str) -> ApiError:
    return ApiError(
        422,
        "untranslatable",
        f"{field} cannot be translated faithfully for this gateway's LLM provider ({why}); "
        "remove it or use the provider's own protocol",
        field=field,
    )


def _check_leftovers(body: dict[str, Any], used: set[str], harmless: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in used:
            continue
        if name in harmless and harmless[name](value):
            continue
        raise refuse(name, "the other protocol has no such option")


def _no_cache_control(block: dict[str, Any], field: str) -> None:
    if block.get("cache_control") is not None:
        raise refuse(f"{field}.cache_control", "the OpenAI protocol has no cache breakpoints")


# --- Anthropic client -> OpenAI-compatible upstream ---------------------------------------


def _image_url(source: dict[str, Any], field: str) -> str:
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    if source.get("type") == "url":
        return str(source.get("url", ""))
    raise refuse(f"{field}.source.type", f"image source {source.get('type')!r}")


def _anthropic_text(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for j, block in enumerate(content or []):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise refuse(f"{field}.{j}.type", "only text is translated here")
        _no_cache_control(block, f"{field}.{j}")
        parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def _to_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        field, content = f"messages.{i}.content", msg.get("content")
        if isinstance(content, str):
            out.append({"role": msg["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for j, block in enumerate(content or []):
            where = f"{field}.{j}"
            kind = block.get("type") if isinstance(block, dict) else None
            if not isinstance(block, dict):
                raise refuse(where, "not a content block")
            _no_cache_control(block, where)
            if kind == "text":
                parts.append({"type": "text", "text": str(block.get("text", ""))})
            elif kind == "image" and msg["role"] == "user":
                url = _image_url(block.get("source") or {}, where)
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif kind == "tool_use" and msg["role"] == "assistant":
                arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
                calls.append(
                    {
                        "id": str(block.get("id", "")),
                        "type": "function",
                        "function": {"name": str(block.get("name", "")), "arguments": arguments},
                    }
                )
            elif kind == "tool_result" and msg["role"] == "user":
                if block.get("is_error"):
                    raise refuse(f"{where}.is_error", "OpenAI tool results carry no error flag")
                text = _anthropic_text(block.get("content") or "", f"{where}.content")
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(block.get("tool_use_id", "")),
                        "content": text,
                    }
                )
            else:
                raise refuse(f"{where}.type", f"{kind!r} blocks in a {msg['role']} message")
        out += results  # tool results answer the previous assistant message: they come first
        if msg["role"] == "assistant":
            text = "".join(p["text"] for p in parts)
            item: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                item["tool_calls"] = calls
            out.append(item)
        elif parts:
            out.append({"role": "user", "content": parts})
    return out


def _to_openai_tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise refuse(f"tools.{i}.type", f"server tool {kind!r}")
        _no_cache_control(tool, f"tools.{i}")
        fn: dict[str, Any] = {"name": tool.get("name"), "parameters": tool.get("input_schema", {})}
        if tool.get("description") is not None:
            fn["description"] = tool["description"]
        out.append({"type": "function", "function": fn})
    return out


def _to_openai_tool_choice(choice: Any, body: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
    if kind == "tool":
        body["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif mapped is not None:
        body["tool_choice"] = mapped
    else:
        raise refuse("tool_choice.type", f"tool_choice {kind!r}")
    if choice.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False


def anthropic_to_openai(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic Messages request as a Chat Completions request for ``model``."""
    out: dict[str, Any] = {"model": model, "max_tokens": body["max_tokens"]}
    messages = _to_openai_messages(body["messages"])
    system = body.get("system")
    if system:
        messages.insert(0, {"role": "system", "content": _anthropic_text(system, "system")})
    out["messages"] = messages
    used = {"model", "max_tokens", "messages", "system", "stream", "metadata"}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
        used.add(name)
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    used.add("stop_sequences")
    if body.get("tools"):
        out["tools"] = _to_openai_tools(body["tools"])
    used.add("tools")
    if body.get("tool_choice") is not None:
        _to_openai_tool_choice(body["tool_choice"], out)
    used.add("tool_choice")
    metadata = body.get("metadata") or {}
    for key in metadata:
        if key != "user_id":
            raise refuse(f"metadata.{key}", "unknown metadata")
    if metadata.get("user_id") is not None:
        out["user"] = str(metadata["user_id"])
    if body.get("stream"):
        out["stream"], out["stream_options"] = True, {"include_usage": True}
    _check_leftovers(body, used, _ANTHROPIC_HARMLESS)
    return out


# --- OpenAI client -> Anthropic upstream ---------------------------------------------------


def _data_url_source(url: str, field: str) -> dict[str, Any]:
    if url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if encoding != "base64":
            raise refuse(field, "a data URL that is not base64")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _openai_parts(content: Any, field: str, *, images: bool) -> str | list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return content or ""
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{field}.{j}"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url" and images:
            image = part.get("image_url") or {}
            if image.get("detail") not in (None, "auto"):
                raise refuse(f"{where}.image_url.detail", "Anthropic has no image detail level")
            source = _data_url_source(str(image.get("url", "")), f"{where}.image_url.url")
            blocks.append({"type": "image", "source": source})
        else:
            raise refuse(f"{where}.type", f"content part {kind!r}")
    return blocks


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _to_anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        role, field = msg.get("role"), f"messages.{i}"
        extra = set(msg) - {"role", "content", "name", "tool_calls", "tool_call_id", "refusal"}
        if extra or msg.get("name") is not None:
            bad = sorted(extra)[0] if extra else "name"
            raise refuse(f"{field}.{bad}", "Anthropic messages have no such field")
        if role in ("system", "developer"):
            system.append(str(_openai_text(msg.get("content"), f"{field}.content")))
        elif role == "user":
            out.append(
                {
                    "role": "user",
                    "content": _openai_parts(msg.get("content"), f"{field}.content", images=True),
                }
            )
        elif role == "assistant":
            content = _openai_parts(msg.get("content"), f"{field}.content", images=False)
            calls = msg.get("tool_calls") or []
            if not calls:
                out.append({"role": "assistant", "content": content})
                continue
            blocks = _blocks(content)
            for k, call in enumerate(calls):
                fn = call.get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    raise refuse(f"{field}.tool_calls.{k}.function.arguments", "not JSON") from None
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": fn.get("name"),
                        "input": args,
                    }
                )
            out.append({"role": "assistant", "content": blocks})
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": msg.get("tool_call_id"),
                "content": _openai_parts(msg.get("content"), f"{field}.content", images=False),
            }
            if out and out[-1]["role"] == "user" and _is_results(out[-1]["content"]):
                out[-1]["content"].append(result)
            else:
                out.append({"role": "user", "content": [result]})
        else:
            raise refuse(f"{field}.role", f"role {role!r}")
    return "\n\n".join(system), out


def _openai_text(content: Any, field: str) -> str:
    parts = _openai_parts(content, field, images=False)
    return parts if isinstance(parts, str) else "\n".join(p["text"] for p in parts)


def _is_results(content: Any) -> bool:
    return isinstance(content, list) and all(b.get("type") == "tool_result" for b in content)


def _to_anthropic_tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise refuse(f"tools.{i}.type", "only function tools are translated")
        fn = tool.get("function") or {}
        if fn.get("strict"):
            raise refuse(f"tools.{i}.function.strict", "no strict schema mode")
        item: dict[str, Any] = {
            "name": fn.get("name"),
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description") is not None:
            item["description"] = fn["description"]
        out.append(item)
    return out


def _to_anthropic_tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in ("auto", "required", "none"):
        return {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise refuse("tool_choice", f"tool_choice {choice!r}")


def openai_to_anthropic(
    body: dict[str, Any], model: str, default_max_tokens: int
) -> dict[str, Any]:
    """A Chat Completions request as an Anthropic Messages request for ``model``."""
    system, messages = _to_anthropic_messages(body["messages"])
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = system
    used = {"model", "messages", "max_tokens", "max_completion_tokens", "stream"}
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature > 1:
            raise refuse("temperature", "Anthropic's temperature range is 0-1")
        out["temperature"] = temperature
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    used |= {"temperature", "top_p"}
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    used.add("stop")
    if body.get("tools"):
        out["tools"] = _to_anthropic_tools(body["tools"])
    used.add("tools")
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _to_anthropic_tool_choice(body["tool_choice"])
    used.add("tool_choice")
    if body.get("parallel_tool_calls") is False:
        choice = out.setdefault("tool_choice", {"type": "auto"})
        choice["disable_parallel_tool_use"] = True
    for name in ("user", "safety_identifier"):
        if body.get(name) is not None:
            out["metadata"] = {"user_id": str(body[name])}
        used.add(name)
    if body.get("stream"):
        out["stream"] = True
    _check_leftovers(body, used, _OPENAI_HARMLESS)
    return out
