"""The ``knn`` detector (plugin netml-models-knn): exact k-th-neighbour distances, leave-one-out
training scores, small training sets, the max_samples subsample, model files and parameter errors."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest

from helpers import cli, demo_data
from netml_core.errors import ModelFileError, ParameterError
from netml_core.registry import get_registry

#: five training flows in the plane; distances between them are small integers
PLANE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, -5.0]])


def make(**params):
    return get_registry().create("detector", "knn", params)


def brute(train: np.ndarray, query: np.ndarray, k: int, method: str, *, loo: bool = False) -> np.ndarray:
    """The definition: sorted Euclidean distances to every training row (own row removed for ``loo``)."""
    d = np.sqrt(((query[:, None, :] - train[None, :, :]) ** 2).sum(axis=2))
    if loo:
        d[np.arange(len(query)), np.arange(len(query))] = np.inf
    d = np.sort(d, axis=1)[:, : min(k, train.shape[0] - int(loo))]
    return d[:, -1] if method == "largest" else d.mean(axis=1)


def test_kth_neighbour_distances_of_known_points():
    probes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    # sorted distances to PLANE: (0,0): 0 1 2 3 5 | (10,0): 7 9 10 sqrt(104) sqrt(125)
    # (0,1): 1 1 sqrt(2) sqrt(10) 6 | (3,4): sqrt(13) 4 sqrt(20) 5 sqrt(90)
    largest = {
        1: [0.0, 7.0, 1.0, np.sqrt(13.0)],
        2: [1.0, 9.0, 1.0, 4.0],
        3: [2.0, 10.0, np.sqrt(2.0), np.sqrt(20.0)],
    }
    mean = {
        2: [0.5, 8.0, 1.0, (np.sqrt(13.0) + 4.0) / 2],
        3: [1.0, 26.0 / 3.0, (2.0 + np.sqrt(2.0)) / 3, (np.sqrt(13.0) + 4.0 + np.sqrt(20.0)) / 3],
    }
    for k, expected in largest.items():
        np.testing.assert_allclose(make(n_neighbors=k).fit(PLANE).score(probes), expected, rtol=0, atol=1e-12)
    for k, expected in mean.items():
        scores = make(n_neighbors=k, method="mean").fit(PLANE).score(probes)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)
    # a copy of a training flow is exactly 0 at k = 1 (distances are not taken from |x|^2 - 2x.t + |t|^2)
    assert make(n_neighbors=1).fit(PLANE * 1e6 + 123.456).score(PLANE[:3] * 1e6 + 123.456).tolist() == [0.0] * 3


def test_training_rows_are_scored_without_their_own_zero_distance():
    # k = 1 against the other four: 1, 1, 2, 2, 5 (with its own row every score would be 0)
    for contamination, q in ((0.5, 0.5), (0.1, 0.9), (0.3, 0.7)):
        det = make(n_neighbors=1, contamination=contamination).fit(PLANE)
        assert det.threshold_ == pytest.approx(np.quantile([1.0, 1.0, 2.0, 2.0, 5.0], q), abs=1e-12)
    # k = 2, mean: (1+2)/2, (1+2)/2, (2+sqrt5)/2, (2+3)/2, (5+sqrt26)/2; largest: 2, 2, sqrt5, 3, sqrt26
    det = make(n_neighbors=2, method="mean", contamination=0.5).fit(PLANE)
    assert det.threshold_ == pytest.approx((2.0 + np.sqrt(5.0)) / 2, abs=1e-12)
    det = make(n_neighbors=2, contamination=0.5).fit(PLANE)
    assert det.threshold_ == pytest.approx(np.sqrt(5.0), abs=1e-12)
    # a duplicated training flow is a real neighbour of its copy: only the row itself is dropped
    dup = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [4.0, 0.0]])  # k = 1: 0, 0, 1, 3
    assert make(n_neighbors=1, contamination=0.5).fit(dup).threshold_ == pytest.approx(0.5, abs=1e-12)
    # k + 1 identical copies can crowd the row out of its own candidates: same distances
    crowd = np.vstack([np.zeros((6, 2)), [[5.0, 0.0]]])  # k = 2: six 0s and 5
    assert make(n_neighbors=2, contamination=0.5).fit(crowd).threshold_ == 0.0
    assert make(n_neighbors=2, contamination=0.1).fit(crowd).threshold_ == pytest.approx(
        np.quantile([0.0] * 6 + [5.0], 0.9), abs=1e-12)


def test_matches_the_definition_on_random_data_in_several_blocks(monkeypatch):
    import netml_models_knn.knn as knn_module

    rng = np.random.default_rng(3)
    train, query = rng.normal(size=(300, 7)), 1.5 * rng.normal(size=(200, 7))
    for method in ("largest", "mean"):
        for k in (1, 5, 40):
            det = make(n_neighbors=k, method=method, contamination=0.2).fit(train)
            np.testing.assert_allclose(det.score(query), brute(train, query, k, method), rtol=1e-12, atol=1e-12)
            loo = brute(train, train, k, method, loo=True)
            assert det.threshold_ == pytest.approx(np.quantile(loo, 0.8), rel=1e-12)
            # blocks of 7 rows (self index offset by the block start) give the same numbers
            monkeypatch.setattr(knn_module, "_BLOCK_FLOATS", 7 * (k + 1) * 8)
            small = make(n_neighbors=k, method=method, contamination=0.2).fit(train)
            monkeypatch.undo()
            assert small.threshold_ == det.threshold_
            assert np.array_equal(small.score(query), det.score(query))


def test_more_neighbours_than_training_flows_uses_them_all():
    two = np.array([[0.0, 0.0], [3.0, 4.0]])
    det = make(n_neighbors=5, contamination=0.5).fit(two)
    assert det.threshold_ == 5.0  # each training row against the one other row
    assert det.score([[0.0, 0.0], [3.0, 0.0]]).tolist() == [5.0, 4.0]  # k = 2 = both rows
    assert make(n_neighbors=5, method="mean").fit(two).score([[0.0, 0.0]]).tolist() == [2.5]
    det = make(n_neighbors=50, contamination=0.1).fit(PLANE)
    np.testing.assert_allclose(det.score([[10.0, 0.0]]), [np.sqrt(125.0)], atol=1e-12)
    assert det.predict([[0.0, 0.0], [100.0, 0.0]]).tolist() == [0, 1]
    assert det.score(np.zeros((0, 2))).shape == (0,)


def test_max_samples_keeps_a_deterministic_uniform_subsample():
    rng = np.random.default_rng(5)
    X, query = rng.normal(size=(500, 4)), rng.normal(size=(50, 4))
    a = make(max_samples=60, random_state=1).fit(X)
    b = make(max_samples=60, random_state=1).fit(X)
    c = make(max_samples=60, random_state=2).fit(X)
    assert a.train_X_.shape == (60, 4) and a.n_train_ == 500
    assert np.array_equal(a.train_X_, b.train_X_) and not np.array_equal(a.train_X_, c.train_X_)
    assert np.array_equal(a.score(query), b.score(query)) and a.threshold_ == b.threshold_
    keep = np.sort(np.random.RandomState(1).permutation(500)[:60])
    assert np.array_equal(a.train_X_, X[keep])  # rows in their training order
    np.testing.assert_allclose(a.score(query), brute(X[keep], query, 5, "largest"), rtol=1e-12)
    # threshold: the kept rows, each scored against the other kept rows (fit cost bounded too)
    assert a.threshold_ == pytest.approx(np.quantile(brute(X[keep], X[keep], 5, "largest", loo=True), 0.9), rel=1e-12)
    # at or below max_samples every row is kept; null keeps every row of any training set
    assert make(max_samples=500).fit(X).train_X_.shape == (500, 4)
    assert np.array_equal(make(max_samples=None).fit(X).train_X_, X)


def test_state_round_trip_and_validation():
    det = make(n_neighbors=2).fit(PLANE)
    state = det.get_state()
    assert set(state) == {"threshold_", "n_train_", "train_X_"}
    assert state["train_X_"].dtype == np.float64 and state["n_train_"] == 5
    plain = json.loads(json.dumps({k: v for k, v in state.items() if k != "train_X_"}))
    fresh = make(n_neighbors=2).set_state({**plain, "train_X_": state["train_X_"].copy()})
    probes = np.array([[10.0, 0.0], [0.5, 0.5]])
    assert np.array_equal(fresh.score(probes), det.score(probes)) and fresh.threshold_ == det.threshold_
    bad = {
        "1-D": {**state, "train_X_": np.zeros(3)},
        "no rows": {**state, "train_X_": np.zeros((0, 2))},
        "NaN": {**state, "train_X_": np.array([[0.0, np.nan]])},
        "inf": {**state, "train_X_": np.array([[np.inf, 0.0]])},
        "missing": {k: v for k, v in state.items() if k != "train_X_"},
        "text": {**state, "train_X_": np.array([["a", "b"]])},
        "threshold": {**state, "threshold_": float("nan")},
    }
    for case, broken in bad.items():
        with pytest.raises(ModelFileError) as exc:
            make(n_neighbors=2).set_state(broken)
        assert str(exc.value).startswith("knn: ") and "\n" not in str(exc.value), case


def test_model_file_round_trip_through_the_cli(tmp_path):
    from netml_core.pipeline import Pipeline

    data = demo_data()
    model = tmp_path / "m.netml"
    code, out, err = cli("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--algorithm", "knn",
                         "-o", model)
    assert code == 0, err
    assert "ROC AUC" in out
    with zipfile.ZipFile(model) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        detector = manifest["components"]["detector"]
        assert detector["name"] == "knn" and detector["distribution"] == "netml-models-knn"
        assert manifest["components"]["scaler"]["name"] == "standard"
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            train_X = npz[detector["state"]["train_X_"]["__ndarray__"]]
    assert train_X.dtype == np.float64 and train_X.ndim == 2 and detector["state"]["n_train_"] == len(train_X)

    code, out, err = cli("classify", "-m", model, "-p", data / "demo.pcap", "--report-all", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    pipe, _ = Pipeline.load(model)
    result = pipe.classify(str(data / "demo.pcap"))
    assert len(rows) == len(result.scores) > 100
    ours = {(repr(float(t)), int(s), int(d)): (float(v), int(a)) for t, s, d, v, a in zip(
        result.flows.first_ts, result.flows.sport, result.flows.dport, result.scores, result.anomalous)}
    got = {(r["start"], int(r["sport"]), int(r["dport"])): (float(r["score"]), int(r["anomaly"])) for r in rows}
    assert got == ours  # same flows, bit-identical scores and verdicts

    # a damaged training matrix in the file: one line, not a traceback
    damaged = tmp_path / "damaged.netml"
    key = detector["state"]["train_X_"]["__ndarray__"]
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.namelist():
            payload = src.read(item)
            if item == "arrays.npz":
                with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
                arrays[key] = arrays[key][0]  # 1-D
                buf = io.BytesIO()
                np.savez(buf, **arrays)
                payload = buf.getvalue()
            dst.writestr(item, payload)
    code, out, err = cli("classify", "-m", damaged, "-p", data / "demo.pcap")
    assert code != 0 and "knn: saved training matrix must be a 2-D array" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"n_neighbors": 0}, "'n_neighbors' must be >= 1"),
        ({"n_neighbors": 2.5}, "'n_neighbors' must be an integer"),
        ({"n_neighbors": True}, "'n_neighbors' must be an integer"),
        ({"method": "median"}, "'method' must be one of 'largest', 'mean'"),
        ({"max_samples": 1}, "'max_samples' must be >= 2"),
        ({"max_samples": "auto"}, "'max_samples' must be an integer"),
        ({"random_state": -1}, "'random_state' must be >= 0"),
        ({"contamination": 0.7}, "'contamination' must be <= 0.5"),
        ({"k": 3}, "unknown parameter 'k'"),
    ],
)
def test_bad_parameters_are_one_line_errors(params, fragment):
    with pytest.raises(ParameterError) as exc:
        make(**params)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_registration_help_and_cli_parameter_errors(tmp_path):
    reg = get_registry()
    cls = reg.component_class("detector", "knn")
    assert reg.plugin_of("detector", "knn").distribution == "netml-models-knn"
    assert reg.get("detector", "knn").summary == cls.summary() != ""
    assert cls.default_scaler == "standard"
    assert set(cls.param_defaults()) == set(cls.param_docs)
    assert cls.param_defaults() == {"n_neighbors": 5, "method": "largest", "max_samples": 20000,
                                    "random_state": 42, "contamination": 0.1}
    code, out, _ = cli("learn", "--help-algorithm")
    assert code == 0 and any(line.split()[:3] == ["knn", "-", "standard"] for line in out.splitlines())
    code, out, _ = cli("learn", "--algorithm", "knn", "--help-param")
    assert code == 0 and "max_samples" in out and "n_neighbors" in out
    code, _, err = cli("learn", "-p", tmp_path / "none.pcap", "--algorithm", "knn", "--param", "{method: median}",
                       "-o", tmp_path / "m.netml")
    assert code != 0 and "'method' must be one of" in err and len(err.strip().splitlines()) == 1


def test_feature_width_mismatch_is_a_parameter_error():
    det = make().fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ParameterError, match="knn was fitted on 3 features, got 2"):
        det.score(np.zeros((4, 2)))
