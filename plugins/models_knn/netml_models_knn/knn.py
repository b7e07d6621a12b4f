"""k-nearest-neighbour novelty detector (PyOD's KNN, fitted on normal flows only).

The model is its training sample: a flow's score is its Euclidean distance (in scaled feature
units) to the k-th nearest training flow (``largest``) or its mean distance to the k nearest
(``mean``). Far from the training flows the score keeps growing with the distance, so it still
ranks flows that are far from everything, where an RBF one-class SVM's score is flat.

Neighbours are exact. scikit-learn's brute-force ``NearestNeighbors`` (chunked, multi-threaded)
selects them; their distances are then recomputed here as ``||x - t||`` from the differences, not
from the ``|x|^2 - 2 x.t + |t|^2`` expansion the search uses, so a flow equal to a training flow
scores exactly 0 and the distances do not lose digits for close pairs. Queries go in blocks, so
memory stays ~ ``_BLOCK_FLOATS`` floats whatever the number of flows.

Training flows are scored against the other training flows (k + 1 neighbours, the flow itself
dropped), otherwise every training score of k = 1 would be 0 and the contamination threshold
would mean nothing. Above ``max_samples`` training flows a uniform subsample (seeded by
``random_state``) is kept, so the model file, the fit and the scoring time per flow stay bounded;
the contamination threshold then comes from the kept flows' scores. The saved state is that
matrix (float64) plus two numbers; the index is rebuilt on load.
"""

from __future__ import annotations

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ModelFileError, ParameterError
from netml_core import state_checks as sc
from netml_core.params import check_choice, check_contamination, check_number

METHODS = ("largest", "mean")

#: floats per block of the (flows x neighbours x features) differences, ~32 MB
_BLOCK_FLOATS = 4_000_000


