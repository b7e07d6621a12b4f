"""flowstats: exact values on hand-built flows (both directions), log scaling, edge cases, real captures, CLI.

Hand-built FlowTables give full control (one-packet flows, directions, flags on UDP packets, empty
flows); a per-flow Python reference (``reference``) checks every column on random tables and on the
demo capture.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile

import numpy as np
import pytest

from helpers import SHARED, cli, demo_data, need
from netml_core.errors import NotFittedError, ParameterError
from netml_core.flowtable import FlowTable
from netml_core.packets import PacketTable, ip_to_words
from netml_core.readers.native import NativeReader
from netml_core.registry import get_registry
from netml_core.series import NoFlowsToFitError
from netml_core.splitter import NetmlFlowSplitter

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = (1 << b for b in range(8))
FIXED = 30  # columns before the first sizes
UNLOGGED = {"is_tcp", "bwd_pkt_share", "bwd_byte_share"}


def feature(**params):
    return get_registry().create("feature", "flowstats", params)


def table(*flows, bidirectional=True) -> FlowTable:
    """A FlowTable straight from packets, flow by flow: each flow is ``(proto, [(t_s, size[, dir[,
    tcp_flags]]), ...])`` with dir 0 (sent by the flow's src) or 1; ``bidirectional=False`` leaves
    ``direction`` unset (every packet forward)."""
    rows = [(i, proto, *(*pkt, 0, 0)[:4]) for i, (proto, pkts) in enumerate(flows) for pkt in pkts]
    n = len(rows)
    col = lambda k, dtype: np.array([r[k] for r in rows], dtype=dtype)  # noqa: E731
    back = col(4, bool)
    client = ip_to_words([f"10.0.{r[0] // 250}.{r[0] % 250 + 1}" for r in rows])
    server = ip_to_words(["10.9.9.9"] * n)
    pt = PacketTable(
        ts_ns=np.round(col(2, np.float64) * 1e9).astype(np.int64), wire_len=col(3, np.int64),
        ip_version=np.full(n, 4), proto=col(1, np.int64),
        src=np.where(back[:, None], server, client), dst=np.where(back[:, None], client, server),
        sport=np.where(back, 80, 1234), dport=np.where(back, 1234, 80), tcp_flags=col(5, np.int64),
        ttl=np.full(n, 64))
    m = len(flows)
    offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum([len(p) for _, p in flows], out=offsets[1:])
    return FlowTable(
        packets=pt, order=np.arange(n, dtype=np.int64), offsets=offsets,
        src=ip_to_words([f"10.0.{i // 250}.{i % 250 + 1}" for i in range(m)]), dst=ip_to_words(["10.9.9.9"] * m),
        sport=np.full(m, 1234, np.uint16), dport=np.full(m, 80, np.uint16),
        proto=np.array([p for p, _ in flows], dtype=np.uint8), ip_version=np.full(m, 4, np.uint8),
        direction=back.astype(np.uint8) if bidirectional else None)


def values(X: np.ndarray, row: int, f) -> dict:
    return dict(zip(f.feature_names(), X[row].tolist()))


def reference(flows: FlowTable, first_n: int = 8, log: bool = True) -> np.ndarray:
    """The definition, one flow at a time (np.quantile, np.std ...): the oracle for the vectorised code."""
    pk = flows.packets
    out = []
    for i in range(len(flows)):
        a, b = flows.offsets[i], flows.offsets[i + 1]
        idx = flows.order[a:b]
        back = np.zeros(b - a, bool) if flows.direction is None else flows.direction[a:b] == 1
        size = pk.wire_len[idx].astype(np.float64)
        iat = np.diff(pk.ts_ns[idx]).astype(np.float64)
        flags = pk.tcp_flags[idx].astype(np.int64) if flows.proto[i] == 6 else np.zeros(b - a, np.int64)
        fb, bb = size[~back].sum(), size[back].sum()
        row = [(pk.ts_ns[idx[-1]] - pk.ts_ns[idx[0]]) / 1e9, (~back).sum(), back.sum(), fb, bb,
               size.mean(), size.std(), size.min(), *np.quantile(size, [0.25, 0.5, 0.75]), size.max(),
               size[~back].mean() if (~back).any() else 0.0, size[back].mean() if back.any() else 0.0]
        if len(iat):
            row += [iat.mean() / 1e9, iat.std() / 1e9, iat.min() / 1e9, np.median(iat) / 1e9, iat.max() / 1e9]
        else:
            row += [0.0] * 5
        row += [((flags >> bit) & 1).sum() for bit in range(8)]
        row += [float(flows.proto[i] == 6), back.mean(), bb / (fb + bb) if fb + bb else 0.0]
        first = np.where(back, -size, size)[:first_n]
        if log:
            row = [x if j in (27, 28, 29) else math.log1p(x) for j, x in enumerate(row)]
            first = np.sign(first) * np.log1p(np.abs(first))
        out.append(row + list(first) + [0.0] * (first_n - len(first)))
    return np.array(out, dtype=np.float64).reshape(len(flows), FIXED + first_n)


#: TCP with a handshake-like start, both directions; a 1-packet TCP flow; a UDP query/answer with
#: junk in the flag column; a zero-duration UDP burst sent one way
HAND = (
    (6, [(10.0, 60, 0, SYN), (10.5, 1500, 1, SYN | ACK), (11.0, 100, 0, PSH | ACK), (12.0, 40, 1, RST)]),
    (6, [(5.0, 74, 0, SYN | ECE | CWR)]),
    (17, [(1.0, 80, 0, 0xFF), (1.25, 200, 1, 0xFF)]),
    (17, [(7.0, 100, 0), (7.0, 100, 0), (7.0, 300, 0)]),
)


# -- registration, parameters, state ------------------------------------------------------------
def test_registered_from_its_own_plugin_with_documented_parameters():
    reg = get_registry()
    plugin = reg.plugin_of("feature", "flowstats")
    assert (plugin.distribution, plugin.status) == ("netml-features-flowstats", "ok")
    cls = reg.component_class("feature", "flowstats")
    assert cls.param_defaults() == {"first_n": 8, "log": True}
    assert all(d["doc"] for d in cls.describe_params())


def test_names_and_width_follow_first_n():
    fl = table(*HAND)
    f = feature().fit(fl)
    names = f.feature_names()
    assert f.n_features_ == len(names) == 38 and len(set(names)) == 38
    assert names[:5] == ["duration", "fwd_pkts", "bwd_pkts", "fwd_bytes", "bwd_bytes"]
    assert names[27:] == ["is_tcp", "bwd_pkt_share", "bwd_byte_share"] + [f"first_size_{i}" for i in range(8)]
    assert feature(first_n=0).fit(fl).transform(fl).shape == (4, 30)
    assert feature(first_n=3).fit(fl).transform(fl).shape == (4, 33)


@pytest.mark.parametrize("params, word", [
    ({"first_n": -1}, "first_n"), ({"first_n": 2.0}, "first_n"), ({"first_n": True}, "first_n"),
    ({"first_n": "8"}, "first_n"), ({"first_n": 10**6}, "first_n"), ({"log": "yes"}, "log"),
    ({"log": 1}, "log"), ({"dim": 3}, "dim"),
])
def test_bad_parameters_are_one_line_errors(params, word):
    with pytest.raises(ParameterError) as exc:
        feature(**params)
    assert word in str(exc.value) and "\n" not in str(exc.value)


def test_not_fitted_no_flows_and_state_round_trip():
    fl = table(*HAND)
    with pytest.raises(NotFittedError):
        feature().transform(fl)
    with pytest.raises(NotFittedError):
        feature().feature_names()
    with pytest.raises(NoFlowsToFitError):
        feature().fit(fl.subset(np.zeros(4, dtype=bool)))
    f = feature(first_n=5, log=False).fit(fl)
    state = json.loads(json.dumps(f.get_state()))
    assert state == {"n_features_": 35}
    g = feature(first_n=5, log=False).set_state(state)
    assert np.array_equal(g.transform(fl), f.transform(fl))
    assert g.feature_names() == f.feature_names()
    # a state that does not match the parameters is refused rather than giving another width
    with pytest.raises(ParameterError, match="fit it again"):
        feature(first_n=6).set_state(state).transform(fl)


# -- exact values ---------------------------------------------------------------------------------
def test_exact_values_of_a_bidirectional_tcp_flow():
    f = feature(log=False).fit(table(*HAND))
    v = values(f.transform(table(*HAND)), 0, f)
    assert v == {
        "duration": 2.0, "fwd_pkts": 2, "bwd_pkts": 2, "fwd_bytes": 160, "bwd_bytes": 1540,
        "size_mean": 425.0, "size_std": math.sqrt(385675), "size_min": 40, "size_q25": 55.0,
        "size_median": 80.0, "size_q75": 450.0, "size_max": 1500,
        "fwd_size_mean": 80.0, "bwd_size_mean": 770.0,
        "iat_mean": 2 / 3, "iat_std": math.sqrt(1 / 18), "iat_min": 0.5, "iat_median": 0.5, "iat_max": 1.0,
        "tcp_fin": 0, "tcp_syn": 2, "tcp_rst": 1, "tcp_psh": 1, "tcp_ack": 2, "tcp_urg": 0, "tcp_ece": 0,
        "tcp_cwr": 0, "is_tcp": 1.0, "bwd_pkt_share": 0.5, "bwd_byte_share": 1540 / 1700,
        "first_size_0": 60, "first_size_1": -1500, "first_size_2": 100, "first_size_3": -40,
        "first_size_4": 0, "first_size_5": 0, "first_size_6": 0, "first_size_7": 0,
    }


def test_exact_values_of_a_one_packet_flow():
    f = feature(log=False).fit(table(*HAND))
    v = values(f.transform(table(*HAND)), 1, f)
    expect = dict.fromkeys(f.feature_names(), 0.0)
    expect.update(fwd_pkts=1, fwd_bytes=74, size_mean=74, size_min=74, size_q25=74, size_median=74,
                  size_q75=74, size_max=74, fwd_size_mean=74, tcp_syn=1, tcp_ece=1, tcp_cwr=1, is_tcp=1,
                  first_size_0=74)
    assert v == expect


def test_exact_values_of_udp_flows_flag_column_ignored():
    f = feature(log=False).fit(table(*HAND))
    X = f.transform(table(*HAND))
    v = values(X, 2, f)
    assert v == {
        "duration": 0.25, "fwd_pkts": 1, "bwd_pkts": 1, "fwd_bytes": 80, "bwd_bytes": 200,
        "size_mean": 140.0, "size_std": 60.0, "size_min": 80, "size_q25": 110.0, "size_median": 140.0,
        "size_q75": 170.0, "size_max": 200, "fwd_size_mean": 80.0, "bwd_size_mean": 200.0,
        "iat_mean": 0.25, "iat_std": 0.0, "iat_min": 0.25, "iat_median": 0.25, "iat_max": 0.25,
        "tcp_fin": 0, "tcp_syn": 0, "tcp_rst": 0, "tcp_psh": 0, "tcp_ack": 0, "tcp_urg": 0, "tcp_ece": 0,
        "tcp_cwr": 0, "is_tcp": 0.0, "bwd_pkt_share": 0.5, "bwd_byte_share": 200 / 280,
        "first_size_0": 80, "first_size_1": -200, "first_size_2": 0, "first_size_3": 0,
        "first_size_4": 0, "first_size_5": 0, "first_size_6": 0, "first_size_7": 0,
    }
    # zero duration, nothing came back: every time value 0, every backward value 0
    v = values(X, 3, f)
    assert (v["duration"], v["iat_mean"], v["iat_std"], v["iat_max"]) == (0.0, 0.0, 0.0, 0.0)
    assert (v["fwd_pkts"], v["bwd_pkts"], v["fwd_bytes"], v["bwd_bytes"]) == (3, 0, 500, 0)
    assert (v["size_min"], v["size_median"], v["size_max"], v["size_q75"]) == (100, 100, 300, 200.0)
    assert (v["bwd_size_mean"], v["bwd_pkt_share"], v["bwd_byte_share"]) == (0.0, 0.0, 0.0)
    assert [v[f"first_size_{i}"] for i in range(4)] == [100, 100, 300, 0]


def test_answered_and_unanswered_flows_differ():
    asked = (17, [(0.0, 80, 0), (0.5, 80, 0)])
    answered = (17, [(0.0, 80, 0), (0.5, 80, 1)])
    f = feature().fit(table(asked))
    X = f.transform(table(asked, answered))
    c = {n: i for i, n in enumerate(f.feature_names())}
    assert X[0, c["bwd_pkt_share"]] == 0.0 and X[1, c["bwd_pkt_share"]] == 0.5
    assert X[0, c["bwd_pkts"]] == 0.0 and X[1, c["bwd_pkts"]] == math.log1p(1)
    assert X[1, c["first_size_1"]] == -math.log1p(80) == -X[0, c["first_size_1"]]


def test_first_sizes_are_cut_to_first_n():
    fl = table((6, [(k * 0.1, 100 + k, k % 2) for k in range(12)]))
    X = feature(first_n=3, log=False).fit(fl).transform(fl)
    assert X[0, FIXED:].tolist() == [100, -101, 102]
    X = feature(first_n=14, log=False).fit(fl).transform(fl)
    assert X[0, FIXED:].tolist() == [100, -101, 102, -103, 104, -105, 106, -107, 108, -109, 110, -111, 0, 0]


def test_without_direction_every_packet_is_forward():
    bi, uni = table(*HAND), table(*HAND, bidirectional=False)
    f = feature(log=False).fit(bi)
    Xb, Xu = f.transform(bi), f.transform(uni)
    c = {n: i for i, n in enumerate(f.feature_names())}
    n_pkts = np.diff(bi.offsets)
    assert Xu[:, c["fwd_pkts"]].tolist() == n_pkts.tolist()
    assert Xu[:, c["fwd_bytes"]].tolist() == [1700, 74, 280, 500]
    assert Xu[:, c["fwd_size_mean"]].tolist() == Xu[:, c["size_mean"]].tolist()
    for name in ("bwd_pkts", "bwd_bytes", "bwd_size_mean", "bwd_pkt_share", "bwd_byte_share"):
        assert not Xu[:, c[name]].any(), name
    assert (Xu[:, FIXED:] >= 0).all() and np.array_equal(Xu[:, FIXED:], np.abs(Xb[:, FIXED:]))
    # whole-flow values do not depend on the direction
    same = [c[n] for n in f.feature_names()[5:12] + f.feature_names()[14:28]]
    assert np.array_equal(Xu[:, same], Xb[:, same])


def test_log_scaling_column_by_column():
    fl = table(*HAND)
    f = feature(log=False).fit(fl)
    raw = f.transform(fl)
    X = feature().fit(fl).transform(fl)
    for j, name in enumerate(f.feature_names()):
        if name in UNLOGGED:
            assert np.array_equal(X[:, j], raw[:, j]), name
        elif name.startswith("first_size_"):
            np.testing.assert_allclose(X[:, j], np.sign(raw[:, j]) * np.log1p(np.abs(raw[:, j])),
                                       rtol=1e-15, atol=0, err_msg=name)
        else:
            np.testing.assert_allclose(X[:, j], np.log1p(raw[:, j]), rtol=1e-15, atol=0,
                                       err_msg=name)
    assert X[0, 1] == math.log(3.0)  # 2 forward packets
    assert X[0, FIXED + 1] == -math.log(1501.0)


# -- robustness -----------------------------------------------------------------------------------
def test_empty_table_gives_zero_rows():
    fl = table(*HAND)
    f = feature().fit(fl)
    X = f.transform(fl.subset(np.zeros(4, dtype=bool)))
    assert X.shape == (0, 38) and X.dtype == np.float64 and X.flags.c_contiguous
    X = f.transform(table())
    assert X.shape == (0, 38)


def test_an_empty_flow_gets_a_zero_row_and_the_others_are_unchanged():
    fl = table(*HAND)
    gap = FlowTable(**{**fl.__dict__, "offsets": np.array([0, 4, 4, 5, 7, 10]),
                       "src": fl.src[[0, 0, 1, 2, 3]], "dst": fl.dst[[0, 0, 1, 2, 3]],
                       "sport": fl.sport[[0, 0, 1, 2, 3]], "dport": fl.dport[[0, 0, 1, 2, 3]],
                       "proto": fl.proto[[0, 0, 1, 2, 3]], "ip_version": fl.ip_version[[0, 0, 1, 2, 3]]})
    f = feature().fit(fl)
    X = f.transform(gap)
    assert np.array_equal(X[[0, 2, 3, 4]], f.transform(fl))
    assert X[1].tolist() == [1.0 if n == "is_tcp" else 0.0 for n in f.feature_names()]


def test_broken_flow_tables_are_refused():
    fl = table(*HAND)
    f = feature().fit(fl)
    with pytest.raises(ValueError, match="direction"):
        f.transform(FlowTable(**{**fl.__dict__, "direction": fl.direction[:-1]}))
    with pytest.raises(ValueError, match="offsets"):
        f.transform(FlowTable(**{**fl.__dict__, "offsets": fl.offsets[:-1]}))
    with pytest.raises(TypeError):
        f.transform(fl.packets)


@pytest.mark.parametrize("seed", range(4))
def test_random_tables_match_the_per_flow_definition(seed):
    rng = np.random.default_rng(seed)
    flows = []
    for _ in range(300):
        n = int(rng.choice([1, 1, 2, 3, rng.integers(4, 40)]))
        t = np.cumsum(rng.choice([0.0, 1e-6, 0.001, 0.3, 700.0], size=n)) + 1.5e9
        size = rng.choice([0, 40, 60, 1514, 9000, 65535], size=n)
        flows.append((int(rng.choice([6, 17])), [(float(a), int(s), int(d), int(fl)) for a, s, d, fl in
                      zip(t, size, rng.random(n) < 0.4, rng.integers(0, 256, n))]))
    fl = table(*flows)
    for log in (False, True):
        for first_n in (0, 8, 50):
            X = feature(first_n=first_n, log=log).fit(fl).transform(fl)
            assert X.dtype == np.float64 and X.flags.c_contiguous and np.isfinite(X).all()
            np.testing.assert_allclose(X, reference(fl, first_n, log), rtol=1e-12, atol=1e-300)
    X = feature().fit(fl).transform(table(*flows, bidirectional=False))
    assert np.isfinite(X).all()


def test_rows_do_not_depend_on_the_other_flows():
    """A flow's row is the same whatever else is in the table (training vs classifying)."""
    packets = NativeReader().read(str(demo_data() / "demo.pcap"))
    fl = NetmlFlowSplitter(direction="bi", keep_tail=True, interval=10.0).split(packets)
    f = feature().fit(fl)
    X = f.transform(fl)
    idx = np.random.default_rng(0).permutation(len(fl))[:37]
    assert np.array_equal(f.transform(fl.subset(idx)), X[idx])


def test_huge_gaps_take_the_exact_sort_path():
    """Values too large to pack with the flow index into 63 bits are sorted exactly (lexsort)."""
    from netml_features_flowstats.flowstats import _sort_within_nonneg

    big = 2**62
    v = np.array([big + 5, 3, big, 1, 7], dtype=np.int64)
    assert _sort_within_nonneg(v, np.array([0, 0, 1, 1, 2]), 3).tolist() == [3, big + 5, 1, big, 7]
    assert _sort_within_nonneg(v[1:], np.array([0, 1, 2, 2]), 3).tolist() == [3, big, 1, 7]
    # packed in a uint32, then in an int64
    assert _sort_within_nonneg(v[1:] % 1000, np.array([0, 1, 2, 2]), 3).tolist() == [3, big % 1000, 1, 7]
    w = np.array([2**40, 3, 2**40 + 1, 2**40 - 1])
    assert _sort_within_nonneg(w, np.array([0, 0, 1, 1]), 2).tolist() == [3, 2**40, 2**40 - 1, 2**40 + 1]
    fl = table((17, [(0.0, 60), (5e9, 70), (5e9 + 1, 80), (6e9, 90)]), (17, [(0.0, 60), (5.0, 60)]))
    X = feature(log=False).fit(fl).transform(fl)
    np.testing.assert_allclose(X, reference(fl, 8, False), rtol=1e-15)
    assert X[0, 17] == pytest.approx(1e9) and X[1, 17] == 5.0  # iat_median


# -- real captures --------------------------------------------------------------------------------
def test_demo_capture_bidirectional_flows():
    packets = NativeReader().read(str(demo_data() / "demo.pcap"))
    fl = NetmlFlowSplitter(direction="bi", keep_tail=True, interval=1e9).split(packets)
    f = feature(log=False).fit(fl)
    X = f.transform(fl)
    assert X.shape == (188, 38) and np.isfinite(X).all()
    np.testing.assert_allclose(X, reference(fl, 8, False), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(feature().fit(fl).transform(fl), reference(fl), rtol=1e-12, atol=1e-300)
    c = {n: i for i, n in enumerate(f.feature_names())}
    # the demo holds only what 192.168.10.5 sent: every packet forward, every byte counted once
    assert X[:, c["fwd_pkts"]].sum() == 5984 and not X[:, c["bwd_pkts"]].any()
    assert X[:, c["fwd_bytes"]].sum() == int(packets.wire_len.sum()) == 2000406
    assert X[:, c["is_tcp"]].sum() == 83
    assert X[:, c["tcp_syn"]].sum() == 240 and X[:, c["tcp_ack"]].sum() == 3146
    # the first flow: LLMNR 192.168.10.5:59664 -> 224.0.0.252:5355, 52 packets of 70 bytes in 0.422361 s
    v = values(X, 0, f)
    assert (v["duration"], v["fwd_pkts"], v["fwd_bytes"], v["size_std"], v["iat_max"]) == \
        (0.422361, 52, 3640, 0.0, 0.422332)
    assert v["iat_mean"] == 422361 / 51 / 1e6
    # a TCP flow 192.168.10.5:49157 -> 192.168.10.3:135
    v = values(X, 7, f)
    assert (fl.sport[7], fl.dport[7], fl.proto[7]) == (49157, 135, 6)
    assert [v[k] for k in ("fwd_pkts", "fwd_bytes", "tcp_syn", "tcp_fin", "tcp_psh", "tcp_ack", "size_q75")] \
        == [60, 7480, 4, 4, 24, 56, 222.0]


def test_real_bidirectional_capture():
    """A DNS tunnel capture: one client/resolver pair, both directions in one flow."""
    path = need(SHARED / "data" / "evalset-dev" / "files"
                / "DNS-Tunnel-Datasets__dnscat2-txt_00001_20230903183304.pcap")
    packets = NativeReader().read(str(path))
    fl = NetmlFlowSplitter(direction="bi", keep_tail=True, interval=1e9).split(packets)
    f = feature(log=False).fit(fl)
    X = f.transform(fl)
    assert X.shape == (1, 38)
    np.testing.assert_allclose(X, reference(fl, 8, False), rtol=1e-12, atol=1e-300)
    v = values(X, 0, f)
    from_src = (packets.src == fl.src[0]).all(axis=1)
    assert v["fwd_pkts"] == from_src.sum() == 3975 and v["bwd_pkts"] == 3975
    assert v["fwd_bytes"] == packets.wire_len[from_src].sum() == 1136770
    assert v["bwd_bytes"] == packets.wire_len[~from_src].sum() == 949945
    assert v["bwd_pkt_share"] == 0.5 and v["bwd_byte_share"] == 949945 / (949945 + 1136770)
    assert [v[f"first_size_{i}"] for i in range(8)] == [340, -293, 340, -293, -108, 340, -293, 155]


# -- CLI ------------------------------------------------------------------------------------------
def _scores(text: str) -> dict:
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = (row["src"], row["sport"], row["dst"], row["dport"], row["start"])
        assert key not in out
        out[key] = float(row["score"])
    return out


def test_cli_learn_then_classify_gives_the_same_scores(tmp_path):
    data = demo_data()
    code, out, err = cli("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--feature", "flowstats",
                         "-o", tmp_path / "m.netml", "--report", tmp_path / "rep")
    assert code == 0, err
    assert "x 38 values" in out + err
    trained = _scores((tmp_path / "rep" / "scores.csv").read_text())
    code, out, err = cli("classify", "-m", tmp_path / "m.netml", "-p", data / "demo.pcap", "--report-all",
                         "--format", "csv")
    assert code == 0, err
    again = _scores(out)
    assert len(trained) > 50 and set(trained) <= set(again)
    # the feature rows are the same (test_rows_do_not_depend_on_the_other_flows); the detector's
    # arithmetic on a batch of 30 test flows and on all flows may differ in the last bit
    assert all(again[k] == pytest.approx(s, rel=1e-12, abs=1e-12) for k, s in trained.items())
    with zipfile.ZipFile(tmp_path / "m.netml") as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert len(manifest["info"]["feature_names"]) == 38
