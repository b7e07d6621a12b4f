"""Packaging promises checked from the files themselves.

Each plugin distribution declares exactly what it imports (plus ``netml``); the README, tox.ini and
.ci/run agree on the one test command; every ``NETML_*`` variable the code reads is documented.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p for p in (REPO / "plugins").glob("*") if (p / "pyproject.toml").is_file())
EXAMPLE_DIRS = sorted(p for p in (REPO / "examples" / "plugins").glob("*") if (p / "pyproject.toml").is_file())
README = (REPO / "README.md").read_text(encoding="utf-8")

#: import name -> distribution name, where they differ or the module is not installed here
KNOWN_DISTS = {"netml_core": "netml", "netml": "netml", "sklearn": "scikit-learn", "yaml": "pyyaml"}


def _dist_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_distributions(package_dir: Path, own: str) -> set[str]:
    """Distributions providing the top-level modules a package imports (stdlib and itself excluded)."""
    mods: set[str] = set()
    for py in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    mods -= set(sys.stdlib_module_names) | {own, "__future__"}
    installed = metadata.packages_distributions()
    out = set()
    for m in mods:
        dist = KNOWN_DISTS.get(m) or (installed.get(m) or [m])[0]
        out.add(_dist_name(dist))
    return out


@pytest.mark.parametrize("folder", PLUGIN_DIRS + EXAMPLE_DIRS, ids=lambda p: p.name)
def test_plugin_declares_exactly_what_it_imports(folder):
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    (package,) = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    declared = {_dist_name(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    assert "netml" in declared
    assert imported_distributions(folder / package, package) == declared


@pytest.mark.parametrize("folder", PLUGIN_DIRS + EXAMPLE_DIRS, ids=lambda p: p.name)
def test_entry_module_imports_nothing_heavy(folder):
    """The hookimpl module is imported by `netml plugins list`: only netml_core, factories as strings."""
    (package,) = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    tree = ast.parse((folder / package / "__init__.py").read_text(encoding="utf-8"))
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert imported <= {"netml_core", "__future__"}, f"{package}/__init__.py imports {imported}"


def test_one_test_command_everywhere():
    tests_section = README.split("\n## Tests", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", tests_section, re.S)
    assert blocks and blocks[0].strip() == "tox"
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in ci
    assert ci[-1] == "tox"
    assert (REPO / ".ci" / "run").stat().st_mode & 0o111, ".ci/run must be executable"


def test_tox_installs_pinned_torch_first_then_core_and_every_plugin():
    tox = (REPO / "tox.ini").read_text()
    deps = re.search(r"^deps\s*=\s*\n((?:\s+.+\n)+)", tox, re.M)[1].split()
    assert deps[0] == "torch==2.13.0"
    assert re.search(r"bash -c 'python -m pip install \./(\[[a-z,]+\])? \./plugins/\*/'", tox)
    assert re.search(r"^env_list\s*=\s*py311\s*$", tox, re.M)


def test_readme_quick_start_is_two_commands():
    quick = README.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", quick, re.S)]
    assert blocks[0] == "pip install torch==2.13.0 ./ ./plugins/*/"
    assert blocks[1].startswith("netml demo ") and " && netml learn " in blocks[1]
    assert all("\n" not in b for b in blocks[:2])


def test_every_environment_variable_is_documented():
    used = set()
    for py in [*(REPO / "netml_core").rglob("*.py"), *(REPO / "netml").rglob("*.py")]:
        used |= set(re.findall(r"\bNETML_[A-Z_]+\b", py.read_text(encoding="utf-8")))
    assert {"NETML_LOAD_PLUGINS", "NETML_DISABLE_PLUGINS", "NETML_TRACE_PLUGINS", "NETML_DEBUG"} <= used
    env_section = README.split("\n## Environment variables", 1)[1].split("\n## ", 1)[0]
    assert not [v for v in sorted(used) if f"`{v}`" not in env_section]


def test_readme_plugin_walkthrough_matches_the_example():
    example = REPO / "examples" / "plugins" / "netml-detector-zscore"
    section = README.split("\n## Writing a plugin", 1)[1].split("\n## ", 1)[0]
    toml_block, py_block = re.findall(r"```(?:toml|python)\n(.*?)```", section, re.S)[:2]
    shown = tomllib.loads(toml_block)
    real = tomllib.loads((example / "pyproject.toml").read_text())
    for key in ("name", "version", "dependencies", "entry-points"):
        assert shown["project"][key] == real["project"][key], key
    assert shown["tool"] == real["tool"]
    def squeeze(text: str) -> str:  # blank-line runs differ between a README and PEP 8
        return re.sub(r"\n\s*\n+", "\n\n", text.strip())

    init = (example / "netml_detector_zscore" / "__init__.py").read_text()
    assert squeeze(py_block) in squeeze(init)
