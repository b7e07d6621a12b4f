"""netml plugin: the ``ocsvm`` detector. Registration only; the model code loads on first use."""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register(
        "ocsvm",
        "netml_models_ocsvm.ocsvm:OneClassSVMDetector",
        aliases=(),
        summary="One-class SVM (scikit-learn OneClassSVM): distance outside the learned support of normal flows",
    )
