"""One-class SVM novelty detector.

scikit-learn's libsvm fits the support vectors; scoring is done here in numpy from the fitted arrays
(support vectors, dual coefficients, intercept, kernel coefficient), so the saved state is four
arrays/numbers and the scores after loading equal the scores at training time bit for bit.
"""

from __future__ import annotations

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ParameterError
from netml_core import state_checks as sc
from netml_core.params import check_bool, check_choice, check_contamination, check_number

KERNELS = ("rbf", "linear", "poly", "sigmoid")

#: rows of X scored per kernel block, so memory stays ~ _BLOCK x n_support_vectors floats
_BLOCK = 4096


class OneClassSVMDetector(Detector):
    """One-class SVM (scikit-learn OneClassSVM): distance outside the learned support of normal flows

    Score = minus the SVM decision function (``rho - sum_i alpha_i K(sv_i, x)``): positive outside
    the learned region. Defaults are the original netml's (rbf, nu=0.5, gamma='scale').
    """

    param_docs = {
        "kernel": "kernel: rbf, linear, poly or sigmoid",
        "nu": "upper bound on the fraction of training flows outside the support, in (0, 1]",
        "gamma": "kernel coefficient (1/feature-units^2): 'scale' = 1/(n_features * var(X)), 'auto' = 1/n_features, or a number > 0",
        "degree": "degree of the poly kernel",
        "coef0": "independent term of the poly and sigmoid kernels",
        "tol": "stopping tolerance of the libsvm solver",
        "shrinking": "use libsvm's shrinking heuristic (speed only)",
        "cache_size": "libsvm kernel cache in MB (speed only)",
        "max_iter": "solver iteration limit, -1 for none",
        "contamination": "expected fraction of anomalies among training flows; sets the predict threshold",
    }

    def __init__(self, kernel="rbf", nu=0.5, gamma="scale", degree=3, coef0=0.0, tol=1e-3,
                 shrinking=True, cache_size=200.0, max_iter=-1, contamination=0.1):
        check_choice("kernel", kernel, KERNELS)
        check_number("nu", nu, low=0.0, high=1.0, low_open=True)
        if not (isinstance(gamma, str) and gamma in ("scale", "auto")):
            if isinstance(gamma, str):
                raise ParameterError(f"parameter 'gamma' must be 'scale', 'auto' or a number > 0, got {gamma!r}")
            check_number("gamma", gamma, low=0.0, low_open=True)
        check_number("degree", degree, low=0, integer=True)
        check_number("coef0", coef0)
        check_number("tol", tol, low=0.0, low_open=True)
        check_bool("shrinking", shrinking)
        check_number("cache_size", cache_size, low=0.0, low_open=True)
        check_number("max_iter", max_iter, low=-1, integer=True)
        check_contamination(contamination)
        self.kernel = kernel
        self.nu = nu
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.tol = tol
        self.shrinking = shrinking
        self.cache_size = cache_size
        self.max_iter = max_iter
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.svm import OneClassSVM

        if self.gamma == "scale":
            var = X.var()
            gamma = 1.0 / (X.shape[1] * var) if var != 0 else 1.0
        elif self.gamma == "auto":
            gamma = 1.0 / X.shape[1]
        else:
            gamma = float(self.gamma)
        svm = OneClassSVM(kernel=self.kernel, nu=self.nu, gamma=gamma, degree=self.degree,
                          coef0=self.coef0, tol=self.tol, shrinking=self.shrinking,
                          cache_size=self.cache_size, max_iter=self.max_iter)
        svm.fit(X)
        self.gamma_ = float(gamma)
        self.support_vectors_ = np.ascontiguousarray(svm.support_vectors_, dtype=np.float64)
        self.dual_coef_ = np.ascontiguousarray(svm.dual_coef_.ravel(), dtype=np.float64)
        self.intercept_ = float(svm.intercept_[0])

    def _kernel(self, X: np.ndarray) -> np.ndarray:
        sv = self.support_vectors_
        if self.kernel == "rbf":
            d2 = (X * X).sum(axis=1)[:, None] - 2.0 * (X @ sv.T) + (sv * sv).sum(axis=1)[None, :]
            return np.exp(-self.gamma_ * np.maximum(d2, 0.0))
        dot = X @ sv.T
        if self.kernel == "linear":
            return dot
        if self.kernel == "poly":
            return (self.gamma_ * dot + self.coef0) ** self.degree
        return np.tanh(self.gamma_ * dot + self.coef0)

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.support_vectors_.shape[1]:
            raise ParameterError(
                f"ocsvm was fitted on {self.support_vectors_.shape[1]} features, got {X.shape[1]}"
            )
        out = np.empty(len(X), dtype=np.float64)
        for start in range(0, len(X), _BLOCK):
            block = X[start:start + _BLOCK]
            out[start:start + _BLOCK] = -(self._kernel(block) @ self.dual_coef_ + self.intercept_)
        return out

    def get_state(self) -> dict:
        return {
            "threshold_": self.threshold_,
            "gamma_": self.gamma_,
            "intercept_": self.intercept_,
            "support_vectors_": self.support_vectors_,
            "dual_coef_": self.dual_coef_,
        }

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """At least one support vector, one finite dual coefficient each, gamma_ > 0; returns the width."""
        sc.threshold(state, "ocsvm")
        sv = sc.array(state, "support_vectors_", "ocsvm", (None, None), min_rows=1)
        sc.array(state, "dual_coef_", "ocsvm", (len(sv),))
        sc.number(state, "intercept_", "ocsvm")
        sc.number(state, "gamma_", "ocsvm", low=0.0, low_open=True)
        return sc.width(sv.shape[1], "ocsvm", "support vector width")

    def set_state(self, state: dict) -> "OneClassSVMDetector":
        self.check_state(self.get_params(), state)
        self.threshold_ = float(state["threshold_"])
        self.gamma_ = float(state["gamma_"])
        self.intercept_ = float(state["intercept_"])
        self.support_vectors_ = np.asarray(state["support_vectors_"], dtype=np.float64)
        self.dual_coef_ = np.asarray(state["dual_coef_"], dtype=np.float64)
        return self
