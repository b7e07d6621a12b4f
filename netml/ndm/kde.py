"""``KDE``: netml 0.x's kernel density detector, over the ``kde`` plugin."""

from netml_core.errors import ParameterError

from .detector import NetmlDetector


class KDE(NetmlDetector):
    """Kernel density estimation; the score is the negative log density."""

    component = "kde"

    def __init__(self, bandwidth=1.0, algorithm="auto", kernel="gaussian", metric="euclidean", atol=0, rtol=0,
                 contamination=0.1, breadth_first=True, leaf_size=40, metric_params=None, verbose=0, **kwargs):
        if metric_params is not None:
            raise ParameterError("KDE: metric_params is not supported")
        super().__init__(bandwidth=bandwidth, algorithm=algorithm, kernel=kernel, metric=metric, atol=atol,
                         rtol=rtol, contamination=contamination, breadth_first=breadth_first,
                         leaf_size=leaf_size, metric_params=metric_params, verbose=verbose, **kwargs)

    def _params(self):
        k = self._kwargs
        return {"bandwidth": k["bandwidth"], "algorithm": k["algorithm"], "kernel": k["kernel"],
                "metric": k["metric"], "atol": float(k["atol"]), "rtol": float(k["rtol"]),
                "breadth_first": k["breadth_first"], "leaf_size": k["leaf_size"],
                "contamination": k["contamination"]}
