"""Which memory-wire address belongs to which test memory service (ADR 0032).

Test memory services (in-process and subprocess) bind their wire on a free port and
``announce(grpc_address, wire_address)`` here; a test gateway started against a gRPC
address then uses that service's wire (``wire_address_for``), as a deployment's gateway
does — so every gateway test exercises the transport the product uses, and a gateway
started against an address no test service announced talks gRPC only.
"""

from __future__ import annotations

_WIRES: dict[str, str] = {}


def announce(grpc_address: str, wire_address: str) -> None:
    _WIRES[grpc_address] = wire_address


def withdraw(grpc_address: str) -> None:
    _WIRES.pop(grpc_address, None)


def wire_address_for(grpc_address: str | None) -> str:
    """The wire announced for ``grpc_address``; "" (gRPC only) when none was."""
    return _WIRES.get(grpc_address or "", "")
