"""``OCSVM``: netml 0.x's One-Class SVM, over the ``ocsvm`` detector plugin."""

from .detector import NetmlDetector


class OCSVM(NetmlDetector):
    """One-Class SVM with the original's parameters (``random_state`` has no effect, as before)."""

    component = "ocsvm"

    def __init__(self, kernel="rbf", degree=3, gamma="scale", coef0=0.0, tol=1e-3, nu=0.5, shrinking=True,
                 cache_size=200, verbose=False, max_iter=-1, **kwargs):
        super().__init__(kernel=kernel, degree=degree, gamma=gamma, coef0=coef0, tol=tol, nu=nu,
                         shrinking=shrinking, cache_size=cache_size, verbose=verbose, max_iter=max_iter, **kwargs)

    def _params(self):
        k = self._kwargs
        return {"kernel": k["kernel"], "degree": k["degree"], "gamma": k["gamma"], "coef0": k["coef0"],
                "tol": k["tol"], "nu": k["nu"], "shrinking": k["shrinking"],
                "cache_size": float(k["cache_size"]), "max_iter": k["max_iter"]}
