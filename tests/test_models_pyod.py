"""netml-models-pyod: PyOD's detectors as netml detectors, listed without importing PyOD.

Every offered detector passes the conformance kit (round trip through a model file, determinism,
batch independence, an obvious outlier on top) and trains and classifies through the CLI on the
original's demo capture; the table names every module PyOD ships; parameters are PyOD's own.
"""

from __future__ import annotations

import inspect
import json
import pkgutil
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from netml_core.errors import ModelFileError, NetmlError, ParameterError
from netml_core.registry import get_registry
from netml_core.testing import check_detector, check_registration
from netml_models_pyod import NOT_PROVIDED
from netml_models_pyod.table import NOT_DETECTORS, OFFERED, not_offered_reason

from helpers import cli, demo_data

NAMES = list(OFFERED)


def test_plugins_list_is_fast_and_imports_no_pyod():
    probe = ("import sys, time; t = time.perf_counter(); from netml_core.cli import main; "
             "code = main(['plugins', 'list']); "
             "print('TIME', time.perf_counter() - t, sorted(m for m in ('pyod', 'numba', 'sklearn', 'scipy') if m in sys.modules))")
    times = []
    for _ in range(3):
        res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        line = res.stdout.strip().splitlines()[-1]
        assert line.endswith("[]"), line  # no heavy module imported
        times.append(float(line.split()[1]))
    assert "models_pyod" in res.stdout and "detector:pyod_ecod" in res.stdout
    assert sorted(times)[1] < 0.5, times
    # the whole command as a user runs it, interpreter start-up included
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "netml_core.cli", "plugins", "list"], capture_output=True, text=True)
    assert res.returncode == 0 and time.perf_counter() - t < 1.5


def test_the_table_names_every_module_pyod_ships():
    import pyod.models

    modules = {m.name for m in pkgutil.iter_modules(pyod.models.__path__)}
    offered = {s.module for s in OFFERED.values()}
    unnamed = sorted(m for m in modules - offered - NOT_DETECTORS if not_offered_reason(m) is None)
    assert unnamed == [], f"PyOD ships modules the table does not name: {unnamed}"
    assert not offered & {m for m in modules if not_offered_reason(m)}
    assert len(OFFERED) == 17
    # the examples
    assert {"pyod_ecod", "pyod_copod", "pyod_hbos", "pyod_lof", "pyod_knn", "pyod_cblof", "pyod_loda", "pyod_mcd",
            "pyod_ocsvm", "pyod_iforest"} <= set(OFFERED)
    assert NOT_PROVIDED["detector:pyod_deep_svdd"].startswith("needs torch")
    assert "ensemble" in NOT_PROVIDED["detector:pyod_suod"]


def test_registered_names_aliases_and_help_algorithm():
    reg = get_registry()
    assert [n for n in reg.names("detector") if n.startswith("pyod_")] == NAMES
    assert reg.resolve_name("detector", "pyod:ecod") == "pyod_ecod"
    assert reg.resolve_name("detector", "PyOD-IForest") == "pyod_iforest"
    code, out, err = cli("learn", "--help-algorithm")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("pyod_")}
    assert list(rows) == NAMES
    assert rows["pyod_ecod"].split()[1:3] == ["pyod:ecod", "none"]
    assert rows["pyod_knn"].split()[1:3] == ["pyod:knn", "standard"]


def test_plugins_list_verbose_says_why_the_others_are_not_offered():
    code, out, err = cli("plugins", "list", "--verbose")
    assert code == 0, err
    lines = [line for line in out.splitlines() if "pyod_" in line and "not provided" in line]
    assert len(lines) == len(NOT_PROVIDED)
    assert any(re.search(r"detector:pyod_vae +not provided: needs torch", line) for line in lines)
    code, out, _ = cli("plugins", "list", "--json", "--verbose")
    row = next(r for r in json.loads(out) if r["plugin"] == "models_pyod")
    assert row["not_provided"] == NOT_PROVIDED


