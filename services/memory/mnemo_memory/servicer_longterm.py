"""gRPC handlers of the long-term RPCs (SearchMemories, List/Add/Update/DeleteMemory).

Mixed into the MemoryServicer; until long-term memory lands they are the generated
base class's UNIMPLEMENTED answers.
"""

from __future__ import annotations


class LongTermRPCs:
    """Long-term RPC handlers (filled in by the long-term memory component)."""
