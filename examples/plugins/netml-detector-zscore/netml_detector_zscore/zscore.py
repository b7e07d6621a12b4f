"""The ``zscore`` detector: distance from the training distribution in units of its spread.

Each feature is standardised with the training mean and standard deviation; a flow's score is the
mean (``reduce="mean"``) or maximum (``reduce="max"``) absolute z-score over its features. Features
that are constant in training would divide by zero, so their spread is floored at ``min_std``
(in the feature's own units): any change in such a feature then counts as strongly anomalous.
"""

from __future__ import annotations

import numpy as np

from netml_core.components import Detector
from netml_core.errors import ModelFileError, ParameterError


class ZScoreDetector(Detector):
    """Mean absolute z-score against the training flows (higher = more anomalous)."""

    param_docs = {
        "contamination": "expected fraction of anomalies in training; sets threshold_ (0 < c < 0.5)",
        "reduce": "how per-feature |z| values become one score: 'mean' or 'max'",
        "min_std": "floor for a feature's training standard deviation (feature units)",
    }

    def __init__(self, contamination: float = 0.1, reduce: str = "mean", min_std: float = 1e-6):
        if not 0.0 < float(contamination) < 0.5:
            raise ParameterError(f"contamination must be in (0, 0.5), got {contamination!r}")
        if reduce not in ("mean", "max"):
            raise ParameterError(f"reduce must be 'mean' or 'max', got {reduce!r}")
        if not float(min_std) > 0.0:
            raise ParameterError(f"min_std must be > 0, got {min_std!r}")
        self.contamination = contamination
        self.reduce = reduce
        self.min_std = min_std

    def _fit(self, X: np.ndarray) -> None:
        if X.shape[0] < 2:
            raise ParameterError(f"zscore needs at least 2 training flows, got {X.shape[0]}")
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(X.std(axis=0), float(self.min_std))

    def _score(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted("mean_")
        if X.shape[1] != self.mean_.shape[0]:
            raise ParameterError(
                f"feature matrix has {X.shape[1]} columns, the detector was fitted on {self.mean_.shape[0]}"
            )
        z = np.abs((X - self.mean_) / self.scale_)
        return z.max(axis=1) if self.reduce == "max" else z.mean(axis=1)

    def get_state(self) -> dict:
        """Fitted state as arrays (saved as npz by the model file; no pickle)."""
        self._check_fitted("threshold_")
        return {"mean_": self.mean_, "scale_": self.scale_, "threshold_": float(self.threshold_)}

    def set_state(self, state: dict) -> "ZScoreDetector":
        try:
            mean = np.asarray(state["mean_"], dtype=np.float64)
            scale = np.asarray(state["scale_"], dtype=np.float64)
            threshold = float(state["threshold_"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"zscore state is incomplete or malformed: {exc}") from None
        if mean.ndim != 1 or mean.shape != scale.shape or not np.all(scale > 0):
            raise ModelFileError(
                f"zscore state is inconsistent: mean_ {mean.shape}, scale_ {scale.shape}"
            )
        self.mean_, self.scale_, self.threshold_ = mean, scale, threshold
        return self
