"""Flow-meter splitter (the default): timeouts, TCP close, directions, every packet kept, and a literal
packet-by-packet oracle written the way a flow meter runs."""

from __future__ import annotations


import numpy as np
import pytest

from netml_core.errors import ParameterError
from netml_core.flowmeter import FlowMeterSplitter
from netml_core.packets import PacketTable
from netml_core.readers.native import NativeReader

from helpers import SHARED, need, packet_table, random_traffic

F, S, R, P, A = 0x01, 0x02, 0x04, 0x08, 0x10


def _pt(rows):
    return packet_table(rows, wire_len=np.arange(len(rows)) + 60)


def _flows(ft):
    return [ft.order[ft.offsets[i]:ft.offsets[i + 1]].tolist() for i in range(len(ft))]


C, SV = "10.0.0.9", "10.0.0.1"


def test_one_packet_flows_are_kept_and_every_packet_lands_once():
    pt = _pt([(0.0, C, 1000, SV, 80, 6, S), (0.1, C, 1001, SV, 81, 6, S), (0.2, C, 1002, SV, 82, 6, S),
              (0.3, C, 5353, SV, 53, 17), (0.4, SV, 53, C, 5353, 17)])
    ft = FlowMeterSplitter().split(pt)
    assert _flows(ft) == [[0], [1], [2], [3, 4]]
    assert ft.meta["packets_in_flows"] == 5 and ft.meta["dropped_packets"] == 0
    assert ft.direction.tolist() == [0, 0, 0, 0, 1]
    assert FlowMeterSplitter(min_packets=2).split(pt).meta["dropped_small_flow_packets"] == 3


def test_idle_timeout_ends_a_flow():
    rows = [(t, C, 5000, SV, 53, 17) for t in (0.0, 1.0, 31.5, 92.0, 93.0)]
    assert _flows(FlowMeterSplitter(idle_timeout=60).split(_pt(rows))) == [[0, 1, 2], [3, 4]]
    assert _flows(FlowMeterSplitter(idle_timeout=30).split(_pt(rows))) == [[0, 1], [2], [3, 4]]


def test_active_timeout_cuts_long_flows_greedily_from_each_window_start():
    # one packet per 10 s for 100 s, active 25 s: windows start at 0, 30, 60, 90
    rows = [(float(t), C, 5000, SV, 53, 17) for t in range(0, 101, 10)]
    ft = FlowMeterSplitter(idle_timeout=60, active_timeout=25).split(_pt(rows))
    assert _flows(ft) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]
    assert ft.meta["flows_cut_by_active_timeout"] == 3
    # exactly at the timeout is a cut (>=), like a flow meter's expiry check
    ft = FlowMeterSplitter(active_timeout=20).split(_pt(rows))
    assert _flows(ft) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10]]
    assert len(FlowMeterSplitter(active_timeout=None).split(_pt(rows))) == 1


def test_tcp_syn_after_fin_or_rst_opens_a_new_flow_but_retransmitted_syn_does_not():
    rows = [
        (0.0, C, 4000, SV, 80, 6, S), (0.5, C, 4000, SV, 80, 6, S),  # SYN retransmitted
        (0.6, SV, 80, C, 4000, 6, S | A), (0.7, C, 4000, SV, 80, 6, A),
        (1.0, C, 4000, SV, 80, 6, F | A), (1.1, SV, 80, C, 4000, 6, F | A), (1.2, C, 4000, SV, 80, 6, A),
        (2.0, C, 4000, SV, 80, 6, S),  # port reused: a new connection
        (2.1, SV, 80, C, 4000, 6, R | A),  # refused
        (3.0, C, 4000, SV, 80, 6, S),  # and tried again
    ]
    ft = FlowMeterSplitter().split(_pt(rows))
    assert _flows(ft) == [[0, 1, 2, 3, 4, 5, 6], [7, 8], [9]]
    assert ft.meta["flows_reopened_after_tcp_close"] == 2
    assert _flows(FlowMeterSplitter(tcp_close=False).split(_pt(rows))) == [list(range(10))]


def test_directions_and_flow_order():
    rows = [(0.0, SV, 53, C, 5353, 17), (0.1, C, 7000, SV, 80, 6, S), (0.2, C, 5353, SV, 53, 17)]
    bi = FlowMeterSplitter().split(_pt(rows))
    assert _flows(bi) == [[0, 2], [1]]  # ordered by first packet
    assert bi.direction.tolist() == [0, 1, 0]
    assert int(bi.sport[0]) == 53  # the first sender is the flow's src
    uni = FlowMeterSplitter(direction="uni").split(_pt(rows))
    assert _flows(uni) == [[0], [1], [2]] and uni.direction is None


