"""Fixtures shared by the test files: the shared data folder and an in-process CLI runner."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository; missing data is a failure, never a skip."""
    if not (SHARED / "data").is_dir():
        pytest.fail(f"shared data not found at {SHARED} (it must sit beside the repository)", pytrace=False)
    return SHARED


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli():
    """Run ``netml_core.cli.main(argv)`` in-process; returns exit code, stdout and stderr."""
    from netml_core import cli

    def run(*argv: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main([str(a) for a in argv])
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Install throwaway plugin distributions for one test.

    ``add(entry_name, source)`` writes module ``netml_fake_<entry_name>`` and a real
    ``*.dist-info`` (METADATA + entry_points.txt) into a folder put first on ``sys.path`` and
    ``PYTHONPATH``, so importlib.metadata finds it exactly like a pip-installed plugin, in this
    process and in subprocesses. The process-wide registry and CLI commands are restored afterwards.
    """
    import importlib
    import os
    import sys
    import textwrap

    from netml_core import cli, registry

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    saved_commands = dict(cli.cli.commands)
    modules: list[str] = []

    def add(entry_name: str, source: str, *, dist: str | None = None, version: str = "1.0",
            extra_modules: dict[str, str] | None = None) -> str:
        module = f"netml_fake_{entry_name}"
        dist = dist or f"netml-fake-{entry_name.replace('_', '-')}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        for name, text in (extra_modules or {}).items():
            (site / f"{name}.py").write_text(textwrap.dedent(text))
            modules.append(name)
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[netml.plugins]\n{entry_name} = {module}\n")
        modules.append(module)
        importlib.invalidate_caches()
        registry.reset_registry()
        return module

    registry.reset_registry()
    yield add
    for name in modules:
        sys.modules.pop(name, None)
    cli.cli.commands.clear()
    cli.cli.commands.update(saved_commands)
    registry.reset_registry()
