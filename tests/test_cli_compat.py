"""The original netml README's CLI commands, run verbatim through a shell in a scratch folder.

``data/demo.pcap``, ``data/demo.csv``, ``traffic.pcap`` and ``unclassified.pcap`` are links to the
shared demo captures (nothing is copied into the repository).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO = SHARED / "data" / "netml-demo"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    if not (DEMO / "demo.pcap").is_file():
        pytest.fail(f"shared demo data missing at {DEMO} (../shared must sit beside the repo)", pytrace=False)
    wd = tmp_path_factory.mktemp("readme")
    (wd / "data").mkdir()
    (wd / "data" / "demo.pcap").symlink_to(DEMO / "demo.pcap")
    (wd / "data" / "demo.csv").symlink_to(DEMO / "demo.csv")
    (wd / "traffic.pcap").symlink_to(DEMO / "demo.pcap")
    (wd / "unclassified.pcap").symlink_to(DEMO / "srcIP_10.42.0.119_anomaly.pcap")
    return wd


def sh(workdir: Path, command: str) -> subprocess.CompletedProcess:
    """Run a README line with bash, with this interpreter's ``netml`` first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("NETML_DEBUG", None)
    proc = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{command!r} exited {proc.returncode}: {proc.stderr}"
    return proc


def test_help_commands(workdir):
    out = sh(workdir, "netml --help").stdout
    assert "learn" in out and "classify" in out
    out = sh(workdir, "netml learn --help").stdout
    for opt in ("--pcap", "--label", "--pcap-normal", "--pcap-abnormal", "--output", "--model", "--algorithm",
                "--param", "--help-algorithm", "--help-param", "--test-size", "--random-state", "--q-interval",
                "--flow-pkts-threshold", "--feature", "--reader", "--scaler", "--train-on", "--report"):
        assert opt in out, opt
    assert "extract" in out and "train" in out
    out = sh(workdir, "netml learn --help-algorithm").stdout
    assert {"ocsvm", "kde", "iforest", "ae", "gmm", "pca"} <= {line.split()[0] for line in out.splitlines() if line}
    out = sh(workdir, "netml learn --compat --help-param").stdout  # the original's detector
    assert "nu" in out and "kernel" in out
    out = sh(workdir, "netml classify --help").stdout
    assert "--model" in out and "--format" in out


def test_readme_learn_extract_train_classify(workdir):
    # the original's commands as the README's netml 0.x section gives them: --compat for its pipeline
    proc = sh(workdir, "netml learn --compat --pcap=data/demo.pcap --label=data/demo.csv --output=out/OCSVM-results.dat")
    assert "ROC AUC" in proc.stdout
    model = workdir / "out" / "OCSVM-results.dat"
    with zipfile.ZipFile(model) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["components"]["detector"]["name"] == "ocsvm"
    assert manifest["components"]["feature"]["name"] == "iat"  # the original CLI's feature

    proc = sh(workdir, "netml learn extract --compat --pcap=data/demo.pcap --label=data/demo.csv "
                       "--feature=out/IAT-features.dat")
    assert "features file" in proc.stderr  # the note about --feature taking a path
    assert (workdir / "out" / "IAT-features.dat").stat().st_size > 0
    proc = sh(workdir, "netml learn train --feature=out/IAT-features.dat --output=out/OCSVM-results.dat")
    auc_line = [line for line in proc.stdout.splitlines() if line.startswith("ROC AUC")]
    assert len(auc_line) == 1 and 0.0 <= float(auc_line[0].split()[-1]) <= 1.0

    proc = sh(workdir, "netml learn --pcap=traffic.pcap --output=model.dat")
    assert "no labels" in proc.stdout and (workdir / "model.dat").is_file()
    proc = sh(workdir, "netml classify --model=model.dat < unclassified.pcap")
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["START", "END", "FLOW"]
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("netml classify:") and "flows" in summary
    n_anom = int(summary.split()[4])
    assert len(lines) - 1 == n_anom


def test_cli_extra_still_installs():
    """``pip install .[cli]`` keeps working: the extra exists (empty, the CLI is always installed)."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "cli" in meta["project"]["optional-dependencies"]
    assert meta["project"]["scripts"]["netml"] == "netml_core.cli:run"
