"""Every top-level field the installed SDKs accept, generated from their own request types.

Each field, with a plausible value built from its type annotation, is sent once through the
gateway and once straight to the fake upstream by the same SDK: on a same-protocol upstream
the bodies must be identical (the field reached the upstream unchanged); across protocols it
is translated (the documented list) or refused with a 422 naming it — never dropped.
"""

from __future__ import annotations

import types
import typing
from collections import abc
from typing import Any, Literal, Union, get_args, get_origin

import anthropic
import openai
import pytest
from anthropic.types import message_create_params
from openai.types.chat import completion_create_params

ANTHROPIC_FIELDS = typing.get_type_hints(message_create_params.MessageCreateParamsBase)
OPENAI_FIELDS = typing.get_type_hints(completion_create_params.CompletionCreateParamsBase)

# values a type alone cannot make meaningful (the conversation, a tool choice naming a tool)
TOOL = {"name": "f", "input_schema": {"type": "object", "properties": {}}}
O_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
OVERRIDES: dict[str, dict[str, Any]] = {
    "anthropic": {
        "model": "claude-x",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "system": "Be brief.",
        "tools": [TOOL],
        "tool_choice": {"type": "tool", "name": "f"},
        "metadata": {"user_id": "ada"},
    },
    "openai": {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [O_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "functions": [{"name": "f", "parameters": {"type": "object"}}],
        "function_call": {"name": "f"},
        "logit_bias": {"50256": -100},
        "stream_options": {"include_usage": True},
        "metadata": {"k": "v"},
    },
}
# translated across protocols (tests in test_drop_in_translation.py); any other field, or a
# value of one that asks for something, is a 422 naming the field
TRANSLATED = {
    "anthropic": {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "tools",
        "tool_choice",
        "metadata",
    },
    "openai": {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "safety_identifier",
        "stream_options",
        "n",
        "modalities",
        "response_format",
    },
}

HEADER_FIELDS = {
    "user_profile_id": "anthropic-user-profile-id",
    "workspace_id": "anthropic-workspace-id",
}


def plausible(tp: Any, depth: int = 0) -> Any:
    """A value of type ``tp`` (the first arm of a union, required keys of a TypedDict)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return args[0]
    if origin in (Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return plausible(arms[0], depth)
    if origin in (typing.Required, typing.NotRequired, typing.Annotated):
        return plausible(args[0], depth)
    if origin in (list, abc.Iterable, abc.Sequence):
        return [plausible(args[0], depth + 1)]
    if origin is dict:
        return {"k": plausible(args[1], depth + 1)}
    if isinstance(tp, type) and hasattr(tp, "__required_keys__"):
        hints = typing.get_type_hints(tp)
        return {k: plausible(hints[k], depth + 1) for k in sorted(tp.__required_keys__)}
    simple = {str: "x", int: 1, float: 0.5, bool: True, object: "x"}
    if tp in simple:
        return simple[tp]
    raise AssertionError(f"no plausible value for {tp!r}: add one to OVERRIDES")


def value_of(protocol: str, name: str, tp: Any) -> Any:
    return OVERRIDES[protocol][name] if name in OVERRIDES[protocol] else plausible(tp)


def send(protocol: str, base_url: str, name: str, value: Any) -> Any:
    if protocol == "anthropic":
        body = {k: OVERRIDES["anthropic"][k] for k in ("model", "max_tokens", "messages")}
        client = anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0)
        return client.messages.with_raw_response.create(**{**body, name: value})
    body = {k: OVERRIDES["openai"][k] for k in ("model", "messages")}
    if name == "stream_options":
        body["stream"] = True
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
    return client.chat.completions.with_raw_response.create(**{**body, name: value})


def fields(protocol: str) -> list[str]:
    return sorted(ANTHROPIC_FIELDS if protocol == "anthropic" else OPENAI_FIELDS)


@pytest.fixture
def fakes(fake_anthropic, fake_openai):
    return {"anthropic": fake_anthropic, "openai": fake_openai}


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_every_sdk_field_reaches_a_same_protocol_upstream_unchanged(
    gateway_factory, fakes, protocol
):
    fake = fakes[protocol]
    gw = gateway_factory(None, llm_fake=fake, gateway={"pass_client_model": True})
    hints = ANTHROPIC_FIELDS if protocol == "anthropic" else OPENAI_FIELDS
    base = gw.url if protocol == "anthropic" else gw.url + "/v1"
    for name in fields(protocol):
        value = value_of(protocol, name, hints[name])
        send(protocol, fake.url, name, value)
        direct, direct_headers = fake.last_request.body, fake.last_request.headers
        send(protocol, base, name, value)
        assert fake.last_request.body == direct, name
        if name in HEADER_FIELDS:  # the SDK sends these as headers
            header = HEADER_FIELDS[name]
            assert fake.last_request.headers[header] == direct_headers[header] == value
        else:
            assert name in direct, name  # the SDK sent it, and so did the gateway


@pytest.mark.parametrize(
    ("protocol", "upstream"), [("anthropic", "openai"), ("openai", "anthropic")]
)
def test_every_sdk_field_is_translated_or_refused_naming_it(
    gateway_factory, fakes, protocol, upstream
):
    gw = gateway_factory(None, llm_fake=fakes[upstream])
    hints = ANTHROPIC_FIELDS if protocol == "anthropic" else OPENAI_FIELDS
    base = gw.url if protocol == "anthropic" else gw.url + "/v1"
    error = anthropic.APIStatusError if protocol == "anthropic" else openai.APIStatusError
    outcomes = {}
    for name in fields(protocol):
        before = len(fakes[upstream].requests)
        try:
            send(protocol, base, name, value_of(protocol, name, hints[name]))
        except error as exc:
            assert exc.status_code == 422, (name, exc.body)
            err = exc.body.get("error", exc.body)  # the openai SDK unwraps "error"
            assert err["field"].split(".")[0] == name, (name, exc.body)
            assert len(fakes[upstream].requests) == before  # refused before the upstream
            outcomes[name] = "refused"
        else:
            assert name in TRANSLATED[protocol], f"{name} was accepted but is not translated"
            assert len(fakes[upstream].requests) == before + 1
            outcomes[name] = "translated"
    assert "refused" in outcomes.values() and "translated" in outcomes.values()
