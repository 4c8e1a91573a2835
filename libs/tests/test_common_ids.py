"""Id validation: anything that could escape a Redis key namespace is refused by name."""

from __future__ import annotations

import pytest
from mnemo_common.ids import InvalidIdError, is_valid_id, new_id, validate_id


@pytest.mark.parametrize(
    "value",
    [
        "alice",
        "user-42",
        "thread_2024.11.05",
        "A" * 128,
        "550e8400-e29b-41d4-a716-446655440000",
        "ada.lovelace+mnemo@example.com",  # apps name users by e-mail address
    ],
)
def test_safe_ids_are_accepted(value):
    assert validate_id(value, "user_id") == value
    assert is_valid_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "alice:history",  # would reach into another key
        "user*",  # glob in SCAN/KEYS patterns
        "two words",
        "tab\there",
        "new\nline",
        "nul\x00byte",
        "bell\x07",
        "ünïcode",
        "{tag}",  # would change the Redis Cluster hash slot
        "a/b",
    ],
)
def test_unsafe_ids_are_refused_with_the_field_name(value):
    with pytest.raises(InvalidIdError) as caught:
        validate_id(value, "thread_id")

    assert caught.value.field == "thread_id"
    assert str(caught.value).startswith("thread_id: ")
    assert not is_valid_id(value)


def test_over_long_id_is_refused_with_a_specific_reason():
    with pytest.raises(InvalidIdError) as caught:
        validate_id("a" * 129, "user_id")

    assert str(caught.value) == "user_id: is longer than 128 characters"


@pytest.mark.parametrize("value", [None, ""])
def test_missing_id_is_required(value):
    with pytest.raises(InvalidIdError) as caught:
        validate_id(value, "user_id")

    assert str(caught.value) == "user_id: is required"


def test_new_ids_are_valid_and_unique():
    ids = {new_id("t-") for _ in range(100)}

    assert len(ids) == 100
    assert all(validate_id(i, "thread_id") for i in ids)
