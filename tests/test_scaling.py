"""Scalers: fitted statistics, constant features, state round trip, width checks, defaults."""

from __future__ import annotations

import io

import numpy as np
import pytest

from netml_core.errors import NotFittedError, ParameterError
from netml_core.scaling import SCALERS, default_scaler_for, make_scaler

X = np.array([[1.0, 10.0, 5.0], [2.0, 20.0, 5.0], [3.0, 60.0, 5.0], [6.0, 30.0, 5.0]])


def test_standard_scaler_matches_population_statistics():
    Z = make_scaler("standard").fit_transform(X)
    assert np.allclose(Z[:, :2].mean(axis=0), 0.0) and np.allclose(Z[:, :2].std(axis=0), 1.0)
    assert np.array_equal(Z[:, 2], np.zeros(4)), "a constant feature is centred, not divided by 0"
    from sklearn.preprocessing import StandardScaler

    np.testing.assert_allclose(Z, StandardScaler().fit_transform(X), rtol=1e-12)


def test_minmax_scaler_maps_training_range_to_unit_interval():
    s = make_scaler("minmax").fit(X)
    Z = s.transform(X)
    assert np.array_equal(Z[:, 0], [0.0, 0.2, 0.4, 1.0])
    assert np.array_equal(Z[:, 1], [0.0, 0.2, 1.0, 0.4])
    assert np.array_equal(Z[:, 2], np.zeros(4))
    # new data outside the training range is not clipped: anomalies must stay visible
    assert np.array_equal(s.transform([[11.0, 110.0, 6.0]]), [[2.0, 2.0, 1.0]])


def test_none_is_identity_but_still_checks_width():
    s = make_scaler("none").fit(X)
    assert np.array_equal(s.transform(X), X)
    with pytest.raises(ParameterError, match="fitted on 3 features, got 2"):
        s.transform(X[:, :2])


@pytest.mark.parametrize("name", list(SCALERS))
def test_state_round_trip_through_npz(name):
    s = make_scaler(name).fit(X)
    buf = io.BytesIO()
    np.savez(buf, **s.get_state())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        restored = make_scaler(name).set_state({k: npz[k] for k in npz.files})
    new = np.array([[0.5, 45.0, 7.0]])
    assert np.array_equal(restored.transform(new), s.transform(new))


def test_errors_are_one_line():
    with pytest.raises(ParameterError, match=r"unknown scaler 'robust'; known: standard, minmax, none"):
        make_scaler("robust")
    with pytest.raises(NotFittedError):
        make_scaler("standard").transform(X)
    with pytest.raises(ParameterError, match="2-D"):
        make_scaler("standard").fit(np.arange(3.0))


def test_names_are_case_insensitive_and_none_means_no_scaling():
    assert make_scaler("Standard").name == "standard"
    assert make_scaler(None).name == "none"
    assert make_scaler("MINMAX").name == "minmax"


def test_documented_defaults():
    builtin = ("ocsvm", "kde", "gmm", "pca", "ae", "iforest")
    assert {name: default_scaler_for(name) for name in builtin} == {
        "ocsvm": "standard", "kde": "standard", "gmm": "standard",
        "pca": "standard", "ae": "standard", "iforest": "none",
    }
    assert default_scaler_for("IForest") == "none"
    assert default_scaler_for("zscore") == "standard"  # any detector we do not know


def test_iforest_scores_do_not_depend_on_per_feature_scaling():
    """Why iforest defaults to no scaling: an affine map per feature leaves its trees unchanged."""
    from netml_core.registry import get_registry

    rng = np.random.default_rng(3)
    A = rng.normal(size=(300, 4)) * [1.0, 1e3, 10.0, 50.0] + [0.0, 1e4, 0.0, -7.0]
    B = rng.normal(size=(40, 4)) * [2.0, 2e3, 20.0, 100.0] + [0.0, 1e4, 0.0, -7.0]
    raw = get_registry().create("detector", "iforest", {"random_state": 0}).fit(A).score(B)
    # scaled by powers of two, so float32 rounding inside the trees cannot differ either (tiny
    # feature ranges would: scikit-learn treats a node range below 1e-7 as constant)
    scaled_A, scaled_B = A * [2.0, 0.5, 4.0, 0.25], B * [2.0, 0.5, 4.0, 0.25]
    scaled = get_registry().create("detector", "iforest", {"random_state": 0}).fit(scaled_A).score(scaled_B)
    assert np.array_equal(raw, scaled)
