"""The autoencoder: really nonlinear, reproducible, logs its loss per epoch, leaves torch settings alone."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from netml_core.errors import ModelFileError
from netml_core.registry import get_registry


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 12))


def make(**params):
    return get_registry().create("detector", "ae", {"epochs": 10, **params})


def test_network_is_nonlinear(data):
    import torch

    det = make().fit(data)
    acts = [m for m in det._net.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 3 and all(a.negative_slope == pytest.approx(0.01) for a in acts)
    # a linear map (the original's LeakyReLU(True)) satisfies f(a) + f(b) - f(0) == f(a + b)
    with torch.no_grad():
        f = lambda v: det._net(torch.tensor(v, dtype=torch.float32)).numpy().astype(np.float64)  # noqa: E731
        a, b, zero = data[:50], data[50:100], np.zeros((50, 12))
        gap = np.abs(f(a) + f(b) - f(zero) - f(a + b)).max()
    assert gap > 1e-2


def test_loss_is_logged_per_epoch_and_decreases(data, caplog):
    with caplog.at_level(logging.DEBUG, logger="netml.detectors.ae"):
        det = make(epochs=8).fit(data)
    lines = [r.getMessage() for r in caplog.records if r.name == "netml.detectors.ae"]
    assert len(lines) == 8
    assert lines[0].startswith("ae epoch 1/8: loss") and lines[-1].startswith("ae epoch 8/8: loss")
    assert len(det.loss_history_) == 8 and det.loss_history_[-1] < det.loss_history_[0]


def test_same_seed_same_scores_other_seed_differs(data):
    a = make(random_state=11).fit(data).score(data)
    b = make(random_state=11).fit(data).score(data)
    c = make(random_state=12).fit(data).score(data)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_torch_global_state_is_restored(data):
    import torch

    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make().fit(data)
    assert torch.equal(torch.rand(3), expected), "fit must not consume the global torch RNG"
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_weights_are_safetensors_bytes(data):
    det = make().fit(data)
    state = det.get_state()
    assert isinstance(state["weights_"], bytes) and state["in_dim_"] == 12
    # safetensors layout: 8-byte little-endian header length, then a JSON header
    n = int.from_bytes(state["weights_"][:8], "little")
    assert state["weights_"][8:9] == b"{" and len(state["weights_"]) > 8 + n
    broken = dict(state, weights_=state["weights_"][: len(state["weights_"]) // 2])
    with pytest.raises(ModelFileError, match="saved weights"):
        get_registry().component_class("detector", "ae")(**det.get_params()).set_state(broken)
