"""The example third-party plugin, end to end: pip-install it, list it, train and classify with it.

``examples/plugins/netml-detector-zscore`` is copied to a temporary folder (so the build leaves
nothing in the repository), installed into this test environment with pip, offline and without
build isolation, and uninstalled afterwards. The CLI runs in subprocesses, as a user would run it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from netml_core.errors import ModelFileError, ParameterError
from netml_core.registry import Registry, reset_registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plugins" / "netml-detector-zscore"
DIST = "netml-detector-zscore"
NETML = shutil.which("netml", path=str(Path(sys.executable).parent)) or shutil.which("netml")


def pip(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"pip {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res


def netml(*argv, cwd=None) -> subprocess.CompletedProcess:
    assert NETML, "the netml console script is not installed next to this Python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETML_")}
    return subprocess.run([NETML, *map(str, argv)], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def is_installed() -> bool:
    try:
        metadata.distribution(DIST)
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    src = tmp_path_factory.mktemp("example") / EXAMPLE.name
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", "--force-reinstall", "-q", str(src))
    importlib.invalidate_caches()
    reset_registry()
    try:
        yield
    finally:
        uninstall()


def uninstall() -> None:
    if is_installed():
        pip("uninstall", "-y", "-q", DIST)
    for name in [m for m in sys.modules if m.startswith("netml_detector_zscore")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    reset_registry()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zscore_run")


@pytest.fixture(scope="module")
def demo(shared_dir) -> dict[str, Path]:
    d = shared_dir / "data" / "netml-demo"
    paths = {"pcap": d / "demo.pcap", "label": d / "demo.csv", "anomaly": d / "srcIP_10.42.0.119_anomaly.pcap"}
    for p in paths.values():
        assert p.is_file(), f"missing shared file {p}"
    return paths


def test_example_is_installed_as_a_real_distribution(installed):
    dist = metadata.distribution(DIST)
    assert dist.version == "1.0.0"
    eps = [ep for ep in dist.entry_points if ep.group == "netml.plugins"]
    assert [(ep.name, ep.value) for ep in eps] == [("detector_zscore", "netml_detector_zscore")]
    assert sorted(dist.requires) == ["netml>=1.0", "numpy>=1.24"]
    reg = Registry().load_entry_points()
    info = reg.plugins["detector_zscore"]
    assert (info.distribution, info.version, info.status) == (DIST, "1.0.0", "ok")
    assert reg.resolve_name("detector", "z-score") == "zscore"


def test_zscore_scores_are_mean_absolute_z(installed):
    from netml_detector_zscore.zscore import ZScoreDetector

    rng = np.random.default_rng(7)
    X = rng.normal([10.0, -3.0, 0.5], [2.0, 0.5, 0.1], size=(500, 3))
    det = ZScoreDetector(contamination=0.05).fit(X)
    np.testing.assert_allclose(det.mean_, X.mean(axis=0))
    np.testing.assert_allclose(det.scale_, X.std(axis=0))
    probe = np.array([X.mean(axis=0), X.mean(axis=0) + 3 * X.std(axis=0) * [1, -1, 0]])
    np.testing.assert_allclose(det.score(probe), [0.0, 2.0], atol=1e-12)
    assert det.predict(probe).tolist() == [0, 1]
    # threshold is the 95th percentile of the training scores: 5 % of training flows flagged
    assert det.predict(X).sum() == 25
    maxdet = ZScoreDetector(reduce="max").fit(X)
    np.testing.assert_allclose(maxdet.score(probe), [0.0, 3.0], atol=1e-12)


def test_zscore_constant_feature_and_width_checks(installed):
    from netml_detector_zscore.zscore import ZScoreDetector

    X = np.column_stack([np.arange(10.0), np.full(10, 5.0)])
    det = ZScoreDetector(min_std=0.5).fit(X)
    assert det.scale_[1] == 0.5
    np.testing.assert_allclose(det.score([[4.5, 6.0]]), [1.0])  # (0 + |6-5|/0.5) / 2
    with pytest.raises(ParameterError, match="3 columns, the detector was fitted on 2"):
        det.score(np.zeros((1, 3)))
    with pytest.raises(ParameterError, match="at least 2 training flows"):
        ZScoreDetector().fit(np.zeros((1, 2)))


def test_zscore_state_round_trip_without_pickle(installed):
    from netml_detector_zscore.zscore import ZScoreDetector

    X = np.random.default_rng(0).normal(size=(50, 4))
    det = ZScoreDetector().fit(X)
    state = det.get_state()
    assert sorted(state) == ["mean_", "scale_", "threshold_"]
    assert all(isinstance(v, (np.ndarray, float)) for v in state.values())
    copy = ZScoreDetector().set_state(state)
    np.testing.assert_array_equal(copy.score(X), det.score(X))
    assert copy.threshold_ == det.threshold_
    with pytest.raises(ModelFileError, match="inconsistent"):
        ZScoreDetector().set_state({**state, "scale_": state["scale_"][:2]})
    with pytest.raises(ModelFileError, match="incomplete"):
        ZScoreDetector().set_state({"mean_": state["mean_"]})


def test_zscore_parameters_are_discoverable_and_checked(installed):
    reg = Registry().load_entry_points()
    cls = reg.component_class("detector", "zscore")
    params = {p["name"]: p for p in cls.describe_params()}
    assert {n: p["default"] for n, p in params.items()} == {"contamination": 0.1, "reduce": "mean", "min_std": 1e-6}
    assert all(p["doc"] for p in params.values())
    assert reg.create("detector", "zscore", {"reduce": "max"}).reduce == "max"
    with pytest.raises(ParameterError, match="unknown parameter 'nu' for algorithm 'zscore'; known: contamination, reduce, min_std"):
        reg.create("detector", "zscore", {"nu": 0.1})
    with pytest.raises(ParameterError, match="reduce must be 'mean' or 'max'"):
        reg.create("detector", "zscore", {"reduce": "median"})


def test_plugins_list_shows_the_example(installed):
    res = netml("plugins", "list", "--json")
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["plugin"] == "detector_zscore")
    assert (row["distribution"], row["version"], row["status"]) == (DIST, "1.0.0", "ok")
    assert [(c["kind"], c["name"], c["aliases"]) for c in row["provides"]] == [("detector", "zscore", ["z_score"])]
    table = netml("plugins", "list").stdout.splitlines()
    line = next(x for x in table if x.startswith("detector_zscore "))
    assert line.split() == ["detector_zscore", DIST, "1.0.0", "ok", "detector:zscore"]


def classify_fraction(model: Path, pcap: Path) -> tuple[int, float, list[dict]]:
    """Run ``netml classify --report-all --format jsonl``: (flows, anomalous fraction, rows)."""
    res = netml("classify", "--pcap", pcap, "--model", model, "--report-all", "--format", "jsonl")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    summary = re.match(r"netml classify: (\d+) flows, (\d+) anomalies", res.stderr)
    assert summary, res.stderr
    assert int(summary[1]) == len(rows) and int(summary[2]) == sum(r["anomaly"] for r in rows)
    return len(rows), sum(r["anomaly"] for r in rows) / len(rows), rows


def test_learn_and_classify_use_the_example(installed, demo, workdir):
    model = workdir / "zscore.netml"
    # netml 0.x's flows and IAT: the labels of the original's demo are only meaningful for them
    res = netml("learn", "--pcap", demo["pcap"], "--label", demo["label"], "--algorithm", "zscore",
                "--param", "{reduce: max}", "--splitter", "netml", "--feature", "iat", "-o", model)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "algorithm=zscore" in out
    auc = float(re.search(r"ROC AUC\s+([0-9.]+)", out)[1])
    assert 0.5 < auc <= 1.0  # better than chance at telling the labelled attacks from benign flows
    assert model.is_file()
    with zipfile.ZipFile(model) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    det = manifest["components"]["detector"]
    assert (det["name"], det["plugin"], det["distribution"], det["version"]) == ("zscore", "detector_zscore", DIST, "1.0.0")
    assert det["params"] == {"contamination": 0.1, "reduce": "max", "min_std": 1e-6}
    assert {"mean_", "scale_", "threshold_"} <= set(det["state"])

    # trained on benign demo traffic: the anomalous IoT host's flows stand out far more often
    n_demo, frac_demo, _ = classify_fraction(model, demo["pcap"])
    n_anom, frac_anom, rows = classify_fraction(model, demo["anomaly"])
    assert n_demo > 50 and n_anom > 50
    assert frac_anom > 0.9 > 0.5 > frac_demo
    threshold = det["state"]["threshold_"]
    assert all((r["score"] > threshold) == r["anomaly"] for r in rows)


def test_after_uninstall_zscore_is_unknown_and_its_model_names_the_missing_plugin(installed, demo, workdir, tmp_path):
    uninstall()
    assert not is_installed()
    res = netml("learn", "--pcap", demo["pcap"], "--label", demo["label"], "--algorithm", "zscore",
                "-o", tmp_path / "m.netml")
    assert res.returncode != 0 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "unknown algorithm 'zscore'; installed: " in res.stderr
    assert not (tmp_path / "m.netml").exists()

    model = workdir / "zscore.netml"  # written by the learn test above
    if model.is_file():
        res = netml("classify", "--pcap", demo["pcap"], "--model", model)
        assert res.returncode != 0 and res.stdout == ""
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
        assert "zscore" in res.stderr and DIST in res.stderr
