"""Default flow splitter: netml 0.7.1's flows on the demo capture, an independent oracle, options, errors."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from netml_core.errors import NetmlError, NotFittedError, ParameterError
from netml_core.packets import PacketTable, ip_to_words, words_to_ip
from netml_core.readers.native import NativeReader
from netml_core.splitter import NetmlFlowSplitter, NoFlowsError

from helpers import need

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo" / "demo.pcap"
REF = SHARED / "reference" / "netml-0.7.1"
INTERVAL = 5.776507735252384


@pytest.fixture(scope="module")
def demo():
    return NativeReader().read(str(need(DEMO)))


def _ref(name):
    return json.loads((need(REF) / name).read_text())


def _flow_rows(ft):
    src, dst = words_to_ip(ft.src), words_to_ip(ft.dst)
    ts = ft.column("ts")
    rows = []
    for i in range(len(ft)):
        a, b = ft.offsets[i], ft.offsets[i + 1]
        rows.append(([src[i], dst[i], int(ft.sport[i]), int(ft.dport[i]), int(ft.proto[i])],
                     int(b - a), float(ts[a]), float(ts[b - 1])))
    return rows


def _ref_rows(ref):
    return [(r["fid"], r["n_pkts"], r["first_ts"], r["last_ts"]) for r in ref]


# -- parity with netml 0.7.1 on the demo capture --------------------------------------------------
def test_demo_interval_is_learned_like_netml(demo):
    sp = NetmlFlowSplitter().fit(demo)
    assert sp.interval_ == pytest.approx(INTERVAL, rel=1e-9)
    assert isinstance(sp.interval_, float)


def test_demo_flows_before_interval_split_match_netml(demo):
    # a huge interval cuts nothing, so the result is netml's timeout-split flows
    ft = NetmlFlowSplitter(interval=1e12).split(demo)
    assert len(ft) == 188
    assert ft.meta["packets_before_interval_split"] == 5984
    assert _flow_rows(ft) == _ref_rows(_ref("flows_before_interval_split.json"))


def test_demo_subflows_match_netml_including_dropped_tails(demo):
    sp = NetmlFlowSplitter().fit(demo)
    ft = sp.split(demo)
    assert len(ft) == 196
    assert _flow_rows(ft) == _ref_rows(_ref("flows_after_pcap2flows.json"))
    m = ft.meta
    assert (m["flows_before_interval_split"], m["flows_cut_by_interval"]) == (188, 14)
    assert m["dropped_interval_tail_packets"] == 596  # netml loses 596 of 5984 packets here
    assert m["packets_in_flows"] == 5984 - 596 == int(ft.n_pkts.sum())


@pytest.fixture(scope="module")
def scapy_lengths():
    """len(pkt) of every TCP/UDP packet as scapy re-serialises it: what netml summed as bytes."""
    from scapy.all import IP, TCP, UDP, PcapNgReader

    with PcapNgReader(str(need(DEMO))) as rd:
        return np.array([len(p) for p in rd if IP in p and (TCP in p or UDP in p)])


def test_demo_bytes_match_netml_and_differ_only_where_scapy_reencodes(demo, scapy_lengths):
    # netml counted len(pkt) after scapy re-serialised the packet; scapy's LDAP/Kerberos layers
    # re-encode some messages shorter than they were on the wire. With scapy's lengths every flow
    # has netml's byte count; with the wire lengths exactly the flows holding such packets differ.
    assert len(scapy_lengths) == len(demo)
    ft = NetmlFlowSplitter(interval=INTERVAL).split(demo)
    ref = [r["bytes"] for r in _ref("flows_after_pcap2flows.json")]
    wire = ft.column("wire_len").astype(np.int64)
    scapy = scapy_lengths[ft.order]
    sums = lambda v: np.add.reduceat(v, ft.offsets[:-1])  # noqa: E731
    assert sums(scapy).tolist() == ref
    reencoded = sums((scapy != wire).astype(np.int64)) > 0
    assert np.flatnonzero(sums(wire) != ref).tolist() == np.flatnonzero(reencoded).tolist()
    assert reencoded.sum() == 15


def test_keep_tail_keeps_every_packet_of_the_demo(demo):
    ft = NetmlFlowSplitter(keep_tail=True, interval=INTERVAL).split(demo)
    assert ft.meta["dropped_interval_tail_packets"] == 0
    assert int(ft.n_pkts.sum()) == ft.meta["packets_in_flows"] == 5984
    assert len(ft) == 196 + 14  # one more sub-flow per cut flow


def test_state_round_trips_through_json(demo):
    sp = NetmlFlowSplitter().fit(demo)
    state = json.loads(json.dumps(sp.get_state()))
    other = NetmlFlowSplitter().set_state(state)
    a, b = sp.split(demo), other.split(demo)
    assert np.array_equal(a.order, b.order) and np.array_equal(a.offsets, b.offsets)


# -- an independent oracle: netml's loops, transcribed literally ------------------------------------
def _netml_flows(times, keys, *, tcp_timeout, udp_timeout, interval, thres):
    """netml 0.7.1 `_pcap2flows` + `_flows2subflows` over (time, key) lists; returns packet ids."""
    flows = OrderedDict()
    for i, k in enumerate(keys):
        flows.setdefault(k, []).append(i)
    stage1 = []
    for fid, pk in flows.items():
        if len(pk) < max(2, thres):
            continue
        pk = sorted(pk, key=lambda i: times[i])
        subs, tmp, split = [], [pk[0]], False
        timeout = tcp_timeout if 6 in fid else udp_timeout  # netml's test, ports included
        for i in pk[1:]:
            if times[i] - times[tmp[-1]] > timeout:
                subs.append(tmp)
                tmp, split = [i], True
            else:
                tmp.append(i)
        if not split:
            subs.append(tmp)
        stage1 += [(fid, s) for s in subs if len(s) >= thres]
    if interval is None:
        interval = float(np.quantile([times[s[-1]] - times[s[0]] for _, s in stage1], 0.9))
    out = []
    for fid, pk in stage1:
        subs, start = [], times[pk[0]]
        tmp, split = [(start, pk[0])], False
        for i in pk[1:]:
            t = times[i]
            if t - tmp[-1][0] > interval:
                subs.append(tmp)
                start += int((t - start) // interval) * interval
                tmp, split = [(start, i)], True
            else:
                tmp.append((t, i))
        if not split:
            subs.append(tmp)
        out += [(fid, [i for _, i in s]) for s in subs if len(s) >= max(2, thres)]
    return out, interval


def _synthetic(rng, n_pkts, n_keys, span_s, shuffle=False):
    """Bursty packets over a few 5-tuples, microsecond timestamps near 2017 epoch."""
    keys = rng.integers(0, n_keys, n_pkts)
    # bursts: many near-equal times, some long gaps
    gaps = rng.choice([0, 1, 50, 2_000, 400_000, 3_000_000, 9_000_000], size=n_pkts,
                      p=[0.1, 0.3, 0.3, 0.15, 0.1, 0.04, 0.01])
    ts_us = 1_499_083_689_000_000 + np.cumsum(gaps)
    ts_us = ts_us[np.argsort(rng.random(n_pkts))] if shuffle else ts_us
    src = ip_to_words([f"10.0.{k % 3}.{k}" for k in keys])
    dst = ip_to_words([f"192.168.1.{k % 5}" for k in keys])
    proto = np.where(keys % 2 == 0, 6, 17)
    pt = PacketTable(
        ts_ns=ts_us * 1000, wire_len=rng.integers(60, 1500, n_pkts), ip_version=np.full(n_pkts, 4),
        proto=proto, src=src, dst=dst, sport=1000 + keys % 7, dport=np.where(keys % 4 == 1, 6, 80),
        tcp_flags=np.zeros(n_pkts), ttl=np.full(n_pkts, 64),
    )
    key_tuples = [(f"10.0.{k % 3}.{k}", f"192.168.1.{k % 5}", int(1000 + k % 7), 6 if k % 4 == 1 else 80, int(p))
                  for k, p in zip(keys, proto)]
    return pt, key_tuples


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shuffle", [False, True])
def test_matches_literal_netml_loops_on_synthetic_traffic(seed, shuffle):
    rng = np.random.default_rng(seed)
    pt, key_tuples = _synthetic(rng, 3000, 12, 100, shuffle=shuffle)
    thres = [2, 3, 5][seed % 3]
    kw = dict(tcp_timeout=5.0, udp_timeout=2.5)
    sp = NetmlFlowSplitter(flow_pkts_thres=thres, **kw).fit(pt)
    expect, interval = _netml_flows(pt.ts.tolist(), key_tuples, interval=None, thres=thres, **kw)
    assert sp.interval_ == pytest.approx(interval, rel=1e-12)
    ft = sp.split(pt)
    got = [ft.order[ft.offsets[i]:ft.offsets[i + 1]].tolist() for i in range(len(ft))]
    assert got == [ids for _, ids in expect]
    assert len(got) > 20  # the data really exercises cuts


def test_anchor_rule_cuts_the_second_packet_of_a_subflow():
    # interval 10 s; packets at 0, 25, 31: the gap 25->31 is 6 s < 10 s, yet netml cuts before 31
    # because the sub-flow opened at 25 is anchored at 20 and 31 - 20 > 10. Then 31 is anchored at 30.
    t = np.array([0, 25, 31, 33, 60], dtype=np.int64) * 1_000_000_000
    n = len(t)
    pt = PacketTable(ts_ns=t, wire_len=np.full(n, 100), ip_version=np.full(n, 4), proto=np.full(n, 17),
                     src=ip_to_words(["1.1.1.1"] * n), dst=ip_to_words(["2.2.2.2"] * n),
                     sport=np.full(n, 5), dport=np.full(n, 6), tcp_flags=np.zeros(n), ttl=np.ones(n))
    ft = NetmlFlowSplitter(interval=10.0, keep_tail=True).split(pt)
    # sub-flows [0] [25] [31, 33] [60]; only [31, 33] has >= 2 packets
    assert [list(ft.order[ft.offsets[i]:ft.offsets[i + 1]]) for i in range(len(ft))] == [[2, 3]]
    assert ft.meta["flows_cut_by_interval"] == 1
    # netml's default drops the last piece [60] (it has 1 packet anyway): same flows
    ft2 = NetmlFlowSplitter(interval=10.0).split(pt)
    assert ft2.meta["dropped_interval_tail_packets"] == 1 and len(ft2) == 1


# -- bidirectional flows ---------------------------------------------------------------------------
def _pt(rows):
    """rows of (t_s, src, sport, dst, dport, proto)"""
    n = len(rows)
    return PacketTable(
        ts_ns=np.array([int(r[0] * 1e9) for r in rows]), wire_len=np.arange(n) + 60,
        ip_version=np.full(n, 4), proto=np.array([r[5] for r in rows]),
        src=ip_to_words([r[1] for r in rows]), dst=ip_to_words([r[3] for r in rows]),
        sport=np.array([r[2] for r in rows]), dport=np.array([r[4] for r in rows]),
        tcp_flags=np.zeros(n), ttl=np.full(n, 64))


def test_bidirectional_flows_join_both_directions():
    pt = _pt([
        (0.0, "10.0.0.9", 40000, "10.0.0.1", 443, 6),
        (0.1, "10.0.0.1", 443, "10.0.0.9", 40000, 6),
        (0.2, "10.0.0.9", 40000, "10.0.0.1", 443, 6),
        (0.3, "10.0.0.1", 53, "10.0.0.9", 5353, 17),
        (0.4, "10.0.0.9", 5353, "10.0.0.1", 53, 17),
        (0.5, "10.0.0.1", 443, "10.0.0.9", 40000, 6),
    ])
    uni = NetmlFlowSplitter(interval=100.0).split(pt)
    assert len(uni) == 2  # the two TCP directions; the UDP ones have one packet each
    bi = NetmlFlowSplitter(interval=100.0, direction="bi").split(pt)
    assert len(bi) == 2
    assert bi.order.tolist() == [0, 1, 2, 5, 3, 4]
    assert bi.direction.tolist() == [0, 1, 0, 1, 0, 1]
    assert words_to_ip(bi.src) == ["10.0.0.9", "10.0.0.1"]  # who sent the first packet
    assert bi.sport.tolist() == [40000, 53] and bi.dport.tolist() == [443, 5353]


def test_ipv6_and_ipv4_flows_are_kept_apart():
    pt = _pt([(0.0, "::1", 1, "::2", 2, 17), (0.1, "::1", 1, "::2", 2, 17),
              (0.2, "0.0.0.1", 1, "0.0.0.2", 2, 17), (0.3, "0.0.0.1", 1, "0.0.0.2", 2, 17)])
    ft = NetmlFlowSplitter(interval=1.0).split(pt)
    assert words_to_ip(ft.src) == ["::1", "0.0.0.1"]


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params, word", [
    ({"direction": "both"}, "direction"), ({"q_interval": 0}, "q_interval"), ({"q_interval": 1.5}, "q_interval"),
    ({"flow_pkts_thres": 0}, "flow_pkts_thres"), ({"flow_pkts_thres": 2.5}, "flow_pkts_thres"),
    ({"interval": -1}, "interval"), ({"tcp_timeout": "x"}, "tcp_timeout"), ({"keep_tail": "yes"}, "keep_tail"),
])
def test_bad_parameters_are_one_line_errors(params, word):
    with pytest.raises(ParameterError) as exc:
        NetmlFlowSplitter.create(params)
    assert word in str(exc.value) and "\n" not in str(exc.value)


def test_split_before_fit_and_fit_without_flows(demo):
    with pytest.raises(NotFittedError):
        NetmlFlowSplitter().split(demo)
    lonely = demo.take(np.array([0]))
    with pytest.raises(NoFlowsError) as exc:
        NetmlFlowSplitter().fit(lonely)
    assert isinstance(exc.value, NetmlError) and "\n" not in str(exc.value)
    empty = NetmlFlowSplitter(interval=1.0).split(PacketTable.empty())
    assert len(empty) == 0 and empty.offsets.tolist() == [0]


def test_fitted_splitter_pickles_for_workers_and_fit_split_equals_split(demo):
    import pickle

    sp = NetmlFlowSplitter().fit(demo)  # keeps the grouping for the next split of this table
    clone = pickle.loads(pickle.dumps(sp))
    assert "_stage1" not in vars(clone) and clone.interval_ == sp.interval_
    a, b = sp.split(demo), clone.split(demo)
    assert np.array_equal(a.order, b.order) and np.array_equal(a.offsets, b.offsets)
    assert a.meta == b.meta


# -- streaming: netml's flows batch by batch ---------------------------------------------------------
def _flow_set(ft):
    return sorted((tuple(ft.packets.ts_ns[ft.order[ft.offsets[i]:ft.offsets[i + 1]]].tolist()),
                   tuple(ft.src[i].tolist()), int(ft.sport[i]), tuple(ft.dst[i].tolist()), int(ft.dport[i]),
                   int(ft.proto[i])) for i in range(len(ft)))


def _stream(sp, pt, size):
    state = sp.stream()
    got = []
    for lo in range(0, len(pt), size):
        got += _flow_set(state.push(pt.take(np.arange(lo, min(lo + size, len(pt))))))
    got += _flow_set(state.flush())
    assert state.open_packets == 0 and state.packets_in == len(pt)
    return sorted(got)


@pytest.mark.parametrize("params", [{}, {"keep_tail": True}, {"flow_pkts_thres": 3, "direction": "bi"},
                                    {"tcp_timeout": 2.0, "udp_timeout": 1.0}, {"tcp_timeout": 0.5, "udp_timeout": 0.5,
                                                                              "keep_tail": True, "flow_pkts_thres": 1}])
@pytest.mark.parametrize("path", ["netml-demo/demo.pcap", "evalset-dev/files/blend__demo+masscan-tcp_test.pcap"])
def test_streaming_gives_netmls_flows_for_any_batch_size(path, params):
    pt = NativeReader().read(str(need(SHARED / "data" / path)))
    sp = NetmlFlowSplitter(**params).fit(pt)
    whole = _flow_set(sp.split(pt))
    assert len(whole) > 10
    for size in (7, 1000, len(pt)):
        assert _stream(sp, pt, size) == whole, size


def test_streaming_one_packet_at_a_time():
    pt = NativeReader().read(str(need(SHARED / "data" / "evalset-dev/files/blend__demo+masscan-tcp_test.pcap")))
    sp = NetmlFlowSplitter().fit(pt)
    assert _stream(sp, pt, 1) == _flow_set(sp.split(pt))


def test_stream_needs_a_fitted_interval():
    with pytest.raises(NotFittedError):
        NetmlFlowSplitter().stream()
