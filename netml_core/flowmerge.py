"""Mergeable flow-meter state: split time slices of one capture apart, stitch them exactly.

A worker splits its slice (``slice_state``) without knowing what came before. Per flow key, a
packet more than ``idle_timeout`` after the key's previous packet starts a flow whatever the
history (a *certain start*); so does a key's first packet of the slice when it lies more than
``idle_timeout`` after the slice's first packet (the capture is time-ordered: every earlier packet
is older than that). From a key's first certain start on, the flow meter's decisions (idle, active
windows, TCP reopen) depend on the slice alone, so those flows are final, except the key's last
one, which a later slice may extend. A slice's state is therefore:

- ``complete``: flows certainly whole (final, transformable on the worker);
- ``pending``: the *head* (per key, packets before its first certain start: their flow depends on
  earlier slices) and the *tail* (the key's last flow, which later slices may extend), with
  ``pending_force`` marking the tail starts that are certain.

``resolve`` merges the pending packets of all slices of a capture, in order, and splits them with
the splitter's own rule, the certain starts forced: between two pending packets of a key either
nothing was left out (a slice's tail then the next slice's head) or a complete flow was, and the
pending packet after it is a forced start. The fold of all merges is one cut over the pending
packets, so it is done once. Flow order is that of ``split`` on the whole capture: by first packet
time, ties by its row (``order_keys``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flowtable import FlowTable
from .packets import PacketTable


@dataclass
class SliceState:
    """What a slice hands on (see the module docstring); rows are positions in the slice."""

    complete: FlowTable
    first_row: np.ndarray  # per complete flow: row of its first packet
    pending: PacketTable
    pending_row: np.ndarray
    pending_force: np.ndarray
    n_packets: int
    first_ns: int
    last_ns: int
    ordered: bool = True


def mergeable(splitter) -> bool:
    """Only the flow meter has a mergeable state (``netml``'s interval is learned from all packets)."""
    from .flowmeter import FlowMeterSplitter

    return isinstance(splitter, FlowMeterSplitter)


def slice_state(sp, packets: PacketTable) -> SliceState:
    """Split one time slice into complete flows and pending packets."""
    n = len(packets)
    ts = packets.ts_ns
    ordered = not (n and np.any(ts[1:] < ts[:-1]))
    cut = sp._cut(packets)
    sizes = np.diff(cut.offsets)
    n_flows = len(sizes)
    starts = cut.offsets[:-1]
    first_of_key = np.zeros(n_flows, dtype=bool)
    if n_flows:
        first_of_key[0] = True
        first_of_key[1:] = cut.last_of_key[:-1]
    idle = _ns(sp.idle_timeout)
    gap_ok = np.zeros(n_flows, dtype=bool)
    if n_flows:
        prev_t = cut.t[np.maximum(starts - 1, 0)]
        gap_ok = np.where(first_of_key, cut.t[starts] - int(ts.min()) > idle, cut.t[starts] - prev_t > idle)
    # a flow is final from the key's first certain start on (a running max inside each key)
    idx = np.arange(n_flows, dtype=np.int64)
    key_start = np.maximum.accumulate(np.where(first_of_key, idx, 0)) if n_flows else idx
    last_cert = np.maximum.accumulate(np.where(gap_ok, idx, -1)) if n_flows else idx
    determined = last_cert >= key_start
    complete = determined & ~cut.last_of_key
    keep = complete & (sizes >= sp.min_packets)
    ft = sp._flowtable(packets, cut, keep)
    pend_flow = ~complete
    rows = cut.perm[np.repeat(pend_flow, sizes)] if n_flows else np.zeros(0, np.int64)
    force_rows = cut.perm[starts[pend_flow & determined]]
    order = np.argsort(rows, kind="stable")
    rows = rows[order].astype(np.int64)
    force = np.isin(rows, force_rows)
    return SliceState(
        complete=ft, first_row=ft.order[ft.offsets[:-1]].astype(np.int64),
        pending=packets.take(rows), pending_row=rows, pending_force=force,
        n_packets=n,
        first_ns=int(ts.min()) if n else 0, last_ns=int(ts.max()) if n else 0, ordered=ordered)


def chain_ordered(states: list) -> bool:
    """True when the slices form one time-ordered capture (what ``slice_state`` assumed)."""
    last = None
    for s in states:
        if not s.ordered:
            return False
        if s.n_packets:
            if last is not None and s.first_ns < last:
                return False
            last = s.last_ns
    return True


def resolve(sp, states: list) -> tuple[FlowTable, np.ndarray]:
    """The flows made of the pending packets of all slices (in order) and their capture rows."""
    base = _bases(states)
    pending = PacketTable.concat([s.pending for s in states])
    rows = np.concatenate([s.pending_row + b for s, b in zip(states, base)]) if states else np.zeros(0, np.int64)
    force = np.concatenate([s.pending_force for s in states]) if states else np.zeros(0, bool)
    cut = sp._cut(pending, force_start=force)
    ft = sp._flowtable(pending, cut, np.diff(cut.offsets) >= sp.min_packets)
    return ft, rows[ft.order[ft.offsets[:-1]]] if len(ft) else np.zeros(0, np.int64)


def order_keys(flow_tables: list, first_rows: list) -> np.ndarray:
    """Permutation putting the flows of ``flow_tables`` (first packets at capture rows ``first_rows``)
    in the order ``split`` gives on the whole capture: first packet time, then its row."""
    first_ns = [ft.packets.ts_ns[ft.order[ft.offsets[:-1]]] for ft in flow_tables]
    row = np.concatenate(first_rows) if first_rows else np.zeros(0, np.int64)
    t = np.concatenate(first_ns) if first_ns else np.zeros(0, np.int64)
    return np.lexsort((row, t))


def _bases(states: list) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([s.n_packets for s in states])[:-1]]).astype(np.int64)


def _ns(seconds) -> int:
    from .flowmeter import _ns as ns

    return ns(seconds)
