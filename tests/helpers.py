"""Helpers test modules share: guards for ../shared data and an in-process ``netml`` runner."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo"


def need(path: Path) -> Path:
    """``path`` under ../shared; fails (never skips) when it is missing."""
    if not path.exists():
        pytest.fail(f"shared data missing: {path}", pytrace=False)
    return path


def demo_data() -> Path:
    """The original's demo folder; fails (never skips) when ../shared is missing."""
    if not (DEMO / "demo.pcap").is_file():
        pytest.fail(f"shared demo data missing at {DEMO} (../shared must sit beside the repo)", pytrace=False)
    return DEMO


def cli(*argv) -> tuple[int, str, str]:
    """Run ``netml`` in-process: (exit code, stdout, stderr)."""
    from netml_core import cli as netml_cli

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = netml_cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()
