"""``NetmlDetector``: the base of the ``netml.ndm`` detector classes, each a facade over a detector plugin.

netml 0.x detectors were scikit-learn / PyOD subclasses with ``fit(X, y=None)`` and
``decision_function(X)`` (higher = more anomalous). These keep the original constructor signatures
and those two methods, and delegate to the registry's detector of the same kind, with no feature
scaling (the original scaled nothing). Parameters the plugin has no use for (``verbose``,
``random_state`` of OCSVM, PyOD's ``copy``, ...) are accepted and ignored, as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netml_core.errors import NetmlError, NotFittedError

#: facade class name -> class, filled by subclasses (used to rebuild saved detectors)
FACADES: dict[str, type] = {}


def _registry():
    from netml_core.registry import get_registry

    return get_registry()


class NetmlDetector:
    """A netml 0.x detector: original parameters in, plugin detector underneath."""

    #: registry name of the detector plugin this class wraps
    component = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        FACADES[cls.__name__] = cls

    def __init__(self, **kwargs):
        self._kwargs = dict(kwargs)
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.name = type(self).__name__
        self.detector_ = None

    # -- what subclasses map --------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        """Plugin parameters from the original's (subclasses override)."""
        return {}

    # -- the original API -----------------------------------------------------------------------
    def fit(self, X_train, y_train=None):
        """Fit on ``X_train`` (``y_train`` is ignored: these are unsupervised)."""
        det = _registry().create("detector", self.component, self._params())
        self.detector_ = det.fit(np.asarray(X_train, dtype=float))
        return self

    def decision_function(self, X):
        """Anomaly scores, higher = more anomalous (as netml 0.x's ``decision_function``)."""
        return self._fitted().score(np.asarray(X, dtype=float))

    def predict(self, X):
        """1 for anomalies, 0 for normal flows (threshold fitted from ``contamination``)."""
        return self._fitted().predict(np.asarray(X, dtype=float))

    def get_params(self, deep=True) -> dict[str, Any]:
        return dict(self._kwargs)

    def _fitted(self):
        if self.detector_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit first")
        return self.detector_

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"

    # -- safe persistence (netml.utils.tool.dump_data) ------------------------------------------
    def _to_record(self) -> dict:
        rec = {"class": type(self).__name__, "kwargs": self._kwargs, "name": self.name,
               "component": self.component, "fitted": self.detector_ is not None}
        if self.detector_ is not None:
            rec["state"] = self.detector_.get_state()
        return rec

    @staticmethod
    def _from_record(rec: dict) -> "NetmlDetector":
        import netml.ndm.ae  # noqa: F401 - register every facade class
        import netml.ndm.gmm  # noqa: F401
        import netml.ndm.iforest  # noqa: F401
        import netml.ndm.kde  # noqa: F401
        import netml.ndm.ocsvm  # noqa: F401
        import netml.ndm.pca  # noqa: F401 - imported for its class registration

        cls = FACADES.get(rec.get("class", ""))
        if cls is None:
            raise NetmlError(f"unknown netml detector class {rec.get('class')!r} in data file")
        obj = cls(**rec.get("kwargs", {}))
        obj.name = rec.get("name", obj.name)
        if rec.get("fitted"):
            det = _registry().create("detector", obj.component, obj._params())
            obj.detector_ = det.set_state(rec["state"])
        return obj
