"""The six built-in detectors through the registry: separation, determinism, state, threshold, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from netml_core.errors import ParameterError
from netml_core.registry import get_registry
from netml_core.scaling import default_scaler_for, make_scaler

DETECTORS = ["ocsvm", "kde", "iforest", "ae", "gmm", "pca"]
#: small-but-real settings so the suite stays quick; defaults are exercised in the parity test
FAST = {"ae": {"epochs": 30}, "iforest": {"n_estimators": 50}}


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def separable():
    """Normal flows on a noisy 3-D subspace of R^10; anomalies spread through the whole space."""
    rng = np.random.default_rng(7)
    mixing = rng.normal(size=(3, 10))
    normal = rng.normal(size=(600, 3)) @ mixing + 0.1 * rng.normal(size=(600, 10))
    train, test_normal = normal[:400], normal[400:]
    anomalies = 4.0 * rng.normal(size=(60, 10))
    X_test = np.vstack([test_normal, anomalies])
    y_test = np.r_[np.zeros(len(test_normal)), np.ones(len(anomalies))].astype(int)
    return train, X_test, y_test


def make(name: str, **params):
    return get_registry().create("detector", name, {**FAST.get(name, {}), **params})


def scaled(name, train, *others):
    scaler = make_scaler(default_scaler_for(name)).fit(train)
    return [scaler.transform(a) for a in (train, *others)]


def round_trip(state: dict) -> dict:
    """What a model file does: JSON for plain data, npz (no pickle) for arrays, raw bytes kept."""
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    blobs = {k: v for k, v in state.items() if isinstance(v, (bytes, bytearray))}
    plain = {k: v for k, v in state.items() if k not in arrays and k not in blobs}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        restored = {k: npz[k] for k in npz.files}
    restored.update(json.loads(json.dumps(plain)))
    restored.update({k: bytes(v) for k, v in blobs.items()})
    return restored


@pytest.mark.parametrize("name", DETECTORS)
def test_separates_synthetic_anomalies(name, separable):
    train, X_test, y_test = separable
    train_s, test_s = scaled(name, train, X_test)
    det = make(name).fit(train_s)
    scores = det.score(test_s)
    assert scores.shape == (len(X_test),) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    assert auc(y_test, scores) >= 0.9, f"{name}: AUC {auc(y_test, scores):.3f}"


@pytest.mark.parametrize("name", DETECTORS)
def test_state_round_trip_gives_identical_scores(name, separable):
    train, X_test, _ = separable
    train_s, test_s = scaled(name, train, X_test)
    det = make(name).fit(train_s)
    state = round_trip(det.get_state())
    assert all(isinstance(v, (np.ndarray, bytes, int, float, str, list, dict, bool, type(None)))
               for v in state.values())
    fresh = get_registry().component_class("detector", name)(**det.get_params()).set_state(state)
    assert np.array_equal(fresh.score(test_s), det.score(test_s))
    assert np.array_equal(fresh.predict(test_s), det.predict(test_s))
    assert fresh.threshold_ == det.threshold_


@pytest.mark.parametrize("name", ["iforest", "ae", "gmm"])
def test_random_state_makes_fits_reproducible(name, separable):
    train, X_test, _ = separable
    train_s, test_s = scaled(name, train, X_test)
    a = make(name, random_state=3).fit(train_s).score(test_s)
    b = make(name, random_state=3).fit(train_s).score(test_s)
    c = make(name, random_state=4).fit(train_s).score(test_s)
    assert np.array_equal(a, b)
    if name != "gmm":  # one well-separated Gaussian: EM lands on the same optimum from any start
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["ocsvm", "kde", "pca"])
def test_deterministic_detectors_refit_identically(name, separable):
    train, X_test, _ = separable
    assert np.array_equal(make(name).fit(train).score(X_test), make(name).fit(train).score(X_test))


@pytest.mark.parametrize("name", DETECTORS)
def test_predict_applies_the_fitted_threshold(name, separable):
    train, X_test, _ = separable
    train_s, test_s = scaled(name, train, X_test)
    det = make(name, contamination=0.05).fit(train_s)
    train_scores = det.score(train_s)
    assert det.threshold_ == pytest.approx(np.quantile(train_scores, 0.95))
    # about 5 % of the training flows lie above the threshold (ties can only lower it)
    assert 0.0 < det.predict(train_s).mean() <= 0.05 + 1 / len(train_s)
    scores, pred = det.score(test_s), det.predict(test_s)
    assert np.array_equal(pred, (scores > det.threshold_).astype(np.int64))
    det.threshold_ = float(np.max(scores))  # moving the threshold moves predict, nothing else does
    assert det.predict(test_s).sum() == 0


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("ocsvm", {"nu": 1.5}, "'nu' must be <= 1.0"),
        ("ocsvm", {"kernel": "precomputed"}, "'kernel' must be one of"),
        ("ocsvm", {"gamma": "wide"}, "'gamma'"),
        ("kde", {"bandwidth": 0}, "'bandwidth' must be > 0.0"),
        ("kde", {"kernel": "box"}, "'kernel' must be one of"),
        ("iforest", {"n_estimators": 0}, "'n_estimators' must be >= 1"),
        ("iforest", {"max_samples": "most"}, "'max_samples'"),
        ("ae", {"negative_slope": 1.0}, "'negative_slope' must be < 1.0"),
        ("ae", {"epochs": 2.5}, "'epochs' must be an integer"),
        ("gmm", {"covariance_type": "round"}, "'covariance_type' must be one of"),
        ("pca", {"score_method": "mahalanobis"}, "'score_method' must be one of"),
        ("pca", {"n_components": 1.0}, "'n_components' must be < 1.0"),
        ("pca", {"contamination": 0.7}, "'contamination' must be <= 0.5"),
        ("ocsvm", {"nuu": 0.1}, "unknown parameter 'nuu'"),
    ],
)
def test_bad_parameters_are_one_line_errors(name, params, fragment):
    with pytest.raises(ParameterError) as exc:
        get_registry().create("detector", name, params)
    msg = str(exc.value)
    assert fragment in msg and "\n" not in msg


@pytest.mark.parametrize("name", DETECTORS)
def test_feature_width_mismatch_is_a_parameter_error(name, separable):
    train, X_test, _ = separable
    det = make(name).fit(train)
    with pytest.raises(ParameterError, match="fitted on 10 features, got 9"):
        det.score(X_test[:, :9])


@pytest.mark.parametrize("name", DETECTORS)
def test_registration_summary_is_class_docstring_line(name):
    reg = get_registry()
    info = reg.get("detector", name)
    cls = reg.component_class("detector", name)
    assert info.summary == cls.summary() != ""
    assert info.plugin == f"models_{name}"
    assert reg.plugin_of("detector", name).distribution == f"netml-models-{name}"
    defaults = cls.param_defaults()
    assert defaults["contamination"] == 0.1
    assert set(defaults) == set(cls.param_docs), "every parameter is documented"
    assert ("random_state" in defaults) == (name in ("iforest", "ae", "gmm"))


def test_iforest_alias():
    reg = get_registry()
    assert reg.resolve_name("detector", "if") == "iforest"
    assert reg.resolve_name("detector", "IF") == "iforest"


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_scores_a_row_the_same_in_any_batch_and_at_any_address(covariance_type, separable):
    """A flow's score must not depend on the other flows of its batch (classify streams batches)."""
    train, X_test, _ = separable
    det = make("gmm", covariance_type=covariance_type, n_components=3).fit(train)
    whole = det.score(X_test)
    for lo, hi in ((0, 1), (5, 6), (7, 150), (100, len(X_test))):
        assert det.score(X_test[lo:hi].copy()).tobytes() == whole[lo:hi].tobytes()
    for shift in (1, 3):  # rows at other memory alignments, and a column-major copy
        buf = np.empty(X_test.size + shift)
        moved = buf[shift:].reshape(X_test.shape)
        moved[:] = X_test
        assert det.score(moved).tobytes() == whole.tobytes()
    assert det.score(np.asfortranarray(X_test)).tobytes() == whole.tobytes()


