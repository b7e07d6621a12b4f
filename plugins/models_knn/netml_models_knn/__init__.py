"""netml plugin: the ``knn`` detector. Registration only; the model code loads on first use."""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register(
        "knn",
        "netml_models_knn.knn:KNNDetector",
        aliases=(),
        summary="k nearest neighbours (PyOD KNN): distance to the k-th nearest normal training flow",
    )
