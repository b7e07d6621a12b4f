"""netml plugin: the ``gmm`` detector. Registration only; the model code loads on first use."""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register(
        "gmm",
        "netml_models_gmm.gmm:GaussianMixtureDetector",
        aliases=(),
        summary="Gaussian mixture (scikit-learn GaussianMixture): negative log-likelihood under the fitted mixture",
    )
