"""Each row of docs/api.md's translation table, on the pure translation functions."""

from __future__ import annotations

import pytest
from mnemo_gateway.chat.translate import anthropic_to_openai, openai_to_anthropic
from mnemo_gateway.core.errors import ApiError

USER = [{"role": "user", "content": "q"}]


def test_anthropic_to_openai_rows():
    out = anthropic_to_openai(
        {
            "model": "c",
            "max_tokens": 9,
            "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}
                    ],
                }
            ],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
            "temperature": 0.2,
            "top_p": 0.9,
            "metadata": {"user_id": "ada"},
        },
        "gpt",
    )
    assert out == {
        "model": "gpt",
        "max_tokens": 9,
        "messages": [
            {"role": "system", "content": "a\nb"},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/i.png"}}],
            },
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "ada",
    }


def test_openai_to_anthropic_rows():
    out = openai_to_anthropic(
        {
            "model": "g",
            "messages": [
                {"role": "system", "content": "a"},
                {"role": "developer", "content": "b"},
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/i.png"}}],
                },
            ],
            "parallel_tool_calls": False,
            "temperature": 0.5,
            "top_p": 0.8,
            "safety_identifier": "h-123",
            "stop": ["X", "Y"],
        },
        "claude",
        77,
    )
    assert out == {
        "model": "claude",
        "max_tokens": 77,  # LLM__MAX_TOKENS when the client names none
        "system": "a\n\nb",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}],
            }
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "temperature": 0.5,
        "top_p": 0.8,
        "metadata": {"user_id": "h-123"},
        "stop_sequences": ["X", "Y"],
    }
    body = {"model": "g", "messages": USER, "max_completion_tokens": 5, "max_tokens": 6}
    assert openai_to_anthropic(body, "c", 77)["max_tokens"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": True}],
                    }
                ]
            },
            "messages.0.content.0.is_error",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages.0.content.0.type",
        ),
        ({"top_k": 5}, "top_k"),
    ],
)
def test_anthropic_fields_without_counterpart_name_the_field(body, field):
    with pytest.raises(ApiError) as info:
        anthropic_to_openai({"model": "c", "max_tokens": 9, "messages": USER, **body}, "gpt")
    assert (info.value.status, info.value.code, info.value.field) == (422, "untranslatable", field)
