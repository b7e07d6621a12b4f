"""Merging flow-meter slice states gives exactly the whole-capture split, wherever the cuts fall."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from netml_core.flowmeter import FlowMeterSplitter
from netml_core.flowmerge import chain_ordered, order_keys, resolve, slice_state
from netml_core.readers.native import NativeReader

from helpers import DEMO, need, random_traffic

def _traffic(seed: int, n: int):
    """Random traffic with equal times (gap 0) and gaps beyond the idle timeouts."""
    return random_traffic(seed, n, gaps=(0.0, 0.001, 0.5, 3.0, 12.0, 40.0, 70.0),
                          p=(0.1, 0.3, 0.3, 0.17, 0.08, 0.03, 0.02))


def merged_flows(sp, pt, cuts):
    """Flows (lists of capture rows) from splitting ``pt`` at ``cuts`` and merging the states."""
    bounds = [0, *sorted(cuts), len(pt)]
    states = [slice_state(sp, pt.take(slice(lo, hi))) for lo, hi in zip(bounds[:-1], bounds[1:])]
    assert chain_ordered(states)
    resolved, resolved_rows = resolve(sp, states)
    tables = [s.complete for s in states] + [resolved]
    base = np.array(bounds[:-1])
    firsts = [s.first_row + b for s, b in zip(states, base)] + [resolved_rows]
    flows = []
    for s, b in zip(states, base):
        flows += [(s.complete.order[s.complete.offsets[i]:s.complete.offsets[i + 1]] + b).tolist()
                  for i in range(len(s.complete))]
    rows_of_pending = np.concatenate([s.pending_row + b for s, b in zip(states, base)])
    flows += [rows_of_pending[resolved.order[resolved.offsets[i]:resolved.offsets[i + 1]]].tolist()
              for i in range(len(resolved))]
    order = order_keys(tables, firsts)
    return [flows[i] for i in order], states


def whole_flows(sp, pt):
    ft = sp.split(pt)
    return [ft.order[ft.offsets[i]:ft.offsets[i + 1]].tolist() for i in range(len(ft))]


SPLITTERS = [dict(idle_timeout=10.0, active_timeout=30.0), dict(idle_timeout=60.0, active_timeout=120.0),
             dict(idle_timeout=5.0, active_timeout=None), dict(idle_timeout=10.0, direction="uni"),
             dict(idle_timeout=10.0, min_packets=2), dict(idle_timeout=10.0, tcp_close=False)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400), params=st.sampled_from(SPLITTERS),
       cut_seed=st.integers(0, 10_000), n_cuts=st.integers(0, 6))
def test_merged_slices_equal_the_whole_split(seed, n, params, cut_seed, n_cuts):
    pt = _traffic(seed, n)
    sp = FlowMeterSplitter(**params)
    cuts = np.random.default_rng(cut_seed).integers(0, n + 1, n_cuts).tolist()
    got, _ = merged_flows(sp, pt, cuts)
    assert got == whole_flows(sp, pt)


def test_every_cut_point_of_a_small_capture():
    pt = _traffic(7, 120)
    sp = FlowMeterSplitter(idle_timeout=10.0, active_timeout=30.0)
    want = whole_flows(sp, pt)
    for c in range(len(pt) + 1):
        assert merged_flows(sp, pt, [c])[0] == want


def test_real_capture_slices_merge_exactly_and_every_packet_is_complete_or_pending():
    path = need(DEMO / "demo.pcap")
    pt = NativeReader().read(path)
    sp = FlowMeterSplitter(idle_timeout=5.0, active_timeout=20.0)
    got, states = merged_flows(sp, pt, [len(pt) // 3, 2 * len(pt) // 3])
    assert got == whole_flows(sp, pt)
    complete = sum(int(s.complete.offsets[-1]) for s in states)
    pending = sum(len(s.pending) for s in states)
    assert complete + pending == len(pt) and complete > 0


def test_unordered_slices_are_detected():
    pt = _traffic(3, 50)
    sp = FlowMeterSplitter()
    a, b = slice_state(sp, pt.take(slice(0, 25))), slice_state(sp, pt.take(slice(25, 50)))
    assert chain_ordered([a, b]) and not chain_ordered([b, a])
