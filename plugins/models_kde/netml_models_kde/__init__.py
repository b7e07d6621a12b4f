"""netml plugin: the ``kde`` detector. Registration only; the model code loads on first use."""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register(
        "kde",
        "netml_models_kde.kde:KernelDensityDetector",
        aliases=(),
        summary="Kernel density estimate (scikit-learn KernelDensity): negative log-density of normal flows",
    )