def test_unsorted_timestamps_are_sorted_within_flows():
    rows = [(2.0, C, 1, SV, 2, 17), (0.0, C, 1, SV, 2, 17), (1.0, C, 1, SV, 2, 17)]
    assert _flows(FlowMeterSplitter().split(_pt(rows))) == [[1, 2, 0]]


def test_empty_table():
    ft = FlowMeterSplitter().split(_pt([]))
    assert len(ft) == 0 and ft.offsets.tolist() == [0]


@pytest.mark.parametrize("params, message", [
    ({"idle_timeout": 0}, "idle_timeout"), ({"active_timeout": -1}, "active_timeout"),
    ({"direction": "both"}, "direction"), ({"tcp_close": "yes"}, "tcp_close"),
    ({"min_packets": 0}, "min_packets"), ({"idle_timeout": float("nan")}, "idle_timeout"),
    ({"idle_timeout": 10 ** 400}, "idle_timeout"),
])
def test_bad_parameters_are_one_line_errors(params, message):
    with pytest.raises(ParameterError, match=message):
        FlowMeterSplitter(**params)


# -- a literal flow meter, one packet at a time, as the oracle ---------------------------------------
def _oracle(pt: PacketTable, idle, active, bi=True, tcp_close=True):
    open_flows = {}  # key -> [packet ids, start_ns, last_ns, closed, anchor_closed]
    done = []
    order = np.argsort(pt.ts_ns, kind="stable")
    for i in order.tolist():
        s, d = tuple(pt.src[i].tolist()), tuple(pt.dst[i].tolist())
        a, b = (s, int(pt.sport[i])), (d, int(pt.dport[i]))
        key = (min(a, b), max(a, b), int(pt.proto[i])) if bi else (a, b, int(pt.proto[i]))
        t, fl, tcp = int(pt.ts_ns[i]), int(pt.tcp_flags[i]), int(pt.proto[i]) == 6
        pure_syn = tcp and (fl & (S | A)) == S
        f = open_flows.get(key)
        new = f is None or t - f["last"] > idle * 1e9
        if not new and tcp_close and pure_syn and f["closing_since_syn"]:
            new = True
        if not new and active is not None and t - f["start"] >= active * 1e9:
            new = True
        if new:
            if f is not None:
                done.append(f)
            f = open_flows[key] = {"ids": [], "start": t, "last": t, "closing_since_syn": False}
        elif pure_syn:
            f["closing_since_syn"] = False
        f["ids"].append(i)
        f["last"] = t
        if tcp and fl & (F | R):
            f["closing_since_syn"] = True
    done += open_flows.values()
    return sorted((f["ids"] for f in done), key=lambda ids: (int(pt.ts_ns[ids[0]]), ids[0]))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bi", [True, False])
def test_matches_a_literal_flow_meter_on_random_traffic(seed, bi):
    n = 3000
    pt = random_traffic(seed, n)
    for idle, active in ((10.0, 30.0), (60.0, 120.0), (5.0, None)):
        ft = FlowMeterSplitter(idle_timeout=idle, active_timeout=active, direction="bi" if bi else "uni").split(pt)
        assert _flows(ft) == _oracle(pt, idle, active, bi=bi)
        assert sorted(ft.order.tolist()) == list(range(n))


def test_tunnel_capture_is_cut_by_the_active_timeout_and_keeps_every_packet():
    path = need(SHARED / "data" / "evalset-dev" / "files" / "DNS-Tunnel-Datasets__dnscat2-txt_00001_20230903183304.pcap")
    pt = NativeReader().read(str(path))
    ft = FlowMeterSplitter().split(pt)
    # one client port for the whole tunnel: 20 minutes of it become 120-second windows, both ways in one flow
    assert len(pt) == 7950 and len(ft) == 10
    assert ft.meta["packets_in_flows"] == 7950 and ft.meta["flows_cut_by_active_timeout"] == 9
    assert len(FlowMeterSplitter(direction="uni").split(pt)) == 20


# -- streaming: open flows carried across batches ------------------------------------------------------
def _batches(pt: PacketTable, size: int):
    for lo in range(0, len(pt), size):
        yield pt.take(np.arange(lo, min(lo + size, len(pt))))


def _flow_set(ft):
    """Each flow as (first packet time, sorted packet times and lengths, key): comparable across tables."""
    out = []
    for i in range(len(ft)):
        rows = ft.order[ft.offsets[i]:ft.offsets[i + 1]]
        out.append((int(ft.packets.ts_ns[rows[0]]), tuple(ft.packets.ts_ns[rows].tolist()),
                    tuple(ft.packets.wire_len[rows].tolist()), tuple(ft.src[i].tolist()), int(ft.sport[i]),
                    tuple(ft.dst[i].tolist()), int(ft.dport[i]), int(ft.proto[i]),
                    None if ft.direction is None else tuple(ft.direction[ft.offsets[i]:ft.offsets[i + 1]].tolist())))
    return sorted(out)


