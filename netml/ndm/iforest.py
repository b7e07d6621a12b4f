"""``IF``: netml 0.x's isolation forest, over the ``iforest`` plugin (max_features 1, no bootstrap)."""

from .detector import NetmlDetector


class IF(NetmlDetector):
    """Isolation Forest with the original's parameters."""

    component = "iforest"

    def __init__(self, n_estimators=100, max_samples="auto", contamination=0.1, random_state=42, verbose=1):
        super().__init__(n_estimators=n_estimators, max_samples=max_samples, contamination=contamination,
                         random_state=random_state, verbose=verbose)

    def _params(self):
        k = self._kwargs
        return {"n_estimators": k["n_estimators"], "max_samples": k["max_samples"], "max_features": 1.0,
                "bootstrap": False, "random_state": k["random_state"], "contamination": k["contamination"]}
