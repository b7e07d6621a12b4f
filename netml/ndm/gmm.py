"""``GMM``: netml 0.x's Gaussian mixture detector, over the ``gmm`` plugin."""

from netml_core.errors import ParameterError

from .detector import NetmlDetector


class GMM(NetmlDetector):
    """Gaussian mixture; the score is the negative log likelihood."""

    component = "gmm"

    def __init__(self, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, means_init=None, precisions_init=None,
                 random_state=42, warm_start=False, verbose=0, verbose_interval=10, contamination=0.1):
        if any(v is not None for v in (weights_init, means_init, precisions_init)):
            raise ParameterError("GMM: weights_init/means_init/precisions_init are not supported")
        super().__init__(n_components=n_components, covariance_type=covariance_type, tol=tol, reg_covar=reg_covar,
                         max_iter=max_iter, n_init=n_init, init_params=init_params, weights_init=None,
                         means_init=None, precisions_init=None, random_state=random_state,
                         warm_start=warm_start, verbose=verbose, verbose_interval=verbose_interval,
                         contamination=contamination)

    def _params(self):
        k = self._kwargs
        return {"n_components": k["n_components"], "covariance_type": k["covariance_type"],
                "reg_covar": k["reg_covar"], "tol": k["tol"], "max_iter": k["max_iter"], "n_init": k["n_init"],
                "init_params": k["init_params"], "random_state": k["random_state"],
                "contamination": k["contamination"]}
