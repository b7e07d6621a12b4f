"""Isolation forest novelty detector.

scikit-learn grows the trees; the fitted forest is then flattened into five node arrays (all trees
concatenated: feature, threshold, left, right, per-node path length) and scored here with a
vectorised descent, all samples and all trees at once, one tree level per numpy step. The saved
state is those arrays, with no pickle and no scikit-learn object to trust at load time.
"""

from __future__ import annotations

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ParameterError
from netml_core import state_checks as sc
from netml_core.params import check_bool, check_contamination, check_number

_EULER_GAMMA = 0.5772156649015329

#: samples descended together; the node matrix is _BLOCK x n_estimators int64
_BLOCK = 8192


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected path length (edges) of an unsuccessful BST search among ``n`` points: c(n)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER_GAMMA) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class IsolationForestDetector(Detector):
    """Isolation forest (scikit-learn IsolationForest): flows isolated by few random splits are anomalous

    Score = ``2 ** (-E[h(x)] / c(max_samples))`` in (0, 1]: near 1 when random splits isolate the
    flow quickly (anomalous), below 0.5 for flows deep inside the data.
    """

    #: per-feature affine maps leave isolation trees unchanged, so scaling only costs time
    default_scaler = "none"

    param_docs = {
        "n_estimators": "number of isolation trees",
        "max_samples": "flows drawn to grow each tree: 'auto' = min(256, n), an integer, or a fraction in (0, 1]",
        "max_features": "features drawn for each tree: an integer, or a fraction in (0, 1]",
        "bootstrap": "draw each tree's flows with replacement",
        "random_state": "seed of the tree randomness (integer)",
        "contamination": "expected fraction of anomalies among training flows; sets the predict threshold",
    }

    def __init__(self, n_estimators=100, max_samples="auto", max_features=1.0, bootstrap=False,
                 random_state=42, contamination=0.1):
        check_number("n_estimators", n_estimators, low=1, high=10_000, integer=True)
        if isinstance(max_samples, str):
            if max_samples != "auto":
                raise ParameterError(f"parameter 'max_samples' must be 'auto', an integer or a fraction; got {max_samples!r}")
        elif isinstance(max_samples, float):
            check_number("max_samples", max_samples, low=0.0, high=1.0, low_open=True)
        else:
            check_number("max_samples", max_samples, low=1, high=10_000_000, integer=True)
        if isinstance(max_features, float):
            check_number("max_features", max_features, low=0.0, high=1.0, low_open=True)
        else:
            check_number("max_features", max_features, low=1, integer=True)
        check_bool("bootstrap", bootstrap)
        if random_state is not None:
            check_number("random_state", random_state, low=0, integer=True)
        check_contamination(contamination)
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                 max_features=self.max_features, bootstrap=self.bootstrap,
                                 random_state=self.random_state)
        try:
            forest.fit(X)
        except ValueError as exc:  # e.g. max_features larger than the feature width
            raise ParameterError(f"iforest: {str(exc).splitlines()[0]}") from None
        features, thresholds, lefts, rights, path = [], [], [], [], []
        roots, base = [], 0
        for est, cols in zip(forest.estimators_, forest.estimators_features_):
            t = est.tree_
            leaf = t.children_left < 0
            # node depth (edges from the root), children always come after their parent
            depth = np.zeros(t.node_count, dtype=np.float64)
            for node in range(t.node_count):
                if not leaf[node]:
                    depth[t.children_left[node]] = depth[t.children_right[node]] = depth[node] + 1.0
            # a leaf's expected path = its depth + c(samples that reached it)
            path.append(np.where(leaf, depth + average_path_length(t.n_node_samples), 0.0))
            # leaves point to themselves, so descending past one is a no-op
            idx = np.arange(t.node_count)
            lefts.append(np.where(leaf, idx, t.children_left) + base)
            rights.append(np.where(leaf, idx, t.children_right) + base)
            features.append(np.where(leaf, 0, np.asarray(cols)[np.maximum(t.feature, 0)]))
            thresholds.append(np.where(leaf, np.inf, t.threshold))
            roots.append(base)
            base += t.node_count
        self.n_features_ = int(X.shape[1])
        self.roots_ = np.asarray(roots, dtype=np.int64)
        self.feature_ = np.concatenate(features).astype(np.int64)
        self.threshold_node_ = np.concatenate(thresholds).astype(np.float64)
        self.left_ = np.concatenate(lefts).astype(np.int64)
        self.right_ = np.concatenate(rights).astype(np.int64)
        self.path_length_ = np.concatenate(path)
        self.max_depth_ = int(max(e.tree_.max_depth for e in forest.estimators_))
        self.normaliser_ = float(average_path_length(np.array([forest.max_samples_]))[0])

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_features_:
            raise ParameterError(f"iforest was fitted on {self.n_features_} features, got {X.shape[1]}")
        denom = len(self.roots_) * self.normaliser_
        if denom == 0:
            return np.ones(len(X), dtype=np.float64)
        # scikit-learn's trees compare float32 features with float64 thresholds; do the same
        X32 = X.astype(np.float32).astype(np.float64)
        out = np.empty(len(X), dtype=np.float64)
        for start in range(0, len(X), _BLOCK):
            block = X32[start:start + _BLOCK]
            rows = np.arange(len(block))[:, None]
            node = np.broadcast_to(self.roots_, (len(block), len(self.roots_))).copy()
            for _ in range(self.max_depth_):
                go_left = block[rows, self.feature_[node]] <= self.threshold_node_[node]
                node = np.where(go_left, self.left_[node], self.right_[node])
            out[start:start + _BLOCK] = self.path_length_[node].sum(axis=1)
        return 2.0 ** (-out / denom)

    _ARRAYS = ("roots_", "feature_", "threshold_node_", "left_", "right_", "path_length_")
    _SCALARS = {"threshold_": float, "n_features_": int, "max_depth_": int, "normaliser_": float}

    def get_state(self) -> dict:
        state = {k: getattr(self, k) for k in self._SCALARS}
        state.update({k: getattr(self, k) for k in self._ARRAYS})
        return state

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """Node arrays of one length whose indices stay inside the forest; the descent runs
        ``max_depth_`` steps, so it is bounded by the node count."""
        what = "iforest"
        sc.threshold(state, what)
        d = sc.width(sc.number(state, "n_features_", what, integer=True), what, "n_features_")
        n = len(sc.array(state, "path_length_", what, (None,), min_rows=1))
        sc.number(state, "max_depth_", what, low=0, high=n, integer=True)
        sc.number(state, "normaliser_", what, low=0.0)
        sc.index_array(state, "roots_", what, None, n)
        sc.index_array(state, "feature_", what, n, d)
        sc.index_array(state, "left_", what, n, n)
        sc.index_array(state, "right_", what, n, n)
        sc.array(state, "threshold_node_", what, (n,), finite=False)  # leaves hold +inf
        return d

    def set_state(self, state: dict) -> "IsolationForestDetector":
        self.check_state(self.get_params(), state)
        for k, cast in self._SCALARS.items():
            setattr(self, k, cast(state[k]))
        for k in self._ARRAYS:
            dtype = np.float64 if k in ("threshold_node_", "path_length_") else np.int64
            setattr(self, k, np.asarray(state[k], dtype=dtype))
        return self
