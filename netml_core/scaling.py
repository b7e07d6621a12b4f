"""Feature scaling, a pipeline step between the feature matrix and the detector.

A scaler is fitted on the training matrix at ``netml learn`` time and saved with the model, so that
``netml classify`` applies exactly the training statistics to a new capture. Scalers are plain numpy
(no scikit-learn needed in the core); their state is two float64 arrays.

Each detector class names its default in ``default_scaler`` (a third-party plugin sets its own);
the built-ins choose, and why:

- ``ocsvm``, ``kde``, ``gmm``, ``pca``, ``ae``: ``standard``. These compare flows by Euclidean
  distance, density or variance. Raw features mix units (seconds of inter-arrival time next to
  bytes, packet counts, rates), so without scaling the largest-unit column decides everything, and a
  fixed kernel bandwidth (KDE 1.0, OCSVM ``gamma``) or ``reg_covar`` (GMM) means nothing. The
  autoencoder trains by gradient descent, which wants inputs of unit scale.
- ``iforest``: ``none``. Isolation trees split one feature at a time at a uniform point between
  that feature's min and max, so any per-feature affine map gives the same trees and scores:
  scaling would only cost time and add state.

A detector that names none gets ``standard``.
"""

from __future__ import annotations

import numpy as np

from .components import Component
from .errors import NotFittedError, ParameterError

#: scaler used for a detector class that names no ``default_scaler`` (or cannot be loaded)
FALLBACK_SCALER = "standard"


class Scaler(Component):
    """Per-feature affine map ``(X - offset_) / scale_`` learned from training flows."""

    name = ""

    def fit(self, X) -> "Scaler":
        X = _matrix(X)
        self.offset_, self.scale_ = self._fit_arrays(X)
        return self

    def transform(self, X) -> np.ndarray:
        X = _matrix(X)
        if getattr(self, "scale_", None) is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit first")
        if X.shape[1] != self.scale_.shape[0]:
            raise ParameterError(
                f"{self.name} scaler was fitted on {self.scale_.shape[0]} features, got {X.shape[1]}"
            )
        return (X - self.offset_) / self.scale_

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def get_state(self) -> dict:
        return {"offset_": np.asarray(self.offset_), "scale_": np.asarray(self.scale_)}

    def set_state(self, state: dict) -> "Scaler":
        self.offset_ = np.asarray(state["offset_"], dtype=np.float64)
        self.scale_ = np.asarray(state["scale_"], dtype=np.float64)
        return self

    def _fit_arrays(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class StandardScaler(Scaler):
    """Zero mean and unit variance per feature (population std); constant features only centred."""

    name = "standard"

    def _fit_arrays(self, X):
        mean = X.mean(axis=0)
        var = X.var(axis=0)
        return mean, _safe_scale(np.sqrt(var), var, mean, len(X))


class MinMaxScaler(Scaler):
    """Maps each feature's training range to [0, 1]; constant features only shifted to 0."""

    name = "minmax"

    def _fit_arrays(self, X):
        lo, hi = X.min(axis=0), X.max(axis=0)
        span = hi - lo
        span = np.where(span <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(hi), 1.0), 1.0, span)
        return lo, span


class IdentityScaler(Scaler):
    """No scaling: features go to the detector as extracted."""

    name = "none"

    def _fit_arrays(self, X):
        # still fitted (zeros/ones), so a capture with another feature width is caught in transform
        return np.zeros(X.shape[1]), np.ones(X.shape[1])


SCALERS: dict[str, type[Scaler]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "none": IdentityScaler,
}


def make_scaler(name: str | None) -> Scaler:
    """A new, unfitted scaler by name (``standard``, ``minmax`` or ``none``; None means ``none``)."""
    key = "none" if name is None else str(name).strip().lower()
    if key in ("", "identity", "null", "off"):
        key = "none"
    try:
        return SCALERS[key]()
    except KeyError:
        raise ParameterError(f"unknown scaler {name!r}; known: {', '.join(SCALERS)}") from None


def default_scaler_for(detector) -> str:
    """The scaler used for ``detector`` (a registered name, class or instance) when the user names none."""
    if isinstance(detector, str):
        from .errors import NetmlError
        from .registry import get_registry

        try:
            detector = get_registry().component_class("detector", detector)
        except NetmlError:
            return FALLBACK_SCALER
    return getattr(detector, "default_scaler", None) or FALLBACK_SCALER


def _safe_scale(std: np.ndarray, var: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """Replace the scale of (numerically) constant features by 1, as scikit-learn does.

    A feature counts as constant when its variance is within rounding error of zero given its mean,
    so that dividing by it would only amplify floating-point noise.
    """
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    return np.where(constant | (std == 0), 1.0, std)


def _matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ParameterError(f"expected a 2-D feature matrix, got shape {X.shape}")
    return X
