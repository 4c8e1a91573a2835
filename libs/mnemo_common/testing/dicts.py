"""Small helpers on plain dicts shared by the test fixtures and the deployment checks."""

from __future__ import annotations

from typing import Any


def deep_merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` applied; nested dicts are merged key by key, not replaced."""
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


__all__ = ["deep_merge"]