def test_help_param_shows_pyods_own_defaults_and_docs():
    from pyod.models.knn import KNN

    code, out, err = cli("learn", "--algorithm", "pyod:knn", "--help-param")
    assert code == 0, err
    block = out.split("\n\n")[0].splitlines()
    assert block[0] == "pyod_knn: " + OFFERED["pyod_knn"].summary
    shown = {line.split()[0]: line.split()[1] for line in block[2:-1]}
    pyod_defaults = {n: p.default for n, p in inspect.signature(KNN.__init__).parameters.items() if n != "self"}
    assert {n: pyod_defaults[n] for n in shown} == {"contamination": 0.1, "n_neighbors": 5, "method": "largest",
                                                   "radius": 1.0, "algorithm": "auto", "leaf_size": 30,
                                                   "metric": "minkowski", "p": 2, "n_jobs": 1}
    assert "metric_params" not in shown  # a Python object: not offered
    assert {k: str(v) for k, v in pyod_defaults.items() if k in shown and k != "method"} == \
        {k: v for k, v in shown.items() if k != "method"}
    assert "number of neighbors" in out.lower()
    # random_state: netml's 42 where PyOD's None would make reloading irreproducible
    _, out, _ = cli("learn", "--algorithm", "pyod_iforest", "--help-param")
    assert re.search(r"^  random_state +42 ", out, re.M)


