"""Generate the Python gRPC package from proto/ (one copy, committed, in libs/mnemo/).

python scripts/gen_proto.py            # regenerate in place
python scripts/gen_proto.py --check    # exit 1 when the committed code has drifted
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

# mypy-protobuf's plugins (a dev dependency): typed .pyi for the messages and the gRPC stubs
_BIN = Path(sys.executable).parent

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "libs"
PACKAGE = Path("mnemo/memory/v1")
INIT_TEXT = '"""Generated from proto/ by scripts/gen_proto.py; do not edit."""\n'


def _plugin(name: str) -> str:
    found = shutil.which(name, path=str(_BIN)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev dependencies (mypy-protobuf)")
    return found


def generate(out: Path) -> list[Path]:
    protos = sorted(p.relative_to(PROTO_DIR) for p in PROTO_DIR.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for part in (Path("mnemo"), Path("mnemo/memory"), PACKAGE):
        init = out / part / "__init__.py"
        init.write_text(INIT_TEXT)
    for path in sorted((out / "mnemo").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            written.append(path.relative_to(out))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code drifted")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(OUT_DIR / "mnemo", ignore_errors=True)
        for rel in generate(OUT_DIR):
            print(f"wrote libs/{rel}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        committed = (
            sorted(
                p.relative_to(OUT_DIR)
                for p in (OUT_DIR / "mnemo").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            )
            if (OUT_DIR / "mnemo").exists()
            else []
        )
        drift = sorted(set(fresh) ^ set(committed))
        drift += [
            rel
            for rel in fresh
            if rel in committed and not filecmp.cmp(Path(tmp) / rel, OUT_DIR / rel, shallow=False)
        ]
        if drift:
            print("generated gRPC code is out of date with proto/ (run `make proto`):")
            for rel in drift:
                print(f"  libs/{rel}")
            return 1
    print("generated gRPC code matches proto/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
