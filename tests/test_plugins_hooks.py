"""Every hookspec, exercised through a real entry point; meta-tests keep the hook list honest.

One throwaway distribution implements all five hooks with small working components (a text reader,
a per-protocol splitter, a count/bytes feature, a max-deviation detector, a ``hello`` command), and
each ``test_hook_<name>`` drives one of them. Adding a hookspec without a test, a docstring or a
README mention fails ``test_every_hookspec_is_*``.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from netml_core import hookspecs
from netml_core.components import Detector, Feature, FlowSplitter, Reader
from netml_core.flowtable import FlowTable
from netml_core.registry import KIND_HOOKS, Registry

README = Path(__file__).resolve().parents[1] / "README.md"

ENTRY = """
    import click
    from netml_core import hookimpl

    @hookimpl
    def register_readers(register):
        register("textpkts", "netml_fake_all_impl:TextReader", summary="'ts_ns len proto' lines")

    @hookimpl
    def register_flow_splitters(register):
        register("byproto", "netml_fake_all_impl:ByProto")

    @hookimpl
    def register_features(register):
        register("countbytes", "netml_fake_all_impl:CountBytes")

    @hookimpl
    def register_detectors(register):
        register("maxdev", "netml_fake_all_impl:MaxDev")

    @hookimpl
    def register_commands(cli):
        @cli.command()
        @click.argument("who")
        def hello(who):
            '''Say hello (from a plugin).'''
            click.echo(f"hello {who} from a plugin")
"""

IMPL = """
    import numpy as np
    from netml_core.components import Detector, Feature, FlowSplitter, Reader
    from netml_core.flowtable import FlowTable
    from netml_core.packets import COLUMNS, PacketTable

    class TextReader(Reader):
        '''One packet per line: ts_ns wire_len proto.'''
        def iter_batches(self, source, max_packets=1_000_000):
            rows = np.loadtxt(source, dtype=np.int64, ndmin=2)
            n = len(rows)
            cols = {k: np.zeros((n, *shape), dt) for k, (dt, shape) in COLUMNS.items()}
            cols.update(ts_ns=rows[:, 0], wire_len=rows[:, 1], proto=rows[:, 2], ip_version=np.full(n, 4))
            yield PacketTable(**cols, source=str(source), records=n)

    class ByProto(FlowSplitter):
        '''All packets of one IP protocol form one flow.'''
        def split(self, packets):
            order = np.lexsort((packets.ts_ns, packets.proto))
            protos, counts = np.unique(packets.proto, return_counts=True)
            first = np.concatenate([[0], np.cumsum(counts)])
            zeros = np.zeros(len(protos), np.uint16)
            return FlowTable(packets, order, first, np.zeros((len(protos), 2), np.uint64),
                             np.zeros((len(protos), 2), np.uint64), zeros, zeros,
                             protos.astype(np.uint8), np.full(len(protos), 4, np.uint8))

    class CountBytes(Feature):
        '''Packets and bytes per flow.'''
        def fit(self, flows):
            self.dim_ = 2
            return self
        def transform(self, flows):
            lens = flows.packets.wire_len[flows.order].astype(np.float64)
            n = np.diff(flows.offsets)
            return np.column_stack([n, np.add.reduceat(lens, flows.offsets[:-1])])
        def feature_names(self):
            return ["n_pkts", "n_bytes"]

    class MaxDev(Detector):
        '''Largest absolute deviation from the training median.'''
        def __init__(self, contamination=0.1):
            self.contamination = contamination
        def _fit(self, X):
            self.median_ = np.median(X, axis=0)
        def _score(self, X):
            return np.abs(X - self.median_).max(axis=1)
