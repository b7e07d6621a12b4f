"""PCA novelty detector with two scores.

- ``weighted_distance`` (the original netml's score, from PyOD's PCA): standardise with the training
  mean/std, then per sample sum over the kept principal components of the Euclidean distance from
  the sample to the component vector divided by that component's explained-variance ratio. Low-
  variance components get the largest weights. With as many components as the data's rank or more,
  the trailing ratios are ~1e-30 rounding noise and dominate the sum: this is the original's
  behaviour and is kept for parity, not recommended.
- ``reconstruction`` (default): the Euclidean norm of what the kept components do not explain,
  ``||z - P z||`` with ``z`` the standardised, centred sample; by default the components keep 95 %
  of the training variance.

scikit-learn's full SVD fits the components; scoring is numpy on the saved arrays.
"""

from __future__ import annotations

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ParameterError
from netml_core import state_checks as sc
from netml_core.params import check_bool, check_choice, check_contamination, check_number

SCORE_METHODS = ("reconstruction", "weighted_distance")

#: floats per block of the (samples x components x features) distance tensor
_BLOCK_FLOATS = 4_000_000


class PCADetector(Detector):
    """Principal component analysis: PyOD's weighted distance to the components, or reconstruction error

    ``score_method: weighted_distance`` with ``n_components: null`` is the original netml's PCA.
    """

    param_docs = {
        "n_components": "components kept: an integer, a fraction in (0, 1) of training variance to keep, or null for all (min(n_flows, n_features))",
        "score_method": "reconstruction (norm of the residual off the kept components) or weighted_distance (PyOD/original netml)",
        "standardize": "standardise features with the training mean/std first (PyOD does; harmless after --scaler standard)",
        "weighted": "weighted_distance only: divide each component's distance by its explained-variance ratio",
        "contamination": "expected fraction of anomalies among training flows; sets the predict threshold",
    }

    def __init__(self, n_components=0.95, score_method="reconstruction", standardize=True,
                 weighted=True, contamination=0.1):
        if n_components is not None:
            if isinstance(n_components, float):
                check_number("n_components", n_components, low=0.0, high=1.0, low_open=True, high_open=True)
            else:
                check_number("n_components", n_components, low=1, integer=True)
        check_choice("score_method", score_method, SCORE_METHODS)
        check_bool("standardize", standardize)
        check_bool("weighted", weighted)
        check_contamination(contamination)
        self.n_components = n_components
        self.score_method = score_method
        self.standardize = standardize
        self.weighted = weighted
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        if isinstance(self.n_components, int) and self.n_components > min(X.shape):
            raise ParameterError(
                f"pca: n_components={self.n_components} exceeds min(n_flows, n_features) = {min(X.shape)}"
            )
        if self.standardize:
            scaler = StandardScaler().fit(X)
            self.mean_ = np.asarray(scaler.mean_, dtype=np.float64)
            self.scale_ = np.asarray(scaler.scale_, dtype=np.float64)
        else:
            self.mean_ = np.zeros(X.shape[1])
            self.scale_ = np.ones(X.shape[1])
        Z = (X - self.mean_) / self.scale_
        with np.errstate(invalid="ignore", divide="ignore"):  # constant data: 0/0 ratios, see _weights
            pca = PCA(n_components=self.n_components, svd_solver="full").fit(Z)
        self.components_ = np.ascontiguousarray(pca.components_, dtype=np.float64)
        self.center_ = np.asarray(pca.mean_, dtype=np.float64)
        self.explained_variance_ratio_ = np.asarray(pca.explained_variance_ratio_, dtype=np.float64)

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.mean_.shape[0]:
            raise ParameterError(f"pca was fitted on {self.mean_.shape[0]} features, got {X.shape[1]}")
        Z = (X - self.mean_) / self.scale_
        if self.score_method == "reconstruction":
            Zc = Z - self.center_
            # einsum, not BLAS matmul: a flow's score must not depend on how many rows are scored
            # with it (classify on the training capture must repeat the training scores bit for bit)
            C = self.components_
            residual = Zc - np.einsum("ik,kj->ij", np.einsum("ij,kj->ik", Zc, C), C)
            return np.sqrt((residual * residual).sum(axis=1))
        C = self.components_
        w = self._weights() if self.weighted else np.ones(len(C))
        out = np.empty(len(Z), dtype=np.float64)
        step = max(1, _BLOCK_FLOATS // max(1, C.size))
        for start in range(0, len(Z), step):
            diff = Z[start:start + step, None, :] - C[None, :, :]
            dist = np.sqrt((diff * diff).sum(axis=2))
            out[start:start + step] = (dist / w).sum(axis=1)
        return out

    def _weights(self) -> np.ndarray:
        """Explained-variance ratios as divisors; a ratio of exactly 0 (or NaN: constant training
        data) would give inf/NaN scores, so it takes the smallest positive ratio (or 1 if none).
        Tiny positive ratios are kept as they are, which is what the original did."""
        w = np.where(np.isfinite(self.explained_variance_ratio_), self.explained_variance_ratio_, 0.0)
        positive = w[w > 0]
        return np.where(w > 0, w, positive.min() if positive.size else 1.0)

    _ARRAYS = ("mean_", "scale_", "components_", "center_", "explained_variance_ratio_")

    def get_state(self) -> dict:
        state = {"threshold_": self.threshold_}
        state.update({k: getattr(self, k) for k in self._ARRAYS})
        return state

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """Standardisation and components of one width d: ``(k, d)`` components, k ratios."""
        sc.threshold(state, "pca")
        d = len(sc.array(state, "mean_", "pca", (None,), min_rows=1))
        sc.array(state, "scale_", "pca", (d,), positive=True)
        k = len(sc.array(state, "components_", "pca", (None, d)))
        sc.array(state, "center_", "pca", (d,))
        sc.array(state, "explained_variance_ratio_", "pca", (k,), allow_nan=True)  # NaN: see _weights
        return sc.width(d, "pca", "mean width")

    def set_state(self, state: dict) -> "PCADetector":
        self.check_state(self.get_params(), state)
        self.threshold_ = float(state["threshold_"])
        for k in self._ARRAYS:
            setattr(self, k, np.asarray(state[k], dtype=np.float64))
        return self
