"""Dependencies point one way: libs ← services ← tests/bench/scripts.

The shared library is installed into both service images; a module of it importing a
service would make the library depend on what depends on it (and break the image that
lacks that service)."""

from __future__ import annotations

import ast
from pathlib import Path

LIBS = Path(__file__).resolve().parents[1]
SERVICES = ("mnemo_memory", "mnemo_gateway")


def service_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a service package in ``source``, at any depth
    (module level, inside functions, under TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[0] in SERVICES]
    return found


def test_the_scan_finds_every_form_of_import() -> None:
    source = (
        "import mnemo_memory\n"
        "def f():\n    from mnemo_gateway.main import create_app\n"
        "import os, mnemo_memory.config as c\n"
        "from mnemo_common import ids\n"
    )
    assert sorted(service_imports(source)) == [
        (1, "mnemo_memory"),
        (3, "mnemo_gateway.main"),
        (4, "mnemo_memory.config"),
    ]


def test_no_module_under_libs_imports_a_service() -> None:
    files = [p for p in LIBS.rglob("*.py") if "tests" not in p.relative_to(LIBS).parts]
    assert len(files) > 20  # the scan really read the library
    offenders = [
        f"{path.relative_to(LIBS)}:{line} imports {module}"
        for path in files
        for line, module in service_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
