"""Threshold calibration: a detector's cut-off set at a target false-positive rate.

A novelty detector fitted on normal flows scores those same flows optimistically, so a threshold
taken from its training scores (netml 0.x: the 0.9 quantile, 10% of normal flows flagged by
design) says little about new traffic. Here part of the normal training flows is held out, never
seen by the scaler or the detector, and the threshold is the conformal quantile of their scores:
the ``ceil((n + 1)(1 - fpr))``-th smallest of ``n`` held-out scores. If new normal flows are
exchangeable with the held-out ones, at most ``fpr`` of them score above it (split conformal
prediction). With fewer than ``1/fpr - 1`` held-out flows no score meets that bound and the
largest held-out score is taken; ``resolvable`` says so, and the CLI warns.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from .defaults import DEFAULT_CALIBRATION_SIZE
from .errors import ParameterError

#: below this many training rows nothing is held out (the threshold comes from the fit rows)
MIN_ROWS_TO_HOLD_OUT = 10


def check_fpr(value) -> float:
    """A target false-positive rate in (0, 0.5]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (0.0 < float(value) <= 0.5):
        raise ParameterError(f"--fpr must be a number in (0, 0.5], got {value!r}")
    return float(value)


def split_calibration(n: int, calibration_size: float | None, random_state: int | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out calibration rows); nothing is held out below ``MIN_ROWS_TO_HOLD_OUT``."""
    size = DEFAULT_CALIBRATION_SIZE if calibration_size is None else calibration_size
    if isinstance(size, bool) or not isinstance(size, Real) or not (0.0 <= float(size) < 1.0):
        raise ParameterError(f"calibration size must be in [0, 1), got {size!r}")
    n_cal = int(math.floor(float(size) * n))
    if n < MIN_ROWS_TO_HOLD_OUT or n_cal < 1 or n - n_cal < 2:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    perm = np.random.RandomState(random_state).permutation(n)
    return np.sort(perm[n_cal:]), np.sort(perm[:n_cal])


def calibrate_threshold(scores: np.ndarray, fpr: float, *, held_out: bool) -> dict:
    """The conformal threshold of ``scores`` at ``fpr`` and what it means, as a JSON-able dict."""
    fpr = check_fpr(fpr)
    s = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(s)
    rank = math.ceil((n + 1) * (1.0 - fpr))  # 1-based rank of the conformal quantile
    resolvable = rank <= n
    threshold = float(s[min(rank, n) - 1])
    return {
        "method": "held-out normal flows" if held_out else "training flows (too few to hold out)",
        "fpr_target": fpr,
        "n_calibration": int(n),
        "calibration_fpr": float(np.count_nonzero(s > threshold) / n) if n else float("nan"),
        "resolvable": bool(resolvable and held_out),
        "threshold": threshold,
        "score_spread": float(s[-1] - s[0]) if n else 0.0,
    }
