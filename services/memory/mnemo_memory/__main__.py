"""``mnemo-memory serve`` (gRPC server) and ``mnemo-memory worker`` (extraction worker)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mnemo_common.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="mnemo-memory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gRPC memory service")
    sub.add_parser("worker", help="run the background job worker")
    args = parser.parse_args(argv)
    from mnemo_memory.config import get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"mnemo-memory: {exc}", file=sys.stderr)  # CLI output, not a log line
        return 2
    if args.command == "serve":
        from mnemo_memory.server import serve

        return asyncio.run(serve(settings))
    from mnemo_memory.worker.main import run

    return int(run(settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
