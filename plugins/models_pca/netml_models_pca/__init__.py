"""netml plugin: the ``pca`` detector. Registration only; the model code loads on first use."""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register(
        "pca",
        "netml_models_pca.pca:PCADetector",
        aliases=(),
        summary="Principal component analysis: PyOD's weighted distance to the components, or reconstruction error",
    )
