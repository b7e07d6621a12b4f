"""Train/test split and detection metrics in plain numpy (no scikit-learn needed in the core).

Each matches scikit-learn's definition (the split draws the same permutation as
``train_test_split``, average precision is the step-wise sum), so figures agree with papers and
notebooks that use it.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ParameterError


def train_test_split_indices(n: int, test_size: float, random_state: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices, identical to ``sklearn.model_selection.train_test_split``.

    scikit-learn's ShuffleSplit draws one permutation from ``RandomState(random_state)``; the first
    ``ceil(test_size * n)`` rows are the test set and the next ``n - n_test`` the training set. Using
    the same draw keeps the original netml CLI's split (test_size=0.33, random_state=42).
    """
    if not 0.0 <= test_size < 1.0:
        raise ParameterError(f"--test-size must be in [0, 1), got {test_size}")
    n_test = int(math.ceil(test_size * n))
    n_train = n - n_test
    if n_test == 0:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if n_train <= 0:
        raise ParameterError(f"--test-size {test_size} leaves no training flow out of {n}")
    rng = np.random.RandomState(random_state) if random_state is not None else np.random.mtrand._rand
    perm = rng.permutation(n)
    return perm[n_test:n_test + n_train], perm[:n_test]


def roc_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, positives = label 1, starting at (0, 0)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each run of tied scores
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    P, N = tps[-1] if len(tps) else 0, fps[-1] if len(fps) else 0
    tpr = np.r_[0.0, tps / P] if P else np.full(len(tps) + 1, np.nan)
    fpr = np.r_[0.0, fps / N] if N else np.full(len(fps) + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids, ties handled); NaN when one class is absent."""
    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(y, scores)
    return float(np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid") else np.trapz(tpr, fpr))


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise average precision (scikit-learn's definition); NaN without positives."""
    y = np.asarray(y).astype(bool)
    if not y.any():
        return float("nan")
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, ys = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(ys)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_recall_at(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Precision and recall of 0/1 predictions; NaN where undefined (nothing flagged, no positives)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(predicted).astype(bool)
    tp = int(np.count_nonzero(y & p))
    precision = tp / int(np.count_nonzero(p)) if p.any() else float("nan")
    recall = tp / int(np.count_nonzero(y)) if y.any() else float("nan")
    return float(precision), float(recall)


def false_positive_rate(y: np.ndarray, predicted: np.ndarray) -> float:
    """Share of the normal flows (label 0) that are flagged; NaN without normal flows."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(predicted).astype(bool)
    n_normal = int(np.count_nonzero(~y))
    return float(np.count_nonzero(p & ~y) / n_normal) if n_normal else float("nan")
