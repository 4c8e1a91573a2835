"""docs/configuration.md is generated from the settings classes and must stay in sync."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_config_docs.py"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_config_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_config_docs"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_committed_configuration_doc_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT
    )

    assert result.returncode == 0, (
        "docs/configuration.md is stale; run `make config-docs`\n" + result.stderr
    )


def test_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text("# Configuration\n\nold table\n")

    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--output", str(stale)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )

    assert result.returncode == 1
    assert "out of date" in result.stderr and "make config-docs" in result.stderr


@pytest.mark.parametrize(
    ("variable", "default"),
    [
        ("REDIS__HOST", "`localhost`"),
        ("REDIS__PORT", "`6379`"),
        ("REDIS__PASSWORD", "unset"),
        ("REDIS__DB", "`0`"),
        ("MEMORY__THREAD_TTL_HOURS", "`24`"),
        ("MEMORY__USER_TTL_DAYS", "`30`"),
        ("MEMORY__MAX_THREAD_MESSAGES", "`50`"),
        ("REDIS_URL", "unset"),
        ("CHROMADB_URL", "unset"),
        ("ANTHROPIC_API_KEY", "unset"),
        ("LLM__CHAT_MODEL", "`claude-opus-4-8`"),
        ("LLM__EXTRACTION_MODEL", "`claude-haiku-4-5-20251001`"),
        ("LOG__JSON", "`true`"),
    ],
)
def test_seed_variables_are_documented_with_their_defaults(gen, variable, default):
    text, _ = gen.render()

    rows = [line for line in text.splitlines() if line.startswith(f"| `{variable}` |")]
    assert len(rows) == 1, f"{variable} should have exactly one row"
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert cells[2] == default
    assert cells[3] and cells[3] != "_undocumented_"


@pytest.mark.parametrize(
    "variable", ["REDIS__PASSWORD", "REDIS_URL", "ANTHROPIC_API_KEY", "LLM__OPENAI_API_KEY"]
)
def test_secrets_are_marked(gen, variable):
    text, _ = gen.render()

    row = next(line for line in text.splitlines() if line.startswith(f"| `{variable}` |"))
    assert "**secret**" in row


def test_every_shared_setting_has_a_description(gen):
    from mnemo_common.settings import CommonSettings

    shared = {row.env for group in gen.settings_groups(CommonSettings, set()) for row in group.rows}

    assert shared, "no shared settings found"
    assert [name for name in gen.undocumented() if name in shared] == []


def test_missing_service_class_is_reported_not_fatal(gen, monkeypatch):
    monkeypatch.setattr(
        gen, "SERVICES", [("Nowhere", "mnemo_no_such_module.config", "Settings", "nothing")]
    )

    text, notes = gen.render()

    assert "## Shared settings (every process)" in text
    assert (
        len(notes) == 1 and "mnemo_no_such_module.config.Settings could not be imported" in notes[0]
    )
    assert "could not be imported" in text
