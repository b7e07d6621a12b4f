"""Plugin discovery through real entry points: isolation of broken, misspelled and clashing plugins."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from netml_core.errors import UnknownComponentError
from netml_core.registry import Registry, get_registry

GOOD = """
    from netml_core import hookimpl

    @hookimpl
    def register_detectors(register):
        register("fakemean", "netml_fake_good_impl:MeanDistance", aliases=("fake-mean",),
                 summary="distance to the training mean")
"""

GOOD_IMPL = """
    import numpy as np
    from netml_core.components import Detector

    class MeanDistance(Detector):
        '''Euclidean distance to the training mean.'''

        def __init__(self, contamination=0.25):
            self.contamination = contamination

        def _fit(self, X):
            self.mean_ = X.mean(axis=0)

        def _score(self, X):
            return np.linalg.norm(X - self.mean_, axis=1)
"""


def load() -> Registry:
    return Registry().load_entry_points()


def test_plugin_loads_through_its_entry_point_and_factory_stays_lazy(fake_plugins):
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})
    reg = load()

    info = reg.plugins["good"]
    assert (info.distribution, info.version, info.status, info.error) == ("netml-fake-good", "1.0", "ok", "")
    assert [(c.kind, c.name, c.aliases) for c in info.components] == [("detector", "fakemean", ("fake_mean",))]
    assert "netml_fake_good_impl" not in sys.modules  # listing resolved nothing

    det = reg.create("detector", "FAKE-MEAN")  # aliases and names are case/dash-insensitive
    assert "netml_fake_good_impl" in sys.modules
    X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    det.fit(X)
    np.testing.assert_allclose(det.score(np.array([[1.0, 1.0], [4.0, 1.0]])), [0.0, 3.0])
    assert det.threshold_ == pytest.approx(np.sqrt(2.0))
    assert reg.plugin_of("detector", "fakemean").distribution == "netml-fake-good"


def test_core_plugin_is_found_like_any_other(fake_plugins):
    reg = load()
    core = reg.plugins["core"]
    assert (core.distribution, core.status) == ("netml", "ok")
    assert {(c.kind, c.name) for c in core.components} >= {("reader", "native"), ("flow_splitter", "netml"), ("flow_splitter", "meter")}
    assert reg.resolve_name("flow_splitter", "default") == "meter"


def test_broken_plugin_is_failed_and_the_rest_still_work(fake_plugins):
    fake_plugins("broken", "raise RuntimeError('boom at import')\n")
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})
    reg = load()

    broken = reg.plugins["broken"]
    assert broken.status == "failed"
    assert broken.error == "import failed: RuntimeError: boom at import"
    assert broken.distribution == "netml-fake-broken" and broken.components == []
    assert reg.plugins["good"].status == "ok" and reg.plugins["core"].status == "ok"
    assert reg.create("detector", "fakemean").fit(np.eye(3)).score(np.zeros((1, 3))).shape == (1,)


def test_misspelled_hook_makes_the_plugin_incompatible(fake_plugins):
    fake_plugins("typo", """
        from netml_core import hookimpl

        @hookimpl
        def register_detector(register):  # missing the final s
            register("never", "x:Y")

        @hookimpl
        def register_features(register):
            register("also_never", "x:Y")
    """)
    reg = load()
    typo = reg.plugins["typo"]
    assert typo.status == "incompatible"
    assert "unknown hook 'register_detector'" in typo.error
    assert typo.components == []  # nothing half-registered
    assert "never" not in reg.names("detector") and "also_never" not in reg.names("feature")


def test_raising_hook_marks_the_plugin_failed(fake_plugins):
    fake_plugins("raiser", """
        from netml_core import hookimpl

        @hookimpl
        def register_readers(register):
            raise ValueError("no reader today")
    """)
    reg = load()
    assert reg.plugins["raiser"].status == "failed"
    assert reg.plugins["raiser"].error == "register_readers raised ValueError: no reader today"
    assert "native" in reg.names("reader")


@pytest.mark.parametrize("clash", ["fakemean", "Fake_Mean"])
def test_duplicate_component_name_names_both_plugins(fake_plugins, clash):
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})
    fake_plugins("other", f"""
        from netml_core import hookimpl

        @hookimpl
        def register_detectors(register):
            register({clash!r}, "netml_fake_other:Nope")
            register("othermean", "netml_fake_other:Nope")
    """)
    reg = load()
    other = reg.plugins["other"]
    assert other.status == "conflict"
    assert other.error == (
        f"duplicate algorithm name {clash!r}: registered by plugin 'good' and by plugin 'other'"
    )
    # the first registration wins and stays usable; the clash does not hide the plugin's other names
    assert reg.get("detector", "fakemean").plugin == "good"
    assert reg.get("detector", "othermean").plugin == "other"


def test_unknown_name_lists_the_installed_ones_in_one_line(fake_plugins):
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})
    reg = load()
    with pytest.raises(UnknownComponentError) as err:
        reg.get("detector", "ocsvn")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("unknown algorithm 'ocsvn'; installed: ")
    installed = msg.split("installed: ", 1)[1].split(", ")
    assert installed == reg.names("detector") and "fakemean" in installed
    assert err.value.exit_code != 0


def test_unimportable_lazy_factory_is_one_line(fake_plugins):
    fake_plugins("lazy", """
        from netml_core import hookimpl

        @hookimpl
        def register_detectors(register):
            register("ghost", "netml_fake_not_there:Ghost")
    """)
    reg = load()
    assert reg.plugins["lazy"].status == "ok"  # listing never imports the factory
    with pytest.raises(UnknownComponentError, match=r"^algorithm 'ghost' from plugin 'lazy' cannot be loaded: "):
        reg.component_class("detector", "ghost")


def test_disable_plugins_skips_the_named_ones(fake_plugins, monkeypatch):
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})
    fake_plugins("broken", "raise RuntimeError('boom')\n")
    monkeypatch.setenv("NETML_DISABLE_PLUGINS", " broken , good")
    reg = load()
    assert "good" not in reg.plugins and "broken" not in reg.plugins
    assert "core" in reg.plugins and "fakemean" not in reg.names("detector")


def test_load_plugins_is_an_allow_list(fake_plugins, monkeypatch):
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})
    fake_plugins("broken", "raise RuntimeError('boom')\n")
    monkeypatch.setenv("NETML_LOAD_PLUGINS", "core,good")
    reg = load()
    assert sorted(reg.plugins) == ["core", "good"]
    monkeypatch.setenv("NETML_LOAD_PLUGINS", "")
    assert load().plugins == {}


def test_trace_plugins_prints_hook_calls(fake_plugins, monkeypatch, capsys):
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})
    monkeypatch.setenv("NETML_TRACE_PLUGINS", "1")
    load()
    err = capsys.readouterr().err.splitlines()
    assert "netml: trace: plugin 'good': register_detectors(register)" in err
    assert "netml: trace: plugin 'good' registered detector 'fakemean' -> 'netml_fake_good_impl:MeanDistance'" in err
    monkeypatch.setenv("NETML_TRACE_PLUGINS", "0")
    load()
    assert capsys.readouterr().err == ""


def test_process_registry_is_cached_and_resettable(fake_plugins):
    first = get_registry()
    assert get_registry() is first
    fake_plugins("good", GOOD, extra_modules={"netml_fake_good_impl": GOOD_IMPL})  # resets
    assert "fakemean" in get_registry().names("detector")
