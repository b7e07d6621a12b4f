"""``AE``: netml 0.x's autoencoder, over the ``ae`` plugin (a real nonlinear network, seeded)."""

from netml_core.errors import ParameterError

from .detector import NetmlDetector


class AE(NetmlDetector):
    """Autoencoder; the score is the reconstruction distance. ``random_state`` (default 42) seeds it."""

    component = "ae"

    def __init__(self, epochs=100, batch_size=32, lr=1e-3, loss="mse", dropout_rate=0.2, l2_regularizer=0.1,
                 validation_size=0.1, verbose=1, contamination=0.1, hid_dim=16, lat_dim=8, **kwargs):
        if loss not in ("mse", None, ""):
            raise ParameterError(f"AE: loss {loss!r} is not supported (only 'mse', as in netml 0.x)")
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, dropout_rate=dropout_rate,
                         l2_regularizer=l2_regularizer, validation_size=validation_size, verbose=verbose,
                         contamination=contamination, hid_dim=hid_dim, lat_dim=lat_dim, **kwargs)

    def _params(self):
        k = self._kwargs
        return {"hidden_dim": k["hid_dim"], "latent_dim": k["lat_dim"], "epochs": k["epochs"],
                "batch_size": k["batch_size"], "lr": k["lr"], "weight_decay": k["l2_regularizer"],
                "random_state": k.get("random_state", 42), "contamination": k["contamination"]}
