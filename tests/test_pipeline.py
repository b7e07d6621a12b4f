"""Pipeline: the original's feature rows from the registry's components, saved and rebuilt exactly."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from netml_core.errors import NotFittedError, ParameterError, UnknownComponentError
from netml_core.flowtable import FlowTable
from netml_core.pipeline import (
    Pipeline,
    average_precision,
    precision_recall_at,
    roc_auc,
    roc_curve,
    train_test_split_indices,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo"
REF = SHARED / "reference" / "netml-0.7.1"


def demo_data() -> Path:
    if not (DEMO / "demo.pcap").is_file() or not REF.is_dir():
        pytest.fail(f"shared data missing at {SHARED} (it must sit beside the repo)", pytrace=False)
    return DEMO


def _labels():
    from netml_core.labels import CsvLabels

    return [CsvLabels(demo_data() / "demo.csv")]


@pytest.fixture(scope="module")
def fitted():
    pipe = Pipeline(flow_splitter="netml", feature="iat", detector="ocsvm")
    ex = pipe.fit_extract([demo_data() / "demo.pcap"], _labels())
    pipe.fit_detector(ex.X[ex.y == 0])
    return pipe, ex


# timing features only: size-based ones differ where scapy re-encoded a packet (see test_features_parity)
@pytest.mark.parametrize("feature, params, ref", [("iat", {}, "IAT"), ("iat", {"fft": True}, "FFT-IAT"),
                                                  ("samp_num", {}, "SAMP_NUM")])
def test_fit_extract_gives_the_original_rows(feature, params, ref):
    pipe = Pipeline(flow_splitter="netml", feature=feature, feature_params=params, detector=None)
    ex = pipe.fit_extract([demo_data() / "demo.pcap"], _labels())
    X_ref = np.load(REF / f"{ref}_features.npy")
    y_ref = np.load(REF / f"{ref}_labels.npy")
    assert ex.X.shape == X_ref.shape  # width learned on the 88 labelled flows, as the original
    np.testing.assert_allclose(ex.X, X_ref, rtol=1e-9, atol=5e-7)
    np.testing.assert_array_equal(ex.y, y_ref)  # same rows in the same order
    assert ex.counts == {"packets": 5984, "flows": 196, "unlabelled_dropped": 108}
    assert pipe.flow_splitter.interval_ == pytest.approx(5.776507735252384, rel=1e-9)


def test_save_load_rebuilds_the_same_scores(fitted, tmp_path):
    pipe, ex = fitted
    path = pipe.save(tmp_path / "m.netml", {"note": "test"})
    again, contents = Pipeline.load(path)
    assert contents.info["note"] == "test" and len(contents.info["feature_names"]) == ex.X.shape[1]
    assert again.names == pipe.names
    np.testing.assert_array_equal(again.score(ex.X), pipe.score(ex.X))
    assert again.threshold == pipe.threshold
    # a new capture: flows split with the saved interval, rows of the saved width
    other = again.classify(demo_data() / "srcIP_10.42.0.119_anomaly.pcap")
    assert other.scores.shape == (len(other.flows),) and len(other.flows) > 50
    assert again.flow_splitter.interval_ == pipe.flow_splitter.interval_
    np.testing.assert_array_equal(other.anomalous, (other.scores > pipe.threshold).astype(np.int64))
    np.testing.assert_array_equal(other.scores, pipe.classify(demo_data() / "srcIP_10.42.0.119_anomaly.pcap").scores)


def test_scaler_and_threshold_are_fitted_on_training_rows(fitted):
    pipe, ex = fitted
    normal = ex.X[ex.y == 0]
    assert pipe.names["scaler"] == "standard"
    np.testing.assert_allclose(pipe.scaler.offset_, normal.mean(axis=0))
    train_scores = pipe.score(normal)
    assert pipe.threshold == pytest.approx(np.quantile(train_scores, 0.9))
    assert pipe.predict(normal).sum() == np.count_nonzero(train_scores > pipe.threshold)


def test_pipeline_pickles_for_workers(fitted):
    """Dask ships fitted pipelines to workers: a pickled copy scores identically."""
    pipe, ex = fitted
    copy = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(copy.score(ex.X), pipe.score(ex.X))


def test_several_captures_concatenate(fitted):
    pipe, _ = fitted
    a = pipe.extract(demo_data() / "demo.pcap")
    b = pipe.extract(demo_data() / "srcIP_10.42.0.119_anomaly.pcap")
    both = FlowTable.concat([a.flows, b.flows])
    assert len(both) == len(a.flows) + len(b.flows)
    X = pipe.feature.transform(both)
    np.testing.assert_array_equal(X, np.vstack([a.X, b.X]))
    np.testing.assert_array_equal(both.first_ts, np.r_[a.flows.first_ts, b.flows.first_ts])
    np.testing.assert_array_equal(both.n_pkts, np.r_[a.flows.n_pkts, b.flows.n_pkts])

    two = Pipeline(feature="stats", detector=None)
    from netml_core.labels import ConstantLabels

    ex = two.fit_extract([demo_data() / "demo.pcap", demo_data() / "srcIP_10.42.0.119_anomaly.pcap"],
                         [ConstantLabels(0), ConstantLabels(1)])
    assert set(np.unique(ex.capture)) == {0, 1}
    np.testing.assert_array_equal(ex.y, ex.capture)  # normal capture 0, anomalous capture 1


def test_unfitted_and_unknown_components_fail_clearly(tmp_path):
    pipe = Pipeline(feature="iat", detector="kde")
    with pytest.raises(NotFittedError):
        pipe.extract(demo_data() / "demo.pcap")
    with pytest.raises(NotFittedError):
        pipe.save(tmp_path / "x.netml")
    assert not (tmp_path / "x.netml").exists()
    with pytest.raises(UnknownComponentError, match="installed: .*ocsvm"):
        Pipeline(detector="nosuch")
    with pytest.raises(ParameterError, match="nuu"):
        Pipeline(detector="ocsvm", detector_params={"nuu": 1})
    assert Pipeline(detector="if").names["detector"] == "iforest"
    assert Pipeline(detector="iforest").names["scaler"] == "none"


def test_split_and_metrics_equal_scikit_learn():
    from sklearn import metrics
    from sklearn.model_selection import train_test_split

    rng = np.random.RandomState(7)
    checked = 0
    for _ in range(300):
        n = int(rng.randint(3, 80))
        y = rng.randint(0, 2, n)
        s = np.round(rng.randn(n), 1)  # rounding makes ties, which the curves must handle
        tr, te = train_test_split_indices(n, 0.33, 42)
        a, b = train_test_split(np.arange(n), test_size=0.33, random_state=42)
        np.testing.assert_array_equal(tr, a)
        np.testing.assert_array_equal(te, b)
        if y.all() or not y.any():
            assert np.isnan(roc_auc(y, s))
            continue
        assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
        assert average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s), abs=1e-12)
        fpr, tpr, _ = roc_curve(y, s)
        fpr2, tpr2, _ = metrics.roc_curve(y, s, drop_intermediate=False)
        np.testing.assert_allclose(fpr, fpr2)
        np.testing.assert_allclose(tpr, tpr2)
        pred = (s > 0).astype(int)
        p, r = precision_recall_at(y, pred)
        assert p == pytest.approx(metrics.precision_score(y, pred, zero_division=0))
        assert r == pytest.approx(metrics.recall_score(y, pred))
        checked += 1
    assert checked > 250
    with pytest.raises(ParameterError):
        train_test_split_indices(10, 1.0, 0)
    tr, te = train_test_split_indices(10, 0.0, 0)
    assert len(tr) == 10 and len(te) == 0
