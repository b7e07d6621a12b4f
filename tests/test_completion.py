"""Shell completion of option values: component names from the registry (no component imported),
captures and model files as files, as bash receives them from ``_NETML_COMPLETE=bash_complete``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.shell_completion import ShellComplete

from netml_core.cli import cli
from netml_core.registry import get_registry


def complete(*words: str) -> list[tuple[str, str]]:
    """(type, value) of each completion of the last word after ``netml words[:-1]``."""
    comp = ShellComplete(cli, {}, "netml", "_NETML_COMPLETE")
    return [(item.type, item.value) for item in comp.get_completions(list(words[:-1]), words[-1])]


def test_algorithm_completes_the_installed_detectors():
    detectors = get_registry().names("detector")
    assert complete("learn", "--algorithm", "") == [("plain", n) for n in detectors]
    assert complete("learn", "--algorithm", "k") == [("plain", "kde"), ("plain", "knn")]
    assert complete("learn", "train", "--algorithm", "pyod_ec") == [("plain", "pyod_ecod")]
    assert complete("learn", "--algorithm", "nothing") == []


def test_feature_reader_and_splitter_complete_from_the_registry():
    assert ("plain", "flowstats") in complete("learn", "--feature", "f")
    assert complete("learn", "extract", "-f", "samp") == [("plain", "samp_num"), ("plain", "samp_size")]
    assert complete("learn", "--reader", "") == [("plain", "dpkt"), ("plain", "native"), ("plain", "scapy")]
    assert complete("inspect", "--reader", "n") == [("plain", "native")]
    assert complete("learn", "--splitter", "") == [("plain", "meter"), ("plain", "netml")]
    assert complete("evaluate", "--splitter", "m") == [("plain", "meter")]


def test_evaluate_comma_lists_complete_their_last_item():
    assert complete("evaluate", "--algorithm", "gmm,kn") == [("plain", "gmm,knn")]
    assert complete("evaluate", "--feature", "flowstats,st") == [("plain", "flowstats,stats")]
    assert complete("evaluate", "--reader", "d") == [("plain", "dpkt")]


def test_captures_and_models_complete_as_files():
    for words in (("learn", "-p", "dem"), ("learn", "--pcap-normal", ""), ("learn", "--pcap-abnormal", "x"),
                  ("learn", "-o", "out/"), ("learn", "train", "--model", "m"), ("classify", "-m", "mod"),
                  ("classify", "--pcap", "d")):
        assert complete(*words) == [("file", words[-1])], words
    # a --feature value that is no representation but a path: learn's features file, as in netml 0.x
    assert complete("learn", "--feature", "out/IAT-features.dat") == [("file", "out/IAT-features.dat")]


def test_summaries_travel_with_the_names():
    comp = ShellComplete(cli, {}, "netml", "_NETML_COMPLETE")
    [item] = comp.get_completions(["learn", "--algorithm"], "gmm")
    assert item.help == get_registry().components["detector"]["gmm"].summary


def test_bash_completion_imports_no_component(tmp_path):
    probe = (
        "import sys\n"
        "from netml_core.cli import main\n"
        "try:\n    main([])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'sklearn', 'pyod', 'scapy', 'dpkt', 'netml_models_gmm.gmm') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "_NETML_COMPLETE": "bash_complete", "COMP_WORDS": "netml learn --algorithm pyod_i",
           "COMP_CWORD": "3"}
    env.pop("NETML_LOAD_PLUGINS", None)
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:2] == ["plain,pyod_iforest", "plain,pyod_inne"]
    assert lines[-1] == "HEAVY []"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_readme_scripts_are_printed(shell):
    env = {**os.environ, "_NETML_COMPLETE": f"{shell}_source"}
    res = subprocess.run([sys.executable, "-m", "netml_core.cli"], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0 and "_NETML_COMPLETE" in res.stdout
