"""The ``netml`` command shell: version, help with the designed options, one-line errors, completion."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netml_core import __version__

NETML = shutil.which("netml", path=str(Path(sys.executable).parent)) or shutil.which("netml")

LEARN_OPTIONS = [
    "--pcap", "-p", "--label", "-l", "--pcap-normal", "--pcap-abnormal", "--output", "-o",
    "--algorithm", "--param", "--help-algorithm", "--help-param", "--test-size", "--random-state",
    "--q-interval", "--flow-pkts-threshold", "--reader", "--feature", "-v",
]
CLASSIFY_OPTIONS = ["--pcap", "-p", "--model", "-m", "--output", "-o"]


def options_in(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", help_text))


def console(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    assert NETML, "the netml console script is not installed next to this Python"
    return subprocess.run([NETML, *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_version(run_cli):
    res = run_cli("--version")
    assert (res.exit_code, res.stdout) == (0, f"netml, version {__version__}\n")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", __version__)


def test_help_lists_the_commands(run_cli):
    res = run_cli("--help")
    assert res.exit_code == 0 and res.stderr == ""
    commands = set(re.findall(r"^  ([a-z][a-z-]*)\s", res.stdout.split("Commands:", 1)[1], re.M))
    assert {"plugins", "learn", "classify"} <= commands


@pytest.mark.parametrize("command, expected", [("learn", LEARN_OPTIONS), ("classify", CLASSIFY_OPTIONS)])
def test_command_help_has_the_designed_options(run_cli, command, expected):
    res = run_cli(command, "--help")
    assert res.exit_code == 0, res.stderr
    missing = [o for o in expected if o not in options_in(res.stdout)]
    assert not missing, f"netml {command} --help lacks {missing}"


def test_unknown_command_is_one_line(run_cli):
    res = run_cli("lern")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("netml: error: No such command 'lern'")


def test_unknown_option_is_one_line(run_cli):
    res = run_cli("plugins", "list", "--jsn")
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("netml plugins list: error: No such option")
    assert "--jsn" in res.stderr and "--json" in res.stderr  # names the typo and suggests the option
    assert res.stderr.endswith("(see 'netml plugins list --help')\n")


@pytest.mark.parametrize("how", [["--debug"], "NETML_DEBUG"])
def test_debug_shows_the_traceback(how):
    argv = [*how, "lern"] if isinstance(how, list) else ["lern"]
    res = console(*argv, env={"NETML_DEBUG": "1"} if how == "NETML_DEBUG" else {"NETML_DEBUG": ""})
    assert res.returncode == 2
    assert "Traceback (most recent call last)" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1].startswith("netml: error: No such command 'lern'")


def test_console_script_runs_the_same_main():
    res = console("--version")
    assert (res.returncode, res.stdout, res.stderr) == (0, f"netml, version {__version__}\n", "")


def test_bash_completion_script_completes_subcommands():
    script = console(env={"_NETML_COMPLETE": "bash_source"})
    assert script.returncode == 0
    assert "complete -o nosort -F _netml_completion netml" in script.stdout
    # source it in a real bash and ask for completions, as the shell would on <TAB>
    bash = shutil.which("bash")
    assert bash, "bash is needed for the completion test"
    probe = (
        f'netml() {{ "{NETML}" "$@"; }}; export -f netml; '
        'eval "$(_NETML_COMPLETE=bash_source netml)"; '
        'COMP_WORDS=(netml plugins l); COMP_CWORD=2; _netml_completion netml; echo "${COMPREPLY[@]}"; '
        'COMPREPLY=(); COMP_WORDS=(netml p); COMP_CWORD=1; _netml_completion netml; echo "${COMPREPLY[@]}"'
    )
    res = subprocess.run([bash, "--norc", "-c", probe], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": f"{Path(NETML).parent}{os.pathsep}{os.environ['PATH']}"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["list", "plugins"]


@pytest.mark.parametrize("shell, marker", [("zsh", "#compdef netml"), ("fish", "complete --no-files --command netml")])
def test_other_shells_get_a_completion_script(shell, marker):
    res = console(env={"_NETML_COMPLETE": f"{shell}_source"})
    assert res.returncode == 0 and marker in res.stdout
