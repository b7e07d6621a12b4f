"""Issue 12, ``--param``: sizes, depth and ranges are bounded and messages stay short.

A billion-laughs text, a 100,000-deep nesting, a 5,000-digit number or a 10^9-unit autoencoder
layer is one ``ParameterError`` line, found in well under a second, before any capture is read.
"""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netml_core.errors import ParameterError
from netml_core.params import MAX_PARAM_DEPTH, MAX_PARAM_VALUES, check_number, parse_param_option
from netml_core.registry import get_registry

from helpers import SHARED

SHARED_DEMO = SHARED / "data" / "netml-demo" / "demo.pcap"


def laughs(levels: int, fan: int = 10) -> str:
    """``fan ** levels`` values once every alias is expanded, in a few hundred characters."""
    lines = ["a0: &a0 [" + ",".join(["lol"] * fan) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "\n".join(lines + [f"nu: *a{levels - 1}"]) + "\n"


def refused(text: str, algorithm: str = "ocsvm") -> str:
    cls = get_registry().component_class("detector", algorithm)
    t0 = time.perf_counter()
    with pytest.raises(ParameterError) as info:
        parse_param_option(text, algorithm, cls)
    assert time.perf_counter() - t0 < 3.0
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 300, msg
    return msg


CASES = {
    "billion laughs": (laughs(9), f"more than {MAX_PARAM_VALUES} values"),
    "laughs hidden in a list": ("nu: [" + ", ".join(["*x"] * 200) + "]\nx: &x [" + ",".join(["1"] * 100) + "]",
                                "not valid YAML"),  # an alias before its anchor is a YAML error
    "flat list of 400,000": ("{nu: [" + "1," * 400_000 + "]}", f"more than {MAX_PARAM_VALUES} values"),
    "nested 100,000 deep (flow)": ("{nu: " + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "nested deep (block)": ("nu:\n" + "".join(" " * i + "- \n" for i in range(1, 200)), "nested too deeply"),
    "5,000-digit nu": ("{nu: " + "1" * 5000 + "}", "integer of 5000 digits"),
    "400-digit cache_size": ("{cache_size: " + "9" * 400 + "}", "integer of 400 digits"),
    "infinite coef0": ("{coef0: .inf}", "must be a finite number"),
    "NaN tol": ("{tol: .nan}", "must be a finite number"),
    "long text": ("{kernel: " + "k" * 20_000 + "}", "value of 20000 characters"),
    "self-referencing anchor": ("nu: &a [*a]", "contains itself"),
    "long key": ("{" + "x" * 1000 + ": 1}", "unknown parameter"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_param_text_is_one_short_line(case):
    text, fragment = CASES[case]
    assert fragment in refused(text)


def test_autoencoder_layers_are_bounded():
    assert "'hidden_dim' must be <= 4096" in refused("{hidden_dim: 1000000000}", "ae")
    assert "'latent_dim' must be <= 4096" in refused("{latent_dim: 100000}", "ae")
    cls = get_registry().component_class("detector", "ae")
    assert parse_param_option("{hidden_dim: 4096, latent_dim: 16}", "ae", cls) == {"hidden_dim": 4096, "latent_dim": 16}


def test_ordinary_anchors_and_nesting_still_work():
    cls = get_registry().component_class("detector", "ocsvm")
    text = "base: &b {nu: 0.2, kernel: rbf}\nocsvm: *b\n"
    assert parse_param_option(text, "ocsvm", cls) == {"nu": 0.2, "kernel": "rbf"}
    assert MAX_PARAM_DEPTH >= 8


def test_param_file_too_large_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("nu: 0.1\n" + "#" * (2 << 20) + "\n")
    assert "larger than" in refused(str(path))


def test_cli_learn_with_a_billion_laughs_exits_2_in_one_line(tmp_path, run_cli):
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs(9))
    res = run_cli("learn", "-p", tmp_path / "missing.pcap", "--algorithm", "ocsvm", "--param", path,
                  "-o", tmp_path / "m.netml")
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "values" in res.stderr or "missing.pcap" in res.stderr


SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10**60), max_value=10**60)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(algorithm=st.sampled_from(["ocsvm", "gmm", "kde", "iforest", "pca", "knn", "ae"]),
       params=st.dictionaries(st.sampled_from(["nu", "gamma", "n_components", "bandwidth", "n_estimators",
                                                "max_samples", "n_neighbors", "hidden_dim", "tol", "kernel",
                                                "cache_size", "contamination", "epochs", "other"]),
                              VALUES, max_size=3),
       as_json=st.booleans())
def test_any_param_mapping_is_accepted_or_one_line(algorithm, params, as_json):
    """Whatever values a mapping holds, parsing gives parameters or one short ParameterError."""
    import json

    text = json.dumps(params) if as_json else yaml.safe_dump(params)
    cls = get_registry().component_class("detector", algorithm)
    try:
        got = parse_param_option(text, algorithm, cls)
    except ParameterError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400, str(exc)
        return
    assert isinstance(got, dict)


@given(value=SCALARS, low=st.none() | st.floats(-10, 10), integer=st.booleans())
def test_check_number_never_raises_anything_else(value, low, integer):
    try:
        check_number("p", value, low=low, integer=integer)
    except ParameterError as exc:
        assert len(str(exc)) < 200


@pytest.mark.parametrize("argv, message", [
    (("--algorithm", "iforest", "--param", "{n_estimators: 1000000000}"), "parameter 'n_estimators' must be <= 10000"),
    (("--algorithm", "gmm", "--param", "{n_init: 100000}"), "parameter 'n_init' must be <= 100"),
    (("--algorithm", "ae", "--param", "{epochs: 1000000000}"), "parameter 'epochs' must be <= 100000"),
    (("--algorithm", "knn", "--param", "{n_neighbors: 100000000}"), "parameter 'n_neighbors' must be <= 10000"),
    (("--splitter", "netml", "--feature", "iat", "--feature-param", "{dim: 100000000}"),
     "parameter 'dim' must be an integer in [1, 8192] or unset, got 100000000"),
])
def test_work_and_memory_parameters_are_bounded(tmp_path, argv, message):
    from helpers import cli, need

    code, out, err = cli("learn", "-p", need(SHARED_DEMO), *argv, "-o", tmp_path / "m.netml")
    assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1
