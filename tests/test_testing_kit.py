"""The conformance kit catches real mistakes, each named by its contract; skeletons from
``netml plugins new`` pass it as written."""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest

from netml_core.components import Detector, Feature
from netml_core.errors import ParameterError
from netml_core.testing import CONTRACTS, ContractError, check_detector, check_feature, check_registration

from helpers import cli


class Centroid(Detector):
    """Distance to the training mean: a correct detector the broken ones below start from."""

    param_docs = {"contamination": "expected fraction of anomalies"}

    def __init__(self, contamination=0.1):
        self.contamination = contamination

    def _fit(self, X):
        self.mean_ = X.mean(axis=0)

    def _score(self, X):
        if X.shape[1] != len(self.mean_):
            raise ParameterError(f"fitted on {len(self.mean_)} features, got {X.shape[1]}")
        return np.sqrt(((X - self.mean_) ** 2).sum(axis=1))


class RefitsInScore(Centroid):
    def _score(self, X):
        self._fit(X)  # the mistake: learns from the flows it should only score
        return super()._score(X)


class ForgetsState(Centroid):
    def get_state(self):
        return {"threshold_": self.threshold_, "mean_": np.zeros_like(self.mean_)}  # the mistake


class Inverted(Centroid):
    def _score(self, X):
        return -super()._score(X)  # scikit-learn's sign: lower = more anomalous


class Unseeded(Centroid):
    def _fit(self, X):
        self.mean_ = X.mean(axis=0) + np.random.default_rng().normal(size=X.shape[1])


class ParamOutsideInit(Centroid):
    def __init__(self, contamination=0.1, shift=0.0):
        self.contamination = contamination
        self.shift = shift

    param_docs = {"contamination": "expected fraction of anomalies", "shift": "added to the scores"}

    def _fit(self, X):
        super()._fit(X)
        self.shift = 1.0  # the mistake: fit overwrites a parameter


class NaNFeature(Feature):
    """Mean inter-arrival time: NaN for a one-packet flow (the mistake)."""

    def feature_names(self):
        return ["mean_iat"]

    def transform(self, flows):
        ts = flows.column("ts")
        out = []
        for i in range(len(flows)):
            seg = ts[flows.offsets[i]:flows.offsets[i + 1]]
            out.append([np.diff(seg).mean() if len(seg) > 1 else np.nan])
        return np.array(out, dtype=np.float64).reshape(-1, 1)


def broken(check, cls, **kw) -> str:
    with pytest.raises(ContractError) as info:
        check(cls, **kw)
    return str(info.value)


def test_a_correct_detector_passes():
    check_detector(Centroid)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # refitting on zero rows, the mistake's own noise
def test_a_detector_that_refits_in_score_breaks_pure_apply():
    msg = broken(check_detector, RefitsInScore)
    assert msg.startswith("detector RefitsInScore breaks")
    assert "- pure-apply: score changed the fitted state (mean_): it must only use what fit learned" in msg
    assert "- batch-independent:" in msg


def test_a_detector_whose_state_does_not_round_trip_breaks_round_trip():
    msg = broken(check_detector, ForgetsState)
    assert "breaks 1 contract(s)" in msg
    assert "- round-trip: outputs after a model-file round trip differ" in msg


def test_an_inverted_score_breaks_outlier_scores_higher():
    msg = broken(check_detector, Inverted)
    assert "- outlier-scores-higher: the outlier (every feature 10 standard deviations out) scores -" in msg


def test_an_unseeded_detector_breaks_deterministic():
    assert "- deterministic: a second fit scores differently" in broken(check_detector, Unseeded)


def test_fit_changing_a_parameter_breaks_params_in_init():
    msg = broken(check_detector, ParamOutsideInit)
    assert "- params-in-init: fit changed the parameters: {'contamination': 0.1, 'shift': 0.0} -> " \
           "{'contamination': 0.1, 'shift': 1.0}" in msg


