"""Issue 12, a first-time user's plugins: name precedence, restricted plugin sets, disabled plugins,
and ``netml inspect``'s flow count."""

from __future__ import annotations

import numpy as np
import pytest
from test_hardening_cli import capture  # noqa: F401 - fixture
from test_hardening_model_file import make_model

from netml_core import registry
from netml_core.errors import UnknownComponentError
from netml_core.registry import Registry

HIJACK = """
    from netml_core import hookimpl

    @hookimpl
    def register_detectors(register):
        register("ocsvm", "netml_fake_aaa_impl:Broken", summary="not the one-class SVM")
        register("if", "netml_fake_aaa_impl:Broken")  # a built-in's alias
        register("aaaother", "netml_fake_aaa_impl:Broken")
"""


@pytest.fixture
def fresh_registry():
    """The process registry rebuilt from the environment for the test, and again afterwards."""
    registry.reset_registry()
    yield
    registry.reset_registry()


def test_built_ins_keep_their_names(fake_plugins):
    """A third-party plugin registering 'ocsvm' took the name (it loaded first, by name order); the
    built-in became 'conflict' and every default learn failed through the third party's code."""
    fake_plugins("aaa", HIJACK)
    reg = Registry().load_entry_points()
    assert reg.get("detector", "ocsvm").plugin == "models_ocsvm"
    assert reg.get("detector", "if").plugin == "models_iforest"
    assert reg.plugins["models_ocsvm"].status == "ok"
    third = reg.plugins["aaa"]
    assert third.status == "conflict"
    assert "duplicate algorithm name 'ocsvm': registered by plugin 'models_ocsvm' and by plugin 'aaa'" in third.error
    assert reg.get("detector", "aaaother").plugin == "aaa"  # its own names still work
    assert list(reg.plugins)[:2] == ["core", next(n for n in reg.plugins if n != "core")]
    assert list(reg.plugins)[-1] == "aaa"  # third parties register after every built-in


def test_the_user_can_give_a_built_in_name_away(fake_plugins, monkeypatch):
    fake_plugins("aaa", HIJACK)
    monkeypatch.setenv("NETML_DISABLE_PLUGINS", "models_ocsvm")
    reg = Registry().load_entry_points()
    assert reg.get("detector", "ocsvm").plugin == "aaa" and reg.plugins["aaa"].error.count("duplicate") == 1


def test_an_entry_point_with_a_built_in_name_is_a_listed_conflict(fake_plugins, run_cli):
    fake_plugins("models_ocsvm", HIJACK, dist="evil-ocsvm")
    reg = Registry().load_entry_points()
    assert reg.plugins["models_ocsvm"].distribution == "netml-models-ocsvm"
    clash = reg.plugins["models_ocsvm (evil-ocsvm)"]
    assert clash.status == "conflict" and "taken by netml-models-ocsvm" in clash.error
    res = run_cli("plugins", "list")
    assert "models_ocsvm (evil-ocsvm): conflict: entry point name 'models_ocsvm' is taken" in res.stderr


def test_a_restricted_plugin_set_without_a_default_component_names_plugin_and_variable(
        monkeypatch, fresh_registry, run_cli, capture, tmp_path):  # noqa: F811
    monkeypatch.setenv("NETML_LOAD_PLUGINS", "core,readers_dpkt,models_ocsvm")
    res = run_cli("learn", "-p", capture, "-o", tmp_path / "m.netml")
    assert res.exit_code == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert "comes from plugin" in res.stderr and "NETML_LOAD_PLUGINS leaves out" in res.stderr
    assert "NETML_LOAD_PLUGINS=core,readers_dpkt,models_ocsvm" in res.stderr
    # the README's example holds every default component
    monkeypatch.setenv("NETML_LOAD_PLUGINS", "core,readers_dpkt,features_flowstats,models_gmm")
    registry.reset_registry()
    res = run_cli("learn", "-p", capture, "-o", tmp_path / "m.netml")
    assert res.exit_code == 0, res.stderr


def test_disabled_plugins_are_listed_and_named_when_needed(monkeypatch, fresh_registry, run_cli, tmp_path):
    model = make_model(tmp_path / "m.netml", "kde")
    monkeypatch.setenv("NETML_DISABLE_PLUGINS", "models_kde")
    registry.reset_registry()
    res = run_cli("plugins", "list")
    row = next(line for line in res.stdout.splitlines() if line.startswith("models_kde "))
    assert row.split()[1:4] == ["netml-models-kde", "1.0.0", "disabled"]
    res = run_cli("classify", "-m", model, "-p", tmp_path / "none.pcap")
    assert res.exit_code == 2 and "pip install" not in res.stderr
    assert res.stderr == (f"netml: error: model file {model} needs the algorithm 'kde' from plugin 'models_kde' "
                          "(netml-models-kde), which NETML_DISABLE_PLUGINS disables "
                          "(NETML_DISABLE_PLUGINS=models_kde): remove it from there\n")
    with pytest.raises(UnknownComponentError, match="unknown algorithm 'nosuch'; installed: "):
        registry.get_registry().get("detector", "nosuch")  # a name nobody provides: the usual line


# -- netml inspect's flow count ------------------------------------------------------------------
def test_inspect_counts_flows_and_conversations_exactly(tmp_path):
    """np.unique over rows took 2.1 s of 3.5 s on 1M packets; a hash count gives the same numbers."""
    from netml_core.inspection import conversations as _conversations, flow_keys as _flow_keys, unique_keys
    from netml_core.packets import PacketTable

    rng = np.random.default_rng(3)
    n = 20_000
    t = PacketTable(ts_ns=np.arange(n), wire_len=np.full(n, 60), ip_version=np.full(n, 4),
                    proto=rng.choice([6, 17], n), src=np.stack([np.zeros(n), rng.integers(0, 40, n)], 1),
                    dst=np.stack([np.zeros(n), rng.integers(0, 40, n)], 1), sport=rng.integers(0, 30, n),
                    dport=rng.integers(0, 30, n), tcp_flags=np.zeros(n), ttl=np.full(n, 64))
    keys = _flow_keys(t)
    full = np.column_stack([t.proto.astype(np.uint64) << np.uint64(32) | t.sport.astype(np.uint64) << np.uint64(16)
                            | t.dport.astype(np.uint64), t.src, t.dst])
    assert len(keys) == len(np.unique(full, axis=0))
    assert len(unique_keys([keys, keys[::-1]])) == len(keys)
    a = np.column_stack([full[:, 1:3], (full[:, 0] >> np.uint64(16)) & np.uint64(0xFFFF)])
    b = np.column_stack([full[:, 3:5], full[:, 0] & np.uint64(0xFFFF)])
    pairs = {(p, *sorted([tuple(x), tuple(y)])) for p, x, y in zip((full[:, 0] >> np.uint64(32)).tolist(),
                                                                     a.tolist(), b.tolist())}
    assert _conversations(keys) == len(pairs)


def test_unique_rows_survives_hash_collisions(monkeypatch):
    from netml_core import segments

    rng = np.random.default_rng(5)
    cols = [rng.integers(0, 5, 3000).astype(np.uint64), rng.integers(0, 7, 3000).astype(np.uint64)]
    want = len(np.unique(np.column_stack(cols), axis=0))
    assert len(segments.unique_rows(cols)) == want
    monkeypatch.setattr(segments, "hash_rows", lambda c: np.zeros(len(c[0]), np.uint64))  # every row collides
    got = segments.unique_rows(cols)
    assert len(got) == want and len({(int(cols[0][i]), int(cols[1][i])) for i in got}) == want
