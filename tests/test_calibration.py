"""Threshold calibration at a target false-positive rate, degenerate-training warnings, gmm's
component cap, and what `netml learn` reports about them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netml_core.calibration import calibrate_threshold, check_fpr, split_calibration
from netml_core.errors import ParameterError
from netml_core.pipeline import Pipeline
from netml_core.training import training_warnings

from helpers import cli, demo_data


def test_conformal_rank_and_measured_calibration_fpr():
    scores = np.arange(1.0, 101.0)[::-1]  # order does not matter
    cal = calibrate_threshold(scores, 0.05, held_out=True)
    # ceil(101 * 0.95) = 96th smallest of 1..100
    assert cal["threshold"] == 96.0 and cal["calibration_fpr"] == 0.04
    assert cal["resolvable"] and cal["n_calibration"] == 100 and cal["score_spread"] == 99.0


def test_too_few_held_out_flows_take_the_highest_and_say_so():
    cal = calibrate_threshold(np.array([3.0, 1.0, 2.0]), 0.01, held_out=True)
    assert cal["threshold"] == 3.0 and cal["calibration_fpr"] == 0.0 and not cal["resolvable"]
    assert not calibrate_threshold(np.arange(200.0), 0.01, held_out=False)["resolvable"]


def test_split_holds_out_a_fixed_share_deterministically():
    fit, cal = split_calibration(100, 0.2, 42)
    assert len(fit) == 80 and len(cal) == 20 and not set(fit) & set(cal)
    assert sorted([*fit, *cal]) == list(range(100))
    again = split_calibration(100, 0.2, 42)
    assert np.array_equal(again[1], cal) and not np.array_equal(split_calibration(100, 0.2, 1)[1], cal)
    fit, cal = split_calibration(9, 0.2, 42)  # too few rows to hold any out
    assert len(fit) == 9 and len(cal) == 0


@pytest.mark.parametrize("bad", [0, 0.6, -0.1, float("nan"), "0.1", True])
def test_bad_fpr_is_one_line(bad):
    with pytest.raises(ParameterError, match="--fpr must be a number in"):
        check_fpr(bad)


@pytest.mark.parametrize("detector", ["gmm", "ocsvm", "kde"])
def test_calibrated_threshold_meets_the_target_on_new_normal_data(detector):
    rng = np.random.RandomState(0)
    pipe = Pipeline(detector=detector)
    pipe.fit_detector(rng.randn(2000, 4), fpr=0.02, random_state=3)
    assert pipe.calibration_["n_fit"] == 1600 and pipe.calibration_["n_calibration"] == 400
    assert pipe.detector.threshold_ == pipe.calibration_["threshold"]
    fresh = (pipe.score(rng.randn(20000, 4)) > pipe.threshold).mean()
    assert 0.01 <= fresh <= 0.035, fresh  # the 0.x training-score quantile would flag about 0.10


def test_without_fpr_the_detector_keeps_its_contamination_threshold():
    pipe = Pipeline(detector="gmm")
    X = np.random.RandomState(1).randn(500, 3)
    pipe.fit_detector(X)
    assert pipe.calibration_ == {"method": "contamination", "n_fit": 500}
    assert (pipe.score(X) > pipe.threshold).mean() == pytest.approx(0.1, abs=0.005)


def test_degenerate_training_sets_are_named():
    few = training_warnings(np.ones((3, 2)), {}, 0.01, ["a.pcap"])
    assert few[0].startswith("only 3 training flows in a.pcap: too few")
    assert "every feature value is the same in all 3 training flows of a.pcap" in few[1]
    tied = training_warnings(np.arange(40.0).reshape(20, 2), {"score_spread": 0.0, "n_calibration": 5}, 0.01, ["b"])
    assert tied == ["all 5 calibration flows of b got the same score: any flow unlike them is flagged; "
                    "try another --feature or --algorithm"]
    assert training_warnings(np.random.RandomState(0).randn(50, 3), {"score_spread": 1.0}, 0.01, ["c"]) == []


def test_gmm_fits_fewer_components_than_the_training_flows_can_support():
    rng = np.random.RandomState(0)
    small = Pipeline(detector="gmm")
    small.fit_detector(rng.randn(30, 38))  # 30 flows cannot support a 38-dim covariance per component
    assert small.detector.n_components_ == 1
    big = Pipeline(detector="gmm")
    big.fit_detector(rng.randn(400, 5))
    assert big.detector.n_components_ == 4 and big.detector.means_.shape == (4, 5)


def test_learn_reports_the_calibration_and_the_measured_fpr(tmp_path):
    data = demo_data()
    code, out, err = cli("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--fpr", "0.05",
                         "-o", tmp_path / "m.netml", "--report", tmp_path / "r")
    assert code == 0, err
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    cal = m["calibration"]
    assert m["fpr_target"] == 0.05 and cal["method"] == "held-out normal flows"
    # 91 labelled meter flows: 61 train (50 normal), 30 test; 10 of the 50 held out, too few for 5%
    assert (m["n_train_normal"], m["n_fit"], cal["n_calibration"]) == (50, 40, 10)
    line = [ln for ln in out.splitlines() if ln.startswith("threshold")][0]
    assert line.endswith("(FPR 0.05 on 10 held-out normal flows; too few to resolve it: their highest score)")
    assert not cal["resolvable"] and m["threshold"] == pytest.approx(float(line.split()[1]), rel=1e-5)
    fpr_line = [ln for ln in out.splitlines() if ln.startswith("FPR")][0]
    assert float(fpr_line.split()[1]) == pytest.approx(m["fpr"], abs=5e-4)