def test_scores_agree_with_scikit_learn(separable):
    """OCSVM, GMM and the isolation forest score in numpy from saved arrays: same numbers as sklearn."""
    from sklearn.ensemble import IsolationForest
    from sklearn.mixture import GaussianMixture
    from sklearn.svm import OneClassSVM

    train, X_test, _ = separable
    ref = IsolationForest(n_estimators=50, random_state=5).fit(train)
    ours = make("iforest", random_state=5).fit(train)
    np.testing.assert_allclose(ours.score(X_test), -ref.score_samples(X_test), rtol=1e-12)
    for cov in ("full", "tied", "diag", "spherical"):
        ref = GaussianMixture(3, covariance_type=cov, random_state=1).fit(train)
        ours = make("gmm", n_components=3, covariance_type=cov, random_state=1).fit(train)
        np.testing.assert_allclose(ours.score(X_test), -ref.score_samples(X_test), rtol=1e-10)
    from sklearn.neighbors import KernelDensity

    # gaussian: dense numpy path, checked against the brute-force definition. scikit-learn's trees
    # (kd and ball) are no reference: at atol = rtol = 0 they still underestimate -log p by up to
    # tens of nats for flows in sparse regions (measured on this very data)
    n, d = train.shape
    d2 = ((X_test[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
    for bw in (1.0, 0.3, "scott", "silverman"):
        h = {"scott": n ** (-1 / (d + 4)), "silverman": (n * (d + 2) / 4) ** (-1 / (d + 4))}.get(bw, bw)
        e = -d2 / (2 * h * h)
        top = e.max(axis=1)
        expected = -(top + np.log(np.exp(e - top[:, None]).sum(axis=1)) - np.log(n) - d / 2 * np.log(2 * np.pi * h * h))
        ours = make("kde", bandwidth=bw).fit(train)
        np.testing.assert_allclose(ours.score(X_test), expected, rtol=1e-12)
    ref = KernelDensity(bandwidth=2.0, kernel="epanechnikov").fit(train)  # scikit-learn tree path
    ours = make("kde", bandwidth=2.0, kernel="epanechnikov").fit(train)
    assert np.array_equal(ours.score(X_test), -ref.score_samples(X_test))
    for kernel in ("rbf", "poly", "sigmoid", "linear"):
        ref = OneClassSVM(kernel=kernel, nu=0.3).fit(train)
        ours = make("ocsvm", kernel=kernel, nu=0.3).fit(train)
        np.testing.assert_allclose(ours.score(X_test), -ref.decision_function(X_test), rtol=1e-9, atol=1e-9)


def test_pca_reconstruction_is_residual_off_kept_components():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6))  # rank 2
    det = make("pca", n_components=2, standardize=False).fit(X)
    assert det.components_.shape == (2, 6)
    assert np.allclose(det.score(X), 0.0, atol=1e-9)
    probe = X[:5] + det.components_[0] * 3.0  # moving along a kept component costs nothing
    assert np.allclose(det.score(probe), 0.0, atol=1e-9)
    off = np.linalg.svd(np.vstack([det.components_, np.eye(6)]))[2][2]  # orthogonal to both
    assert np.allclose(det.score(X[:5] + 2.0 * off), 2.0, atol=1e-9)


def test_pca_weighted_distance_matches_pyod_formula():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 5)) * np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    det = make("pca", n_components=None, score_method="weighted_distance").fit(X)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    _, s, vt = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
    ratio = s**2 / (s**2).sum()
    # component signs are a convention of the SVD: compare up to per-component sign
    assert np.allclose(np.abs(det.components_), np.abs(vt), atol=1e-9)
    flips = np.sign((det.components_ * vt).sum(axis=1))
    expected = (np.linalg.norm(Z[:, None, :] - (vt * flips[:, None])[None], axis=2) / ratio).sum(axis=1)
    np.testing.assert_allclose(det.score(X), expected, rtol=1e-9)


def test_fit_rejects_non_finite_features():
    X = np.ones((10, 3))
    X[2, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN or infinite"):
        make("ocsvm").fit(X)


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("case", ["constant", "duplicated rows", "two rows"])
def test_degenerate_training_data_gives_finite_scores(name, case):
    X = {
        "constant": np.ones((10, 3)),
        "duplicated rows": np.tile([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], (5, 1)),
        "two rows": np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]),
    }[case]
    params = {"pca": {"score_method": "weighted_distance", "n_components": None}}.get(name, {})
    det = make(name, **params).fit(X)
    scores = det.score(np.vstack([X, X + 5.0]))
    assert np.isfinite(scores).all() and np.isfinite(det.threshold_)
