"""``netml plugins list``: table and JSON, every built-in listed ok, and no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p for p in (REPO / "plugins").glob("*") if (p / "pyproject.toml").is_file())
REQUIRED_BUILTINS = {
    "readers_scapy", "readers_dpkt", "features_iat", "features_size", "features_stats",
    "features_samp", "models_ocsvm", "models_kde", "models_iforest", "models_ae", "models_gmm",
    "models_pca",
}
HEAVY = ("torch", "scapy", "sklearn", "skops", "safetensors", "dpkt", "pandas", "matplotlib")


def builtin_entry_points() -> dict[str, str]:
    """entry-point name -> distribution name, from each plugin folder's pyproject.toml."""
    out = {}
    for folder in PLUGIN_DIRS:
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        for ep in project["entry-points"]["netml.plugins"]:
            out[ep] = project["name"]
    return out


def test_every_required_builtin_has_a_plugin_folder():
    assert REQUIRED_BUILTINS <= {p.name for p in PLUGIN_DIRS}


@pytest.mark.parametrize("folder", PLUGIN_DIRS, ids=lambda p: p.name)
def test_builtin_plugin_folder_follows_the_packaging_contract(folder):
    data = tomllib.loads((folder / "pyproject.toml").read_text())
    project = data["project"]
    kind, name = folder.name.split("_", 1)
    package = f"netml_{folder.name}"
    assert project["name"] == f"netml-{kind}-{name.replace('_', '-')}"
    assert project["version"] == "1.0.0"
    assert data["build-system"]["build-backend"] == "setuptools.build_meta"
    assert any(d.replace(" ", "").startswith("netml>=1.0") for d in project["dependencies"])
    assert project["entry-points"]["netml.plugins"] == {folder.name: package}
    assert data["tool"]["setuptools"]["packages"] == [package]
    assert (folder / package / "__init__.py").is_file()


def test_plugins_list_json_names_every_component(run_cli):
    res = run_cli("plugins", "list", "--json")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    by_name = {r["plugin"]: r for r in rows}
    assert set(rows[0]) == {"plugin", "distribution", "version", "status", "error", "provides"}
    core = by_name["core"]
    assert (core["distribution"], core["status"], core["error"]) == ("netml", "ok", "")
    assert {(c["kind"], c["name"]) for c in core["provides"]} >= {("reader", "native"), ("flow_splitter", "netml")}
    for row in rows:
        for comp in row["provides"]:
            assert comp["kind"] in {"reader", "flow_splitter", "feature", "detector"} and comp["name"]


def test_plugins_list_shows_every_builtin_ok(run_cli):
    rows = {r["plugin"]: r for r in json.loads(run_cli("plugins", "list", "--json").stdout)}
    missing = [ep for ep in builtin_entry_points() if ep not in rows]
    assert not missing, f"built-in plugins not installed: {missing} (pip install ./plugins/*/)"
    for ep, dist in builtin_entry_points().items():
        row = rows[ep]
        assert (row["distribution"], row["version"], row["status"], row["error"]) == (dist, "1.0.0", "ok", "")
        assert row["provides"], f"{ep} registers nothing"


def test_plugins_list_table(run_cli):
    res = run_cli("plugins", "list")
    assert res.exit_code == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES"]
    core = next(line for line in lines if line.startswith("core "))
    assert core.split()[:4] == ["core", "netml", "1.0.0", "ok"]
    assert "reader:native" in core and "flow_splitter:netml" in core
    assert len(lines) == 1 + len(json.loads(run_cli("plugins", "list", "--json").stdout))


def test_plugins_list_reports_broken_and_clashing_plugins_and_exits_zero(fake_plugins, run_cli):
    fake_plugins("broken", "import netml_no_such_module\n")
    fake_plugins("dup", """
        from netml_core import hookimpl

        @hookimpl
        def register_readers(register):
            register("native", "x:Y")
    """)
    res = run_cli("plugins", "list")
    assert res.exit_code == 0
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[1:]}
    assert rows["broken"][1:4] == ["netml-fake-broken", "1.0", "failed"]
    assert rows["dup"][1:4] == ["netml-fake-dup", "1.0", "conflict"]
    assert rows["core"][3] == "ok"
    assert res.stderr.splitlines() == [
        "broken: failed: import failed: ModuleNotFoundError: No module named 'netml_no_such_module'",
        "dup: conflict: duplicate reader name 'native': registered by plugin 'core' and by plugin 'dup'",
    ]


@pytest.mark.parametrize("argv", [["plugins", "list"], ["plugins", "list", "--json"]])
def test_plugins_list_imports_no_heavy_library(argv):
    code = (
        "import io, json, sys, contextlib\n"
        "from netml_core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    rc = main({argv!r})\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'lines': len(out.getvalue().splitlines())}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["rc"] == 0 and report["lines"] >= 2
    assert report["heavy"] == []


def test_unknown_algorithm_lists_the_installed_ones_and_exits_nonzero(run_cli, shared_dir, tmp_path):
    from netml_core.registry import get_registry

    demo = shared_dir / "data" / "netml-demo"
    model = tmp_path / "model.netml"
    res = run_cli("learn", "--pcap", demo / "demo.pcap", "--label", demo / "demo.csv",
                  "--algorithm", "ocsvn", "-o", model)
    assert res.exit_code != 0 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    installed = ", ".join(get_registry().names("detector"))
    assert res.stderr == f"netml: error: unknown algorithm 'ocsvn'; installed: {installed}\n"
    assert {"ocsvm", "kde", "iforest", "ae", "gmm", "pca"} <= set(get_registry().names("detector"))
    assert not model.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("env, expect", [
    ({"NETML_LOAD_PLUGINS": "core,models_ocsvm"}, ["core", "models_ocsvm"]),
    ({"NETML_DISABLE_PLUGINS": "models_ocsvm,readers_scapy"}, None),
])
def test_plugin_environment_variables_reach_the_cli(env, expect):
    import os

    res = subprocess.run([sys.executable, "-c", "from netml_core.cli import run; run()", "plugins", "list", "--json"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    names = sorted(r["plugin"] for r in rows if r["status"] != "disabled")
    # the plugins left out are listed as disabled (issue 12), providing nothing
    assert all(not r["provides"] for r in rows if r["status"] == "disabled")
    if expect is not None:
        assert names == expect
    else:
        assert "core" in names and "models_ocsvm" not in names and "readers_scapy" not in names
        assert set(builtin_entry_points()) - {"models_ocsvm", "readers_scapy"} <= set(names)