"""

PACKETS = "100 60 6\n300 1500 6\n200 40 17\n250 1500 6\n400 80 17\n"


@pytest.fixture
def reg(fake_plugins) -> Registry:
    fake_plugins("all", ENTRY, extra_modules={"netml_fake_all_impl": IMPL})
    reg = Registry().load_entry_points()
    assert reg.plugins["all"].status == "ok", reg.plugins["all"].error
    return reg


@pytest.fixture
def flows(reg, tmp_path) -> FlowTable:
    path = tmp_path / "pkts.txt"
    path.write_text(PACKETS)
    packets = reg.create("reader", "textpkts").read(path)
    return reg.create("flow_splitter", "byproto").fit(packets).split(packets)


def test_hook_register_readers(reg, tmp_path):
    path = tmp_path / "pkts.txt"
    path.write_text(PACKETS)
    reader = reg.create("reader", "textpkts")
    assert isinstance(reader, Reader)
    packets = reader.read(path)
    assert len(packets) == 5 and packets.records == 5
    assert packets.wire_len.tolist() == [60, 1500, 40, 1500, 80]
    assert packets.counts() == {"ipv4_tcp": 3, "ipv4_udp": 2, "ipv6_tcp": 0, "ipv6_udp": 0}


def test_hook_register_flow_splitters(reg, flows):
    assert isinstance(reg.create("flow_splitter", "byproto"), FlowSplitter)
    assert len(flows) == 2
    assert flows.proto.tolist() == [6, 17]
    assert flows.offsets.tolist() == [0, 3, 5]
    # time-sorted within each flow
    assert flows.packets.ts_ns[flows.order].tolist() == [100, 250, 300, 200, 400]


def test_hook_register_features(reg, flows):
    feat = reg.create("feature", "countbytes")
    assert isinstance(feat, Feature)
    X = feat.fit_transform(flows)
    np.testing.assert_array_equal(X, [[3, 3060], [2, 120]])
    assert feat.feature_names() == ["n_pkts", "n_bytes"] and feat.get_state() == {"dim_": 2}


def test_hook_register_detectors(reg):
    det = reg.create("detector", "maxdev", {"contamination": 0.2})
    assert isinstance(det, Detector)
    det.fit(np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]))
    np.testing.assert_allclose(det.score(np.array([[2.0, 20.0], [2.0, 95.0]])), [0.0, 75.0])
    assert det.predict(np.array([[2.0, 20.0], [2.0, 95.0]])).tolist() == [0, 1]


def test_hook_register_commands(fake_plugins, run_cli):
    fake_plugins("all", ENTRY, extra_modules={"netml_fake_all_impl": IMPL})
    res = run_cli("hello", "world")
    assert (res.exit_code, res.stdout, res.stderr) == (0, "hello world from a plugin\n", "")
    listed = run_cli("--help").stdout.split("Commands:", 1)[1]
    assert re.search(r"^  hello\s+Say hello \(from a plugin\)\.$", listed, re.M)
    assert "netml_fake_all_impl" not in __import__("sys").modules  # a command needs no component code


def test_failing_register_commands_does_not_stop_the_cli(fake_plugins, run_cli):
    fake_plugins("badcli", """
        from netml_core import hookimpl

        @hookimpl
        def register_commands(cli):
            raise RuntimeError("cannot add commands")
    """)
    res = run_cli("plugins", "list")  # listing itself never runs register_commands
    assert res.exit_code == 0 and "badcli" in res.stdout
    res = run_cli("--debug", "no-such-command")
    assert res.exit_code == 2
    from netml_core.registry import get_registry

    info = get_registry().plugins["badcli"]
    assert (info.status, info.error) == ("failed", "register_commands raised RuntimeError: cannot add commands")


# -- meta-tests ------------------------------------------------------------------------------

HOOKS = sorted(
    name for name, fn in vars(hookspecs).items()
    if callable(fn) and getattr(fn, "netml_spec", None) is not None
)


def test_hook_list_is_the_designed_one():
    assert HOOKS == sorted([*KIND_HOOKS.values(), "register_commands"])


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_exercised(hook):
    assert callable(globals().get(f"test_hook_{hook}")), f"no test_hook_{hook} in {__name__}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_documented(hook):
    fn = getattr(hookspecs, hook)
    assert (inspect.getdoc(fn) or "").strip(), f"hookspec {hook} has no docstring"
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Writing a plugin", 1)
    assert len(section) == 2, "README.md has no '## Writing a plugin' section"
    body = re.split(r"\n## ", section[1], maxsplit=1)[0]
    assert f"`{hook}(" in body, f"README 'Writing a plugin' does not document {hook}"
