"""Gaussian mixture novelty detector.

scikit-learn's EM fits the mixture; scoring is the mixture log-likelihood computed here in numpy
from the fitted arrays (weights, means, Cholesky factors of the precisions), so the saved state is
three arrays and needs no scikit-learn object at load time.
"""

from __future__ import annotations

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ParameterError
from netml_core import state_checks as sc
from netml_core.params import check_choice, check_contamination, check_number

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class GaussianMixtureDetector(Detector):
    """Gaussian mixture (scikit-learn GaussianMixture): negative log-likelihood under the fitted mixture

    Score = ``-log p(x)`` under the mixture fitted to the training flows. Four full-covariance
    components by default: normal traffic has several kinds (DNS, web, sessions, chatter), and a full
    covariance catches the tight relations inside each (a SYN's size, a poll's period) whose breach
    marks a scan or an intrusion. A component gets at least ``d + 1`` training flows for ``d``
    features (``full``; 2 for the other covariance types) and never more components than distinct
    flows, so fewer are fitted on small or repetitive training sets; ``n_components_`` says how many. netml 0.x used 1 component (its facade passes it).
    """

    param_docs = {
        "n_components": "number of Gaussian components (fewer when the training flows cannot support them)",
        "covariance_type": "full, tied, diag or spherical",
        "reg_covar": "added to the covariance diagonal (squared scaled-feature units), keeps it invertible",
        "tol": "EM convergence threshold on the mean log-likelihood gain",
        "max_iter": "maximum EM iterations",
        "n_init": "EM restarts; the best is kept",
        "init_params": "initialisation: kmeans, k-means++, random or random_from_data",
        "random_state": "seed of the initialisation (integer)",
        "contamination": "expected fraction of anomalies among training flows; sets the predict threshold",
    }

    def __init__(self, n_components=4, covariance_type="full", reg_covar=1e-6, tol=1e-3,
                 max_iter=100, n_init=1, init_params="kmeans", random_state=42, contamination=0.1):
        check_number("n_components", n_components, low=1, integer=True)
        check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
        check_number("reg_covar", reg_covar, low=0.0)
        check_number("tol", tol, low=0.0)
        check_number("max_iter", max_iter, low=1, high=100_000, integer=True)
        check_number("n_init", n_init, low=1, high=100, integer=True)
        check_choice("init_params", init_params, ("kmeans", "k-means++", "random", "random_from_data"))
        if random_state is not None:
            check_number("random_state", random_state, low=0, integer=True)
        check_contamination(contamination)
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.mixture import GaussianMixture

        per_component = X.shape[1] + 1 if self.covariance_type == "full" else 2
        k = int(min(self.n_components, max(1, len(X) // per_component)))
        if k > 1:  # never more components than distinct flows (k-means would warn and EM degenerate)
            k = min(k, len(np.unique(X, axis=0)))
        gm = GaussianMixture(n_components=k, covariance_type=self.covariance_type,
                             reg_covar=self.reg_covar, tol=self.tol, max_iter=self.max_iter,
                             n_init=self.n_init, init_params=self.init_params,
                             random_state=self.random_state)
        try:
            gm.fit(X)
        except ValueError as exc:  # ill-defined covariance: scikit-learn suggests raising reg_covar
            raise ParameterError(f"gmm: {str(exc).splitlines()[0]}") from None
        self.n_components_ = k
        self.weights_ = np.asarray(gm.weights_, dtype=np.float64)
        self.means_ = np.asarray(gm.means_, dtype=np.float64)
        self.precisions_cholesky_ = np.asarray(gm.precisions_cholesky_, dtype=np.float64)

    def _component_log_prob(self, X: np.ndarray) -> np.ndarray:
        """``log N(x | mean_k, cov_k)`` for every sample and component, shape (n, k)."""
        X = np.ascontiguousarray(X, dtype=np.float64)  # row sums below run in one order whatever the layout
        n, d = X.shape
        k = self.means_.shape[0]
        pc = self.precisions_cholesky_
        ct = self.covariance_type
        if ct == "full":
            log_det = np.log(np.diagonal(pc, axis1=1, axis2=2)).sum(axis=1)
            maha = np.empty((n, k))
            for j in range(k):
                y = _rows_matmul(X, pc[j]) - self.means_[j] @ pc[j]
                maha[:, j] = (y * y).sum(axis=1)
        elif ct == "tied":
            log_det = np.full(k, np.log(np.diag(pc)).sum())
            maha = np.empty((n, k))
            for j in range(k):
                y = _rows_matmul(X, pc) - self.means_[j] @ pc
                maha[:, j] = (y * y).sum(axis=1)
        elif ct == "diag":
            log_det = np.log(pc).sum(axis=1)
            prec = pc ** 2
            maha = ((self.means_ ** 2 * prec).sum(axis=1) - 2.0 * _rows_matmul(X, (self.means_ * prec).T)
                    + _rows_matmul(X ** 2, prec.T))
        else:  # spherical
            log_det = d * np.log(pc)
            prec = pc ** 2
            maha = ((self.means_ ** 2).sum(axis=1) * prec - 2.0 * _rows_matmul(X, self.means_.T * prec)
                    + np.outer((X ** 2).sum(axis=1), prec))
        return -0.5 * (d * np.log(2.0 * np.pi) + maha) + log_det

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.means_.shape[1]:
            raise ParameterError(f"gmm was fitted on {self.means_.shape[1]} features, got {X.shape[1]}")
        weighted = self._component_log_prob(X) + np.log(self.weights_)
        top = weighted.max(axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        log_lik = np.log(np.exp(weighted - top).sum(axis=1)) + top[:, 0]
        return -log_lik

    def get_state(self) -> dict:
        return {
            "threshold_": self.threshold_,
            "weights_": self.weights_,
            "means_": self.means_,
            "precisions_cholesky_": self.precisions_cholesky_,
        }

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """Weights, means and precision factors of one mixture, shaped for its covariance type."""
        sc.threshold(state, "gmm")
        w = sc.array(state, "weights_", "gmm", (None,), min_rows=1, positive=True)
        k, d = sc.array(state, "means_", "gmm", (len(w), None)).shape
        sc.width(d, "gmm", "mean width")
        shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}
        ct = params.get("covariance_type", "full")
        if ct not in shape:
            sc.fail("gmm", f"unknown covariance_type {sc.short(ct)}")
        pc = sc.array(state, "precisions_cholesky_", "gmm", shape[ct])
        diag = np.diagonal(pc, axis1=-2, axis2=-1) if ct in ("full", "tied") else pc
        if not (diag > 0).all():  # its log is the log-determinant
            sc.fail("gmm", "saved precisions_cholesky_ must have a positive diagonal")
        return d

    def set_state(self, state: dict) -> "GaussianMixtureDetector":
        self.check_state(self.get_params(), state)
        self.threshold_ = float(state["threshold_"])
        self.weights_ = np.asarray(state["weights_"], dtype=np.float64)
        self.means_ = np.asarray(state["means_"], dtype=np.float64)
        self.precisions_cholesky_ = np.asarray(state["precisions_cholesky_"], dtype=np.float64)
        self.n_components_ = len(self.weights_)
        return self


def _rows_matmul(X: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``X @ M`` one row at a time: a stack of vector-matrix products, each computed on its own
    (one BLAS ``gemv`` per row; both operands contiguous so the same path is always taken), so a
    flow's score does not depend on which other flows share its batch nor where its row sits in
    memory: classifying a capture whole or as a stream of batches gives bit-identical scores. One
    ``X @ M`` would block rows together; numpy's ``einsum`` loop, used before, was 3x slower."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    M = np.ascontiguousarray(M, dtype=np.float64)
    return np.matmul(X[:, None, :], M)[:, 0, :]
