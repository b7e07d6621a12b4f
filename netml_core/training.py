"""Fit a pipeline's detector on labelled or unlabelled flows and measure it: what ``netml learn``
does after extraction, callable from Python.

With labels the flows are split into train/test (the original CLI's 0.33 / seed 42 by default),
the detector is fitted on the normal training flows (or all of them, as netml 0.x did) and its
threshold calibrated on held-out normal flows at a target false-positive rate; the test flows then
give ROC AUC, average precision, and precision, recall and FPR at that threshold. Without labels
every flow is training data (assumed normal) and nothing is evaluated. ``warnings`` names what
makes the fitted model untrustworthy (too few flows, constant features, tied scores, a target FPR
the held-out flows cannot resolve), with what to do about it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import NetmlError
from .metrics import average_precision, false_positive_rate, precision_recall_at, roc_auc, train_test_split_indices

#: fewer training flows than this earns a warning
MIN_TRAINING_FLOWS = 10


@dataclass
class TrainingRun:
    """What ``train_and_evaluate`` did: row indices of each split, test scores, metrics, warnings."""

    metrics: dict[str, Any]
    train_idx: np.ndarray
    test_idx: np.ndarray
    fit_idx: np.ndarray
    test_scores: np.ndarray
    warnings: list[str] = field(default_factory=list)


def train_and_evaluate(pipe, X: np.ndarray, y: np.ndarray | None, *, test_size: float, random_state: int,
                       train_on: str = "normal", fpr: float | None = None,
                       calibration_size: float | None = None, sources: Sequence[str] = ()) -> TrainingRun:
    """Split, fit (``pipe.fit_detector``), score the test rows and compute the metrics."""
    n = X.shape[0]
    labelled = y is not None and len(y) == n and bool(np.all(y >= 0))
    if labelled:
        train_idx, test_idx = train_test_split_indices(n, test_size, random_state)
    else:
        train_idx, test_idx = np.arange(n), np.zeros(0, dtype=np.int64)
    fit_idx = train_idx
    if labelled and train_on == "normal":
        fit_idx = train_idx[y[train_idx] == 0]
        if len(fit_idx) == 0:
            raise NetmlError("no normal flow in the training split to fit on (use --train-on all)")

    if len(fit_idx) < 2:
        where = ", ".join(str(x) for x in sources) or "the training data"
        which = "normal training flow" if labelled and train_on == "normal" else "training flow"
        raise NetmlError(f"only {len(fit_idx)} {which}{'s' if len(fit_idx) != 1 else ''} in {where} after the "
                         "train/test split: a detector needs at least 2; give more traffic (or labels that "
                         "match more of its flows)")
    pipe.warm_up(X[fit_idx])  # library imports are not training time
    t0 = time.perf_counter()
    pipe.fit_detector(X[fit_idx], fpr=fpr, calibration_size=calibration_size, random_state=random_state)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_scores = pipe.score(X[test_idx])
    test_seconds = time.perf_counter() - t0
    calibration = dict(getattr(pipe, "calibration_", {}) or {})

    metrics: dict[str, Any] = {
        "algorithm": pipe.names["detector"], "feature": pipe.names["feature"],
        "feature_variant": feature_label(pipe), "scaler": pipe.names["scaler"],
        "reader": pipe.names["reader"], "splitter": pipe.names["flow_splitter"],
        "train_on": train_on if labelled else "all (unlabelled)",
        "n_flows": int(n), "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
        "n_fit": int(calibration.get("n_fit", len(fit_idx))), "train_seconds": train_seconds,
        "test_seconds": test_seconds, "threshold": pipe.threshold,
        "fpr_target": fpr, "calibration": calibration,
        "test_size": test_size if labelled else 0.0, "random_state": random_state,
        "roc_auc": None, "average_precision": None, "precision": None, "recall": None, "fpr": None,
    }
    if labelled:
        ytr, yte = y[train_idx], y[test_idx]
        metrics.update({
            "n_train_normal": int(np.count_nonzero(ytr == 0)), "n_train_anomalous": int(np.count_nonzero(ytr == 1)),
            "n_test_normal": int(np.count_nonzero(yte == 0)), "n_test_anomalous": int(np.count_nonzero(yte == 1)),
        })
        if len(test_idx):
            pred = (test_scores > pipe.threshold).astype(np.int64)
            precision, recall = precision_recall_at(yte, pred)
            metrics.update({"roc_auc": nan_none(roc_auc(yte, test_scores)),
                            "average_precision": nan_none(average_precision(yte, test_scores)),
                            "precision": nan_none(precision), "recall": nan_none(recall),
                            "fpr": nan_none(false_positive_rate(yte, pred))})
    warnings = training_warnings(X[fit_idx], calibration, fpr, sources)
    return TrainingRun(metrics, train_idx, test_idx, fit_idx, test_scores, warnings)


def training_warnings(X_fit: np.ndarray, calibration: dict, fpr: float | None, sources: Sequence[str]) -> list[str]:
    """One sentence per reason not to trust the fitted model, naming the captures and a remedy."""
    where = ", ".join(str(s) for s in sources) or "the training data"
    out = []
    n = len(X_fit)
    if n < MIN_TRAINING_FLOWS:
        out.append(f"only {n} training flow{'s' if n != 1 else ''} in {where}: too few to learn what normal "
                   "traffic looks like; train on a longer capture or more captures")
    if n and np.all(np.ptp(X_fit, axis=0) == 0):
        out.append(f"every feature value is the same in all {n} training flows of {where}: the detector "
                   "cannot tell flows apart; try another --feature or more varied traffic")
    elif calibration.get("score_spread") == 0.0 and calibration.get("n_calibration", 0) > 1:
        out.append(f"all {calibration['n_calibration']} calibration flows of {where} got the same score: "
                   "any flow unlike them is flagged; try another --feature or --algorithm")
    return out


def feature_label(pipe) -> str:
    """The feature name with its switches, e.g. ``iat+fft+header``, so a summary says what ran."""
    feature = pipe.components["feature"]
    flags = [f for f in ("fft", "header") if getattr(feature, f, False)]
    if pipe.names["feature"] == "context":  # a composition: name its base first
        return "+".join([str(getattr(feature, "base", "?")), "context"])
    return "+".join([pipe.names["feature"], *flags])


def nan_none(v: float | None):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def flow_info(flows, capture: np.ndarray | None, sources: Sequence[str]) -> dict:
    """Flow keys and times as plain arrays, for scores.csv and the report (``flows``: a FlowTable,
    FlowKeys or FeaturesData; ``capture``: each flow's capture index, None for all the first)."""
    n = len(flows.first_ts)
    return {
        "src": flows.src, "dst": flows.dst, "sport": flows.sport, "dport": flows.dport,
        "proto": flows.proto, "first_ts": flows.first_ts, "last_ts": flows.last_ts,
        "capture": capture if capture is not None else np.zeros(n, dtype=np.int64),
        "sources": [str(s) for s in sources],
    }