def _streamed(splitter, pt, size):
    state = splitter.stream()
    got = []
    for batch in _batches(pt, size):
        got += _flow_set(state.push(batch))
        assert state.open_packets <= len(pt)
    got += _flow_set(state.flush())
    assert state.open_packets == 0 and state.packets_in == len(pt)
    return sorted(got)


@pytest.mark.parametrize("path, sizes", [
    ("evalset-dev/files/blend__demo+masscan-tcp_test.pcap", (1, 7, 1000)),
    ("evalset-dev/files/DNS-Tunnel-Datasets__dnscat2-txt_00001_20230903183304.pcap", (7, 1000)),
    ("netml-demo/demo.pcap", (7, 1000)),
])
@pytest.mark.parametrize("params", [{}, {"direction": "uni", "idle_timeout": 5, "active_timeout": 30},
                                    {"min_packets": 2, "active_timeout": None}])
def test_streaming_gives_the_whole_capture_flows_for_any_batch_size(path, sizes, params):
    pt = NativeReader().read(str(need(SHARED / "data" / path)))
    splitter = FlowMeterSplitter(**params)
    whole = _flow_set(splitter.split(pt))
    assert len(whole) >= 1
    for size in (*sizes, len(pt)):
        assert _streamed(splitter, pt, size) == whole, size


def test_streaming_gives_a_flow_as_soon_as_it_can_no_longer_grow():
    state = FlowMeterSplitter(idle_timeout=10, active_timeout=30).stream()
    assert len(state.push(_pt([(0.0, C, 5000, SV, 53, 17), (1.0, SV, 53, C, 5000, 17)]))) == 0
    assert state.open_packets == 2
    # 10 s of silence is not yet more than the idle timeout; a packet of another flow moves time on
    assert len(state.push(_pt([(11.0, C, 5001, SV, 53, 17)]))) == 0
    ended = state.push(_pt([(11.5, C, 5002, SV, 53, 17)]))
    assert len(ended) == 1 and ended.n_pkts.tolist() == [2] and state.open_packets == 2
    # a long flow ends at its active timeout, before its next packet
    state = FlowMeterSplitter(idle_timeout=60, active_timeout=30).stream()
    state.push(_pt([(0.0, C, 7000, SV, 22, 6, A), (20.0, C, 7000, SV, 22, 6, A)]))
    assert len(state.push(_pt([(30.0, C, 9, SV, 9, 17)]))) == 1
    assert len(state.flush()) == 1 and state.flows_out == 2


def test_max_open_flows_ends_the_longest_idle_flows_early_and_counts_them():
    state = FlowMeterSplitter().stream(max_open_flows=2)
    ended = state.push(_pt([(0.0, C, 1, SV, 53, 17), (1.0, C, 2, SV, 53, 17), (2.0, C, 3, SV, 53, 17),
                            (3.0, C, 2, SV, 53, 17)]))
    assert state.evicted == 1 and ended.sport.tolist() == [1]  # idle since 0 s: the oldest
    ended = state.push(_pt([(4.0, C, 1, SV, 53, 17)]))  # its 5-tuple again: a new flow, and a new eviction
    assert state.evicted == 2 and ended.sport.tolist() == [3]
    rest = state.flush()
    assert sorted(rest.sport.tolist()) == [1, 2] and state.flows_out == 4
    with pytest.raises(ParameterError, match="--max-open-flows must be a positive integer"):
        FlowMeterSplitter().stream(max_open_flows=0)


def _greedy_windows(t, offsets, active_ns):
    """One segment at a time, packet by packet: the window starts a flow meter would cut at."""
    cuts = np.zeros(len(t), bool)
    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        start = a
        for i in range(a + 1, b):
            if t[i] - t[start] >= active_ns:
                cuts[i], start = True, i
    return cuts


@pytest.mark.parametrize("scale", [10, 10**12, 2**61])  # the last: keys overflow int64, binary search instead
def test_active_cuts_are_the_greedy_windows_of_each_segment(scale):
    from netml_core.flowmeter import _active_cuts

    rng = np.random.default_rng(scale % 1000)
    for _ in range(300):
        sizes = rng.integers(0, 30, rng.integers(1, 8))
        t = np.concatenate([np.sort(rng.integers(0, scale, s)) for s in sizes]).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if len(t):
            active = int(rng.choice([1, 5, scale // 7 + 1, scale // 2 + 1]))
            assert np.array_equal(_active_cuts(t, offsets, active), _greedy_windows(t, offsets, active))
    # a day-long flow, one packet per 0.1 s, active timeout 120 s: a window every 1200 packets
    t = np.arange(864_000, dtype=np.int64) * 100_000_000
    assert np.flatnonzero(_active_cuts(t, np.array([0, len(t)]), 120 * 10**9)).tolist() == list(range(1200, 864_000, 1200))
