"""netml plugin: the ``ae`` detector. Registration only; the model code loads on first use."""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register(
        "ae",
        "netml_models_ae.ae:AutoencoderDetector",
        aliases=(),
        summary="Autoencoder (PyTorch MLP): reconstruction error of a nonlinear autoencoder trained on normal flows",
    )
