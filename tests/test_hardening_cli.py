"""Issue 12, options and outputs: full disks, signals and ``--debug`` after the subcommand.

Real processes where the behaviour is about a process (file descriptors, signals, exit status);
in-process otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_hardening_model_file import make_model

from netml_core.pcapwriter import write_pcap_columns

NETML = [sys.executable, "-c", "from netml_core.cli import run; run()"]
FULL_DISK = "netml: error: cannot write output: no space left on device"


def netml(*args, stdout=subprocess.PIPE, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*NETML, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    """200 UDP flows of 3 packets (enough for learn), 1 s apart."""
    path = tmp_path_factory.mktemp("cap") / "c.pcap"
    n = 600
    i = np.arange(n)
    flow = i % 200
    write_pcap_columns(path, 1_700_000_000 * 10**9 + i * 10**9 // 50, 0x0A000000 + flow, np.full(n, 0x0A0000FE),
                       20000 + flow, np.full(n, 53), np.full(n, 17), np.zeros(n), np.full(n, 64),
                       80 + (i * 7) % 60)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("model") / "m.netml", "gmm")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_stdout_on_a_full_disk_is_one_line_exit_2(tmp_path, capture, model):
    """classify, inspect, plugins list, --help and learn raised OSError (internal error)."""
    commands = [
        ["--help"], ["--version"], ["plugins", "list"], ["inspect", capture],
        ["classify", "-m", model, "-p", capture, "--report-all"],
        ["learn", "-p", capture, "-o", tmp_path / "new.netml"],
    ]
    for args in commands:
        with open("/dev/full", "w") as full:
            res = netml(*args, stdout=full)
        lines = res.stderr.strip().splitlines()
        assert (res.returncode, lines[-1:]) == (2, [FULL_DISK]), (args, res.stderr)
        assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, args


def test_a_failing_stdout_in_process_is_the_same_line(run_cli, monkeypatch):
    import errno
    import io

    class Full(io.StringIO):
        def write(self, s):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from netml_core import cli

    err = io.StringIO()
    monkeypatch.setattr(sys, "stdout", Full())
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["plugins", "list"]) == 2
    assert err.getvalue() == FULL_DISK + "\n"


WRITER = '''
    import os, signal, time
    import click
    from netml_core import hookimpl
    from netml_core.atomic import atomic_output

    @hookimpl
    def register_commands(cli):
        @cli.command("slowwrite")
        @click.argument("path")
        @click.argument("signame")
        @click.argument("when")
        def slowwrite(path, signame, when):
            """Write PATH atomically and get SIGNAME during (or after) the write."""
            sig = getattr(signal, signame)
            with atomic_output(path, what="model file") as fh:
                fh.write(b"x" * 1000)
                if when == "during":
                    os.kill(os.getpid(), sig)
                    time.sleep(5)  # the handler raises before this ends
                fh.write(b"y")
            if when == "after":
                os.kill(os.getpid(), sig)
                time.sleep(5)
            click.echo("written")
'''


@pytest.mark.parametrize("signame, status, message", [("SIGTERM", 143, "netml: terminated"),
                                                      ("SIGINT", 130, "netml: interrupted")])
def test_a_signal_during_the_model_write_leaves_no_temporary_file(fake_plugins, tmp_path, signame, status, message):
    """SIGTERM left .m.netml.XXXX.tmp beside -o (16 of 16): now it is treated like Ctrl-C."""
    fake_plugins("writer", WRITER)
    for when in ("during", "after"):
        out = tmp_path / when
        out.mkdir()
        res = netml("slowwrite", out / "m.netml", signame, when, timeout=30)
        assert (res.returncode, res.stderr) == (status, message + "\n"), (when, res.stderr)
        left = sorted(p.name for p in out.iterdir())
        assert left == ([] if when == "during" else ["m.netml"]), (when, left)


def test_a_signal_after_the_command_is_done_changes_nothing():
    """A SIGINT just after the work exited -2 with no message; once main returns, signals are ignored."""
    code = ("import os, signal\nfrom netml_core.cli import main\nrc = main(['--version'], handle_signals=True)\n"
            "os.kill(os.getpid(), signal.SIGINT)\nos.kill(os.getpid(), signal.SIGTERM)\nprint('still here', rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.endswith("still here 0\n"), res


def test_debug_after_the_subcommand(run_cli, tmp_path):
    """``netml learn ... --debug`` was a click usage error; it is accepted there now."""
    res = run_cli("inspect", tmp_path / "missing.pcap", "--debug")
    assert res.exit_code == 2 and "Traceback" in res.stderr and res.stderr.rstrip().endswith("no such file")
    res = run_cli("learn", "-p", tmp_path / "missing.pcap", "-o", tmp_path / "m.netml", "--debug")
    assert res.exit_code == 2 and "Traceback" in res.stderr and "no such option" not in res.stderr
    res = run_cli("inspect", tmp_path / "missing.pcap")
    assert res.exit_code == 2 and "Traceback" not in res.stderr
    from netml_core.cli import _hoist_debug

    assert _hoist_debug(["learn", "-p", "x", "--debug"]) == ["--debug", "learn", "-p", "x"]
    assert _hoist_debug(["inspect", "--", "--debug"]) == ["inspect", "--", "--debug"]  # a file named --debug