def test_a_feature_with_nan_for_one_packet_flows_breaks_output_and_one_packet():
    msg = broken(check_feature, NaNFeature)
    assert "- output: transform holds NaN or infinite values" in msg
    assert "- one-packet: transform of one-packet flows holds NaN or infinite values" in msg
    assert "- params-in-init" not in msg


def test_skip_drops_named_contracts_and_rejects_unknown_ones():
    check_feature(NaNFeature, skip=("output", "one-packet"))
    with pytest.raises(ValueError, match="unknown contract 'nan-free' in skip"):
        check_feature(NaNFeature, skip=("nan-free",))
    assert set(CONTRACTS) >= {"round-trip", "deterministic", "registration-is-light", "pure-apply"}


def write_plugin(tmp_path, monkeypatch, name: str, entry: str, code: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(entry))
    (tmp_path / f"{name}_impl.py").write_text(textwrap.dedent(code))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return name


def test_a_plugin_importing_torch_at_registration_breaks_registration_is_light(tmp_path, monkeypatch):
    plugin = write_plugin(tmp_path, monkeypatch, "kit_heavy_plugin", """
        import torch  # the mistake: every `netml` start pays for it
        from netml_core import hookimpl

        @hookimpl
        def register_detectors(register):
            register("heavy", "kit_heavy_plugin_impl:Heavy")
    """, "")
    with pytest.raises(ContractError) as info:
        check_registration(plugin)
    assert str(info.value) == (
        "plugin kit_heavy_plugin breaks 1 contract(s):\n  - registration-is-light: importing kit_heavy_plugin and "
        "calling its hooks imported torch: register a lazy 'module:Class' factory and import heavy libraries "
        "inside it")
    light = write_plugin(tmp_path, monkeypatch, "kit_light_plugin", """
        from netml_core import hookimpl

        @hookimpl
        def register_detectors(register):
            register("light", "kit_light_plugin_impl:Light")
    """, "import torch\n")
    check_registration(light)  # torch is imported only when the detector is used


def test_check_by_registered_name_finds_the_plugin_module():
    check_detector("pca")  # class and entry module (netml_models_pca) looked up in the registry


@pytest.mark.parametrize("kind", ["detector", "feature", "splitter", "reader"])
def test_plugins_new_writes_a_skeleton_that_passes_the_kit(kind, tmp_path, monkeypatch):
    code, out, err = cli("plugins", "new", kind, "my_thing", "-o", tmp_path)
    assert code == 0, err
    folder = tmp_path / f"netml-{kind}-my-thing"
    assert out.splitlines()[0] == f"wrote {folder}/ (a {kind} 'my_thing' that passes netml_core.testing)"
    package = f"netml_{kind}_my_thing"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted([
        "README.md", "pyproject.toml", f"{package}/__init__.py", f"{package}/my_thing.py", "tests/test_my_thing.py"])
    assert f'{kind}_my_thing = "{package}"' in (folder / "pyproject.toml").read_text()
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    test_module = {}
    exec(compile((folder / "tests" / "test_my_thing.py").read_text(), "test_my_thing.py", "exec"), test_module)
    test_module["test_my_thing_conforms"]()  # the generated test: the kit, registration included
    for name in [m for m in sys.modules if m.startswith(package)]:
        del sys.modules[name]


def test_plugins_new_refuses_bad_names_and_existing_folders(tmp_path):
    code, _, err = cli("plugins", "new", "detector", "My Detector", "-o", tmp_path)
    assert code == 2 and err == ("netml: error: plugin name 'my detector' must be a lower-case identifier "
                                 "(letters, digits, _), e.g. centroid\n")
    assert cli("plugins", "new", "detector", "x1", "-o", tmp_path)[0] == 0
    code, _, err = cli("plugins", "new", "detector", "x1", "-o", tmp_path)
    assert code == 2 and err == f"netml: error: {tmp_path}/netml-detector-x1 already exists: choose another name or --output folder\n"
    code, _, err = cli("plugins", "new", "model", "x2", "-o", tmp_path)
    assert code == 2 and "'model' is not one of 'reader', 'splitter', 'feature', 'detector'" in err
