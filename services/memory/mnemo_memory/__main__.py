"""``mnemo-memory serve`` (gRPC server), ``mnemo-memory worker`` (extraction worker) and
``mnemo-memory purge-chroma --path DIR`` (purge a stopped Chroma server's directory of
deleted records' bytes)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from mnemo_common.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="mnemo-memory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gRPC memory service")
    sub.add_parser("worker", help="run the background job worker")
    purge = sub.add_parser(
        "purge-chroma", help="purge deleted records' bytes from a STOPPED Chroma's directory"
    )
    purge.add_argument("--path", required=True, help="the Chroma server's persist directory")
    purge.add_argument(
        "--collection", default="mnemo_memories", help="collection name (default %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.command == "purge-chroma":
        from mnemo_memory.stores.vector.chroma_purge import purge_chroma_file

        print(purge_chroma_file(args.path, args.collection))  # CLI output, not a log line
        return 0
    from mnemo_memory.config import get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"mnemo-memory: {exc}", file=sys.stderr)  # CLI output, not a log line
        return 2
    if args.command == "serve":
        from mnemo_memory.server import serve

        code = asyncio.run(serve(settings))
    else:
        from mnemo_memory.worker.main import run

        code = int(run(settings) or 0)
    from mnemo_memory.embed import load_in_progress

    if load_in_progress():
        # stopped while the model was still loading: the drain is done, but interpreter
        # shutdown under torch's loading thread would abort (exit 134); leave now
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
