"""The conformance kit over every built-in reader, splitter, feature and detector, and the example.

Each component is checked as a plugin author would check theirs (``netml_core.testing``), by its
registered name, so the registration check runs on the plugin that really provides it. The PyOD
detectors are checked in ``test_models_pyod.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netml_core.registry import get_registry
from netml_core.testing import check_detector, check_feature, check_flow_splitter, check_reader

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugins" / "netml-detector-zscore"
CHECKS = {"reader": check_reader, "flow_splitter": check_flow_splitter, "feature": check_feature,
          "detector": check_detector}
#: contracts that do not apply to a component, and why
SKIP = {
    # host context describes a flow by the other flows of its hosts in the same capture
    ("feature", "context"): ("batch-independent",),
}
#: float32 models: equal outputs to float32 precision
RTOL = {("detector", "ae"): 1e-5}
#: known breaks, reported to the plugin's owner (non-strict xfail: the fix turns them into passes)
KNOWN: dict[tuple[str, str], str] = {}


def builtin_components() -> list[tuple[str, str]]:
    reg = get_registry()
    return [(kind, name) for kind in CHECKS for name in reg.names(kind)
            if reg.get(kind, name).plugin != "models_pyod"
            and reg.plugins[reg.get(kind, name).plugin].distribution.startswith("netml")
            and reg.plugins[reg.get(kind, name).plugin].distribution != "netml-detector-zscore"]


COMPONENTS = builtin_components()


def test_every_kind_is_covered():
    kinds = {k for k, _ in COMPONENTS}
    assert kinds == set(CHECKS)
    assert {("reader", "native"), ("flow_splitter", "meter"), ("feature", "flowstats"), ("detector", "gmm"),
            ("detector", "knn")} <= set(COMPONENTS)


@pytest.mark.parametrize("kind,name", [
    pytest.param(k, n, id=f"{k}:{n}", marks=[pytest.mark.xfail(reason=KNOWN[(k, n)], strict=False)] if (k, n) in KNOWN else [])
    for k, n in COMPONENTS])
def test_builtin_conforms(kind, name):
    kwargs = {"skip": SKIP.get((kind, name), ())}
    if (kind, name) in RTOL:
        kwargs["rtol"] = RTOL[(kind, name)]
    CHECKS[kind](name, **kwargs)


def test_the_example_plugins_own_tests_use_the_kit_and_pass(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    source = (EXAMPLE / "tests" / "test_zscore.py").read_text()
    assert "from netml_core.testing import check_detector" in source
    namespace: dict = {}
    exec(compile(source, str(EXAMPLE / "tests" / "test_zscore.py"), "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()
