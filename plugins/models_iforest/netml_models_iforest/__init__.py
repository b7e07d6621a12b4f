"""netml plugin: the ``iforest`` (alias ``if``) detector. Registration only; the model code loads on first use."""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register(
        "iforest",
        "netml_models_iforest.iforest:IsolationForestDetector",
        aliases=("if",),
        summary="Isolation forest (scikit-learn IsolationForest): flows isolated by few random splits are anomalous",
    )