def test_param_is_validated_before_any_capture_is_read(tmp_path):
    missing = tmp_path / "missing.pcap"
    code, out, err = cli("learn", "-p", missing, "--algorithm", "pyod_knn", "--param", "{n_neigbors: 3}", "-o", tmp_path / "m")
    assert code == 2 and err.count("\n") == 1
    assert "unknown parameter 'n_neigbors' for algorithm 'pyod_knn'" in err and "n_neighbors" in err
    code, _, err = cli("learn", "-p", missing, "--algorithm", "pyod_knn", "--param", "{n_neighbors: five}", "-o", tmp_path / "m")
    assert code == 2 and "parameter 'n_neighbors' of pyod_knn must be a number (PyOD: int), got 'five'" in err
    code, _, err = cli("learn", "-p", missing, "--algorithm", "pyod_hbos", "--param", "{contamination: 0.9}", "-o", tmp_path / "m")
    assert code == 2 and "parameter 'contamination' must be <= 0.5, got 0.9" in err
    cls = get_registry().component_class("detector", "pyod_hbos")
    assert cls.create({"n_bins": "auto"}).n_bins == "auto"  # PyOD documents "int or string"
    # a value only PyOD can judge fails at fit time, in one line naming the detector
    with pytest.raises(ParameterError, match=r"^pyod_knn cannot be fitted on 20 flows x 3 values with .*'method': 'maximum'.*: \w+Error: "):
        get_registry().create("detector", "pyod_knn", {"method": "maximum"}).fit(np.random.RandomState(0).normal(size=(20, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_every_offered_detector_passes_the_conformance_kit(name):
    check_detector(name, plugin=None)


def test_registration_imports_no_pyod():
    check_registration("netml_models_pyod")


@pytest.fixture(scope="module")
def demo_features(tmp_path_factory):
    d = demo_data()
    out = tmp_path_factory.mktemp("pyod") / "demo.npz"
    code, _, err = cli("learn", "extract", "-p", d / "demo.pcap", "-l", d / "demo.csv", "--feature-file", out)
    assert code == 0, err
    return out


@pytest.mark.parametrize("name", NAMES)
def test_learn_and_classify_the_demo_with_each_detector(name, demo_features, tmp_path):
    model = tmp_path / "m.netml"
    code, out, err = cli("learn", "train", "--feature-file", demo_features, "--algorithm", name, "-o", model)
    assert code == 0, err
    assert f"algorithm={name}" in out
    auc = float(re.search(r"ROC AUC\s+([0-9.]+)", out)[1])
    assert 0.0 <= auc <= 1.0
    code, out, err = cli("classify", "-m", model, "-p", demo_data() / "demo.pcap", "--report-all", "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    summary = re.search(r"(\d+) flows, (\d+) anomalies \(threshold ([-0-9.e+]+),", err)
    assert int(summary[1]) == len(rows) > 100 and int(summary[2]) == sum(r["anomaly"] for r in rows)
    assert all(np.isfinite(r["score"]) for r in rows)


def test_scores_after_load_equal_scores_before_in_both_saving_modes(tmp_path):
    from netml_core.pipeline import Pipeline

    d = demo_data()
    for name, mode in (("pyod_hbos", "attributes"), ("pyod_iforest", "refit"), ("pyod_ecod", "attributes"),
                       ("pyod_knn", "refit")):
        pipe = Pipeline(detector=name)
        ex = pipe.fit_extract([d / "demo.pcap"])
        pipe.fit_detector(ex.X[:300], fpr=0.05)
        before = pipe.score(ex.X[:40])
        pipe.save(tmp_path / f"{name}.netml")
        loaded, contents = Pipeline.load(tmp_path / f"{name}.netml")
        assert contents.components["detector"].state["mode_"] == mode
        np.testing.assert_array_equal(loaded.score(ex.X[:40]), before)
        assert loaded.threshold == pipe.threshold


def test_a_model_that_does_not_rebuild_the_same_is_refused():
    cls = get_registry().component_class("detector", "pyod_iforest")
    X = np.random.RandomState(1).normal(size=(80, 4))
    state = cls.create({}).fit(X).get_state()
    assert state["mode_"] == "refit" and state["pyod_version_"]
    tampered = {**state, "check_scores_": state["check_scores_"] + 0.01}
    with pytest.raises(ModelFileError, match=r"pyod_iforest: the detector rebuilt from the model file scores its "
                                             r"check flows differently .*train the model again"):
        cls.create({}).set_state(tampered)
    with pytest.raises(ModelFileError, match="unknown saved mode"):
        cls.create({}).set_state({**state, "mode_": "pickle"})


def test_random_state_null_draws_a_seed_that_is_saved():
    cls = get_registry().component_class("detector", "pyod_iforest")
    X = np.random.RandomState(2).normal(size=(60, 3))
    rng_before = np.random.get_state()[1].copy()
    a, b = cls.create({"random_state": None}).fit(X), cls.create({"random_state": None}).fit(X)
    assert a.seed_ != b.seed_
    np.testing.assert_array_equal(np.random.get_state()[1], rng_before)  # the global generator is restored
    again = cls.create({"random_state": None}).set_state(a.get_state())
    np.testing.assert_array_equal(again.score(X), a.score(X))


def test_ecod_scores_each_flow_alone_against_the_training_flows():
    from pyod.models.ecod import ECOD

    rng = np.random.RandomState(3)
    X, Q = rng.normal(size=(100, 4)), rng.normal(size=(6, 4))
    det = get_registry().create("detector", "pyod_ecod").fit(X)
    ref = ECOD().fit(X)
    np.testing.assert_array_equal(det.score(Q), [ref.decision_function(Q[i:i + 1])[0] for i in range(len(Q))])
    # PyOD on the whole batch differs: its ECDFs include the other flows of the batch
    assert not np.allclose(ECOD().fit(X).decision_function(Q), det.score(Q))


def test_pyod_output_never_reaches_stdout(capsys):
    det = get_registry().create("detector", "pyod_copod").fit(np.random.RandomState(4).normal(size=(30, 3)))
    det.score(np.zeros((2, 3)))
    assert capsys.readouterr().out == ""


def test_non_finite_scores_are_an_error_not_a_verdict():
    det = get_registry().create("detector", "pyod_knn").fit(np.random.RandomState(5).normal(size=(30, 3)))
    det.model_.decision_function = lambda X: np.full(len(X), np.nan)
    with pytest.raises(NetmlError, match="pyod_knn gave 2 of 2 flows a NaN or infinite score"):
        det.score(np.zeros((2, 3)))
