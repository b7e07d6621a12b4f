"""Kernel density novelty detector.

A KDE is its training sample plus a bandwidth, so the saved state is the training matrix itself;
loading rebuilds scikit-learn's KernelDensity from it (building the tree is deterministic), which
gives the same scores as at training time.
"""

from __future__ import annotations

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ParameterError
from netml_core.params import check_bool, check_choice, check_contamination, check_number

KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")
TREES = ("auto", "kd_tree", "ball_tree")


class KernelDensityDetector(Detector):
    """Kernel density estimate (scikit-learn KernelDensity): negative log-density of normal flows

    Score = ``-log p(x)`` under the density estimated from the training flows (higher = rarer).
    Defaults are the original netml's (gaussian kernel, bandwidth 1.0, exact: atol = rtol = 0).
    """

    param_docs = {
        "bandwidth": "kernel width in (scaled) feature units, > 0; or 'scott' / 'silverman' rules",
        "kernel": "kernel: gaussian, tophat, epanechnikov, exponential, linear or cosine",
        "algorithm": "neighbour tree: auto, kd_tree or ball_tree (speed only)",
        "metric": "distance metric of the tree (euclidean for the usual KDE)",
        "atol": "absolute tolerance of the density (0 = exact)",
        "rtol": "relative tolerance of the density (0 = exact)",
        "breadth_first": "breadth-first tree traversal (speed only)",
        "leaf_size": "tree leaf size (speed only)",
        "contamination": "expected fraction of anomalies among training flows; sets the predict threshold",
    }

    def __init__(self, bandwidth=1.0, kernel="gaussian", algorithm="auto", metric="euclidean",
                 atol=0.0, rtol=0.0, breadth_first=True, leaf_size=40, contamination=0.1):
        if isinstance(bandwidth, str):
            check_choice("bandwidth", bandwidth, ("scott", "silverman"))
        else:
            check_number("bandwidth", bandwidth, low=0.0, low_open=True)
        check_choice("kernel", kernel, KERNELS)
        check_choice("algorithm", algorithm, TREES)
        if not isinstance(metric, str):
            raise ParameterError(f"parameter 'metric' must be a metric name, got {metric!r}")
        check_number("atol", atol, low=0.0)
        check_number("rtol", rtol, low=0.0)
        check_bool("breadth_first", breadth_first)
        check_number("leaf_size", leaf_size, low=1, integer=True)
        check_contamination(contamination)
        self.bandwidth = bandwidth
        self.kernel = kernel
        self.algorithm = algorithm
        self.metric = metric
        self.atol = atol
        self.rtol = rtol
        self.breadth_first = breadth_first
        self.leaf_size = leaf_size
        self.contamination = contamination

    def _build(self, X: np.ndarray):
        from sklearn.neighbors import KernelDensity

        kde = KernelDensity(bandwidth=self.bandwidth, kernel=self.kernel, algorithm=self.algorithm,
                            metric=self.metric, atol=self.atol, rtol=self.rtol,
                            breadth_first=self.breadth_first, leaf_size=self.leaf_size)
        try:
            return kde.fit(X)
        except ValueError as exc:  # e.g. a metric the tree does not know
            raise ParameterError(f"kde: {str(exc).splitlines()[0]}") from None

    def _fit(self, X: np.ndarray) -> None:
        self.train_X_ = np.ascontiguousarray(X, dtype=np.float64)
        self._kde = self._build(self.train_X_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.train_X_.shape[1]:
            raise ParameterError(f"kde was fitted on {self.train_X_.shape[1]} features, got {X.shape[1]}")
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)
        if getattr(self, "_kde", None) is None:
            self._kde = self._build(self.train_X_)
        return -self._kde.score_samples(X)

    def get_state(self) -> dict:
        return {"threshold_": self.threshold_, "train_X_": self.train_X_}

    def set_state(self, state: dict) -> "KernelDensityDetector":
        self.threshold_ = float(state["threshold_"])
        self.train_X_ = np.ascontiguousarray(state["train_X_"], dtype=np.float64)
        self._kde = None  # rebuilt on first score
        return self
