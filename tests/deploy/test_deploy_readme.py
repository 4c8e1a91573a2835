"""The chart README's values table is generated from values.yaml's comments and current; it
lists every key; the PVC names its uninstall step deletes are the chart's."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import deploy_support as ds
import yaml

SCRIPT = ds.REPO / "scripts" / "gen_chart_readme.py"
README = ds.CHART / "README.md"


def _script():
    spec = importlib.util.spec_from_file_location("gen_chart_readme", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_values_table_is_current() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr


def test_every_values_key_is_in_the_table_with_its_comment() -> None:
    gen = _script()
    text = (ds.CHART / "values.yaml").read_text()
    docs = gen.descriptions(text)
    readme = README.read_text()

    def walk(values: dict, prefix: str = ""):
        for key, value in values.items():
            path = prefix + key
            yield path
            if isinstance(value, dict) and any(k.startswith(path + ".") for k in docs):
                yield from walk(value, path + ".")

    for path in walk(yaml.safe_load(text)):
        if path in docs or not any(k.startswith(path + ".") for k in docs):
            assert f"`{path}`" in readme, path
    # a described key carries its description into the table
    assert docs["redis.config.extra"].split(". ")[0] in readme
    assert "credentials.offline" in docs


def test_the_table_notices_a_changed_comment(tmp_path) -> None:
    gen = _script()
    changed = (
        (ds.CHART / "values.yaml")
        .read_text()
        .replace("# -- Replicas when autoscaling is off.", "# -- Replica count (changed).", 1)
    )
    assert "Replica count (changed)." in "\n".join(
        gen.rows(yaml.safe_load(changed), gen.descriptions(changed))
    )


def test_uninstall_names_the_charts_pvcs() -> None:
    docs = ds.render({})
    claims = {
        f"{t['metadata']['name']}-{name}-0"
        for name, sts in ds.by_kind(docs, "StatefulSet").items()
        for t in sts["spec"]["volumeClaimTemplates"]
    }
    assert claims == {"data-mnemo-redis-0", "chroma-data-mnemo-chroma-0"}
    assert "kubectl -n mnemo delete pvc data-mnemo-redis-0 chroma-data-mnemo-chroma-0" in (
        README.read_text()
    )
