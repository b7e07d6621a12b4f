"""Autoencoder novelty detector (PyTorch, CPU).

A symmetric MLP ``in -> hidden -> latent -> hidden -> in`` with LeakyReLU between layers and a linear
output (scaled features can be negative). The original netml wrote ``nn.LeakyReLU(True)``, i.e.
``negative_slope=True == 1.0``: every activation was the identity and its "autoencoder" was a linear
map. Here the slope is a parameter that must be below 1, so the network is nonlinear.

Training is deterministic under ``random_state``: weights and batch order come from seeded
generators, torch runs single-threaded with deterministic algorithms for the duration of ``fit``
and ``score``, and global settings are restored afterwards. The loss of each epoch is logged at
DEBUG on ``netml.detectors.ae`` (``-v 2``). Weights are saved as safetensors bytes (no pickle).

torch is imported on first use, so ``--help-param ae`` and plugin listing stay fast.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ModelFileError, ParameterError
from netml_core import state_checks as sc
from netml_core.params import check_contamination, check_number

log = logging.getLogger("netml.detectors.ae")

#: widest hidden or latent layer: weights are in_dim x units floats (a --param of 10^9 units asked
#: torch for hundreds of GB)
MAX_UNITS = 4096


@contextlib.contextmanager
def _deterministic_torch():
    """Single thread + deterministic kernels while inside; previous global settings restored after."""
    import torch

    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield torch
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)


def _network(torch, in_dim: int, hidden_dim: int, latent_dim: int, slope: float):
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.LeakyReLU(slope),
        nn.Linear(hidden_dim, latent_dim), nn.LeakyReLU(slope),
        nn.Linear(latent_dim, hidden_dim), nn.LeakyReLU(slope),
        nn.Linear(hidden_dim, in_dim),
    )


class AutoencoderDetector(Detector):
    """Autoencoder (PyTorch MLP): reconstruction error of a nonlinear autoencoder trained on normal flows

    Score = Euclidean distance between a flow's (scaled) feature vector and its reconstruction.
    """

    param_docs = {
        "hidden_dim": f"units in the two hidden layers (1..{MAX_UNITS})",
        "latent_dim": f"units in the bottleneck layer (1..{MAX_UNITS})",
        "epochs": "passes over the training flows",
        "batch_size": "flows per gradient step",
        "lr": "Adam learning rate",
        "weight_decay": "Adam L2 penalty on the weights",
        "negative_slope": "LeakyReLU slope for negative inputs, in [0, 1) (1 would make the network linear)",
        "random_state": "seed of weight initialisation and batch order (integer; null = not reproducible)",
        "contamination": "expected fraction of anomalies among training flows; sets the predict threshold",
    }

    def __init__(self, hidden_dim=32, latent_dim=8, epochs=50, batch_size=32, lr=1e-3,
                 weight_decay=1e-5, negative_slope=0.01, random_state=42, contamination=0.1):
        check_number("hidden_dim", hidden_dim, low=1, high=MAX_UNITS, integer=True)
        check_number("latent_dim", latent_dim, low=1, high=MAX_UNITS, integer=True)
        check_number("epochs", epochs, low=1, high=100_000, integer=True)
        check_number("batch_size", batch_size, low=1, high=1_000_000, integer=True)
        check_number("lr", lr, low=0.0, low_open=True)
        check_number("weight_decay", weight_decay, low=0.0)
        check_number("negative_slope", negative_slope, low=0.0, high=1.0, high_open=True)
        if random_state is not None:
            check_number("random_state", random_state, low=0, integer=True)
        check_contamination(contamination)
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.negative_slope = negative_slope
        self.random_state = random_state
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> None:
        with _deterministic_torch() as torch:
            gen = torch.Generator()
            if self.random_state is not None:
                gen.manual_seed(int(self.random_state))
            else:
                gen.seed()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
                net = _network(torch, X.shape[1], self.hidden_dim, self.latent_dim, float(self.negative_slope))
            data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            loss_fn = torch.nn.MSELoss(reduction="sum")
            history = []
            net.train()
            for epoch in range(self.epochs):
                order = torch.randperm(len(data), generator=gen)
                total = 0.0
                for start in range(0, len(data), self.batch_size):
                    batch = data[order[start:start + self.batch_size]]
                    opt.zero_grad()
                    loss = loss_fn(net(batch), batch)
                    (loss / len(batch)).backward()
                    opt.step()
                    total += float(loss.detach())
                mean_loss = total / (len(data) * data.shape[1])  # mean squared error per feature
                history.append(mean_loss)
                log.debug("ae epoch %d/%d: loss (MSE per feature) %.6g", epoch + 1, self.epochs, mean_loss)
            net.eval()
        self.in_dim_ = int(X.shape[1])
        self.loss_history_ = history
        self._net = net

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.in_dim_:
            raise ParameterError(f"ae was fitted on {self.in_dim_} features, got {X.shape[1]}")
        with _deterministic_torch() as torch:
            with torch.no_grad():
                recon = self._net(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()
        diff = X - recon.astype(np.float64)
        return np.sqrt((diff * diff).sum(axis=1))

    def get_state(self) -> dict:
        from safetensors.torch import save

        weights = {k: v.detach().contiguous() for k, v in self._net.state_dict().items()}
        return {
            "threshold_": self.threshold_,
            "in_dim_": self.in_dim_,
            "loss_history_": [float(v) for v in self.loss_history_],
            "weights_": save(weights),
        }

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """The weights' safetensors header must describe exactly this network (read before torch
        allocates one: the shapes come from the file, not from trust)."""
        sc.threshold(state, "ae")
        d = sc.width(sc.number(state, "in_dim_", "ae", integer=True), "ae", "in_dim_")
        h, z = (cls.param_defaults()[k] if params.get(k) is None else params[k] for k in ("hidden_dim", "latent_dim"))
        blob = sc.get(state, "weights_", "ae")
        if not isinstance(blob, (bytes, bytearray)):
            sc.fail("ae", f"saved weights_ must be safetensors bytes, got {sc.short(blob)}")
        want = {"0.weight": [h, d], "0.bias": [h], "2.weight": [z, h], "2.bias": [z],
                "4.weight": [h, z], "4.bias": [h], "6.weight": [d, h], "6.bias": [d]}
        got = _safetensors_shapes(bytes(blob))
        if got != want:
            sc.fail("ae", f"saved weights do not fit the network {d} -> {h} -> {z} -> {h} -> {d}")
        history = state.get("loss_history_", [])
        if not isinstance(history, list) or not all(isinstance(v, (int, float)) for v in history):
            sc.fail("ae", "saved loss_history_ must be a list of numbers")
        return d

    def set_state(self, state: dict) -> "AutoencoderDetector":
        import torch
        from safetensors.torch import load

        self.check_state(self.get_params(), state)
        self.threshold_ = float(state["threshold_"])
        self.in_dim_ = int(state["in_dim_"])
        self.loss_history_ = [float(v) for v in state.get("loss_history_", [])]
        net = _network(torch, self.in_dim_, self.hidden_dim, self.latent_dim, float(self.negative_slope))
        try:
            net.load_state_dict(load(bytes(state["weights_"])))
        except Exception as exc:  # noqa: BLE001 - wrong shapes/keys or a corrupt blob: one line
            raise ModelFileError(f"ae: saved weights do not fit the network: {str(exc).splitlines()[0]}") from None
        net.eval()
        self._net = net
        return self


#: safetensors: an 8-byte little-endian header length, then a JSON header naming each tensor
_MAX_HEADER = 1 << 20


def _safetensors_shapes(blob: bytes) -> dict | None:
    """Tensor name -> shape from a safetensors header (None when the header is not one)."""
    import json

    if len(blob) < 8:
        return None
    n = int.from_bytes(blob[:8], "little")
    if n > min(_MAX_HEADER, len(blob) - 8):
        return None
    try:
        header = json.loads(blob[8:8 + n])
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    return {k: v.get("shape") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
