"""``PCA``: netml 0.x's PCA detector (PyOD's weighted distance score), over the ``pca`` plugin."""

from .detector import NetmlDetector


class PCA(NetmlDetector):
    """PCA outlier score as PyOD computes it: standardise, then distances weighted by explained variance."""

    component = "pca"

    def __init__(self, n_components=None, n_selected_components=None, contamination=0.1, copy=True, whiten=False,
                 svd_solver="auto", tol=0.0, iterated_power="auto", random_state=42, weighted=True,
                 standardization=True, verbose=0):
        super().__init__(n_components=n_components, n_selected_components=n_selected_components,
                         contamination=contamination, copy=copy, whiten=whiten, svd_solver=svd_solver, tol=tol,
                         iterated_power=iterated_power, random_state=random_state, weighted=weighted,
                         standardization=standardization, verbose=verbose)

    def _params(self):
        k = self._kwargs
        return {"n_components": k["n_components"], "score_method": "weighted_distance",
                "standardize": k["standardization"], "weighted": k["weighted"],
                "contamination": k["contamination"]}
