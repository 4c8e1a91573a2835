"""Limits of the memory service's contract that the gateway checks too, so a client hears
about them as a 422 before the LLM is called instead of a turn that silently fails to store."""

from __future__ import annotations

#: entries of a CommitTurn's metadata map
MAX_METADATA_ENTRIES = 32
#: bytes (UTF-8) of one metadata value
MAX_METADATA_VALUE_BYTES = 1024

__all__ = ["MAX_METADATA_ENTRIES", "MAX_METADATA_VALUE_BYTES"]