class KNNDetector(Detector):
    """k nearest neighbours (PyOD KNN): distance to the k-th nearest normal training flow

    Score = Euclidean distance in scaled feature units from a flow to its ``n_neighbors``-th
    nearest training flow (``method: largest``) or the mean distance to its ``n_neighbors``
    nearest (``mean``); 0 for a copy of a training flow at k = 1, growing without bound away from them.
    With fewer training flows than ``n_neighbors`` all of them are used.
    """

    default_scaler = "standard"

    param_docs = {
        "n_neighbors": "k, the number of nearest training flows looked at (integer >= 1; all of them when there are fewer)",
        "method": "largest = distance to the k-th nearest training flow; mean = mean distance to the k nearest (scaled feature units)",
        "max_samples": "keep at most this many training flows, a uniform subsample drawn with random_state, so memory and scoring time stay bounded (integer >= 2; null = keep all)",
        "random_state": "seed of the max_samples subsample (integer; null = not reproducible)",
        "contamination": "expected fraction of anomalies among training flows; sets the predict threshold",
    }

    def __init__(self, n_neighbors=5, method="largest", max_samples=20000, random_state=42,
                 contamination=0.1):
        check_number("n_neighbors", n_neighbors, low=1, high=10_000, integer=True)
        check_choice("method", method, METHODS)
        if max_samples is not None:
            check_number("max_samples", max_samples, low=2, high=10_000_000, integer=True)
        if random_state is not None:
            check_number("random_state", random_state, low=0, integer=True)
        check_contamination(contamination)
        self.n_neighbors = n_neighbors
        self.method = method
        self.max_samples = max_samples
        self.random_state = random_state
        self.contamination = contamination

    # -- fitting --------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray) -> None:
        n = len(X)
        if self.max_samples is not None and n > self.max_samples:
            keep = np.sort(np.random.RandomState(self.random_state).permutation(n)[:int(self.max_samples)])
        else:
            keep = np.arange(n)
        self.train_X_ = np.ascontiguousarray(X[keep], dtype=np.float64)
        self.n_train_ = int(n)
        self._nn = None
        # Detector.fit scores X right after _fit: see _score
        self._fitting = X

    def _index(self):
        if getattr(self, "_nn", None) is None:
            from sklearn.neighbors import NearestNeighbors

            self._nn = NearestNeighbors(algorithm="brute", metric="euclidean").fit(self.train_X_)
        return self._nn

    # -- scoring --------------------------------------------------------------------------------
    def _score(self, X: np.ndarray) -> np.ndarray:
        fitting = self.__dict__.pop("_fitting", None)
        T = self.train_X_
        if X.shape[1] != T.shape[1]:
            raise ParameterError(f"knn was fitted on {T.shape[1]} features, got {X.shape[1]}")
        if fitting is X:
            # Detector.fit asks for the training scores (for the contamination quantile): each kept
            # row against the other kept rows. Above max_samples only the kept rows are scored, a
            # uniform sample of the training scores, so fitting costs O(max_samples^2), not O(n m)
            return self._distances(T, exclude_self=True)
        return self._distances(X, exclude_self=False)

    def _distances(self, Q: np.ndarray, *, exclude_self: bool) -> np.ndarray:
        """The score of every row of ``Q``; with ``exclude_self`` row i of Q is training row i."""
        out = np.empty(len(Q), dtype=np.float64)
        if len(Q) == 0:
            return out
        T = self.train_X_
        m, d = T.shape
        k = min(int(self.n_neighbors), m - 1 if exclude_self else m)
        if k < 1:  # one training row scored against the others: there are none
            out[:] = 0.0
            return out
        q = k + 1 if exclude_self else k
        index = self._index()
        step = max(1, _BLOCK_FLOATS // (q * (d + 1)))
        for start in range(0, len(Q), step):
            B = Q[start:start + step]
            idx = index.kneighbors(B, n_neighbors=q, return_distance=False)
            diff = B[:, None, :] - T[idx]
            dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            if exclude_self:
                # the row itself is dropped; when k + 1 exact copies crowd it out of the
                # candidates, the k smallest of the others are taken (the same distances)
                dist[idx == np.arange(start, start + len(B))[:, None]] = np.inf
            dist.sort(axis=1)
            dist = dist[:, :k]
            out[start:start + len(B)] = dist[:, -1] if self.method == "largest" else dist.mean(axis=1)
        return out

    # -- state ----------------------------------------------------------------------------------
    def get_state(self) -> dict:
        return {"threshold_": self.threshold_, "n_train_": self.n_train_, "train_X_": self.train_X_}

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """A finite numeric training matrix of at least one row, a finite threshold, a flow count."""
        T = state.get("train_X_")
        if not isinstance(T, np.ndarray) or T.ndim != 2 or T.shape[0] < 1 or T.shape[1] < 1:
            got = f"shape {T.shape}" if isinstance(T, np.ndarray) else type(T).__name__
            raise ModelFileError(f"knn: saved training matrix must be a 2-D array with at least one row, got {got}")
        if T.dtype.kind not in "fiu":
            raise ModelFileError(f"knn: saved training matrix must be numeric, got dtype {T.dtype}")
        T = np.ascontiguousarray(T, dtype=np.float64)
        if not np.isfinite(T).all():
            raise ModelFileError("knn: saved training matrix contains NaN or infinite values")
        threshold = state.get("threshold_")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
            raise ModelFileError(f"knn: saved threshold must be a finite number, got {sc.short(threshold)}")
        n_train = state.get("n_train_", len(T))
        if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < len(T):
            raise ModelFileError(f"knn: saved training flow count must be an integer >= {len(T)}, got {sc.short(n_train)}")
        return sc.width(T.shape[1], "knn", "training matrix width")

    def set_state(self, state: dict) -> "KNNDetector":
        self.check_state(self.get_params(), state)
        T = np.ascontiguousarray(state["train_X_"], dtype=np.float64)
        threshold = state["threshold_"]
        n_train = state.get("n_train_", len(T))
        self.train_X_ = T
        self.threshold_ = float(threshold)
        self.n_train_ = n_train
        self._nn = None  # rebuilt on first score
        return self
