"""Causal window statistics over flow starts, per source host, destination host and host pair.

A port scan, a SYN flood or a telnet sweep is thousands of flows that each look like a refused
connection or a DNS query; what gives them away is their context: how many flows the host opened in
the last seconds, to how many new addresses and ports, how many got no answer, how regular its
calls to one destination are (beaconing). Kitsune (Mirsky et al., NDSS 2018) keeps such statistics
per packet with damped windows; here they are computed per flow, for every flow at once:

- flows are ordered by their first packet; for a flow starting at ``t`` a window of ``W`` seconds
  holds the flows of the same key (source host, destination host, or the pair) that started in
  ``(t - W, t]``, the flow itself included and nothing later (causal: the same numbers come out
  whether the flows after it exist yet or not);
- a flow's own statistics (packets, bytes, answered) count as known when it starts, as a flow meter
  reports them when the flow ends;
- "new destination" counts the flows of the window whose (source, destination) pair had no flow in
  the ``W`` seconds before them: a host contacting 1,000 addresses in a minute has 1,000, a host
  polling one server has 1. Likewise new destination ports (source, port) and, for the destination
  host, new sources.

Everything is grouped once per key with ``group_rows`` and counted with prefix sums and one
``searchsorted`` per window over a (group, time) key: no Python loop over flows.
"""

from __future__ import annotations

import numpy as np

from netml_core import segments as seg
from netml_core.flowtable import FlowTable

NS = 1_000_000_000

#: per window: values computed for the flow's source host, destination host and host pair
SRC_VALUES = ("src_flows", "src_new_dsts", "src_new_dports", "src_unanswered", "src_pkts", "src_bytes")
DST_VALUES = ("dst_flows", "dst_new_srcs", "dst_unanswered")
PAIR_VALUES = ("pair_flows",)
#: once per flow: spread of the gaps between the last flow starts from the source to the destination
BEACON_VALUES = ("pair_gaps", "pair_gap_mean", "pair_gap_cv")
#: the coefficient of variation is clipped here: beyond it a series of starts is simply irregular
MAX_CV = 10.0


def context_names(windows: list[float]) -> list[str]:
    out = []
    for w in windows:
        out += [f"{v}_{_fmt(w)}s" for v in (*SRC_VALUES, *DST_VALUES, *PAIR_VALUES)]
    return out + list(BEACON_VALUES)


def _fmt(w: float) -> str:
    return f"{w:g}"


def flow_context(flows: FlowTable, windows: list[float], max_gaps: int, log: bool = True) -> np.ndarray:
    """``(n_flows, len(context_names(windows)))`` float64, finite, rows in flow order."""
    n = len(flows)
    width = len(context_names(windows))
    if n == 0:
        return np.zeros((0, width), dtype=np.float64)
    off = flows.offsets
    head = flows.order[off[:-1]]
    start = flows.packets.ts_ns[head].astype(np.int64)
    pkts = np.diff(off).astype(np.float64)
    nbytes = seg.segment_sum(flows.packets.wire_len[flows.order].astype(np.int64), off).astype(np.float64)
    unanswered = (~_answered(flows)).astype(np.float64)

    by_time = seg.stable_argsort(start - start.min())
    src, dst = flows.src, flows.dst
    dport = flows.dport.astype(np.uint64)
    src_g = _Groups([src], by_time, start)
    dst_g = _Groups([dst], by_time, start)
    pair_g = _Groups([src, dst], by_time, start)
    port_g = _Groups([src, dport], by_time, start)

    cols = []
    for w in windows:
        w_ns = int(round(float(w) * NS))
        new_dst = pair_g.is_new(w_ns)
        new_port = port_g.is_new(w_ns)
        new_src = new_dst  # a source new to the destination is the same (source, destination) pair
        flows_src = src_g.window_sum(None, w_ns)
        flows_dst = dst_g.window_sum(None, w_ns)
        cols += [
            flows_src,
            src_g.window_sum(new_dst, w_ns),
            src_g.window_sum(new_port, w_ns),
            src_g.window_sum(unanswered, w_ns) / flows_src,
            src_g.window_sum(pkts, w_ns),
            src_g.window_sum(nbytes, w_ns),
            flows_dst,
            dst_g.window_sum(new_src, w_ns),
            dst_g.window_sum(unanswered, w_ns) / flows_dst,
            pair_g.window_sum(None, w_ns),
        ]
    n_gaps, gap_mean, gap_cv = pair_g.recent_gaps(max_gaps)
    cols += [n_gaps, gap_mean, gap_cv]
    shares = _share_columns(windows)
    T = np.empty((len(cols), n))  # one contiguous row per value, filled (and logged) in place
    for i, col in enumerate(cols):
        if log and not shares[i]:
            np.log1p(col, out=T[i])
        else:
            T[i] = col
    return np.ascontiguousarray(T.T)


def _share_columns(windows) -> np.ndarray:
    names = context_names(windows)
    return np.array([n.startswith(("src_unanswered", "dst_unanswered", "pair_gap_cv")) for n in names])


def _answered(flows: FlowTable) -> np.ndarray:
    """A reply was seen: a packet the other way (two-way flows), or a flow on the reverse 5-tuple."""
    if flows.direction is not None:
        return seg.segment_sum(flows.direction.astype(np.int64), flows.offsets) > 0
    proto = flows.proto.astype(np.uint64)
    fwd = [flows.src, flows.dst, (flows.sport.astype(np.uint64) << np.uint64(16)) | flows.dport, proto]
    rev = [flows.dst, flows.src, (flows.dport.astype(np.uint64) << np.uint64(16)) | flows.sport, proto]
    n = len(flows)
    # group forward and reverse keys together: a reverse key sharing a group with a forward one answered
    both = [np.concatenate([a, b]) for a, b in zip(fwd, rev)]
    perm, offsets = seg.group_rows(both)
    gid = np.empty(2 * n, dtype=np.int64)
    gid[perm] = seg.segment_ids(offsets)
    has_forward = np.zeros(len(offsets) - 1, dtype=bool)
    has_forward[gid[:n]] = True
    return has_forward[gid[n:]]


class _Groups:
    """Flows grouped by a key, time-sorted within each group, with window sums by prefix sums."""

    def __init__(self, key_columns, by_time: np.ndarray, start: np.ndarray):
        self.perm, self.offsets = seg.group_rows(key_columns, order=by_time)
        self.gid = seg.segment_ids(self.offsets)
        self.t = start[self.perm]
        self.n = len(self.perm)
        self._lo_cache: dict[int, np.ndarray] = {}

    def window_lo(self, w_ns: int) -> np.ndarray:
        """For each position: the first position of its group whose start is within ``w_ns`` of it."""
        if w_ns not in self._lo_cache:
            self._lo_cache[w_ns] = _window_lo(self.t, self.gid, self.offsets, w_ns)
        return self._lo_cache[w_ns]

    def window_sum(self, values: np.ndarray | None, w_ns: int) -> np.ndarray:
        """Per flow (in flow order): the sum of ``values`` (1 when None) over its window."""
        v = np.ones(self.n) if values is None else values[self.perm]
        prefix = np.zeros(self.n + 1)
        np.cumsum(v, out=prefix[1:])
        lo = self.window_lo(w_ns)
        pos = np.arange(self.n)
        out = np.empty(self.n)
        out[self.perm] = prefix[pos + 1] - prefix[lo]
        return out

    def is_new(self, w_ns: int) -> np.ndarray:
        """Per flow: 1.0 when its group had no flow in the ``w_ns`` before it, else 0.0."""
        first = np.zeros(self.n, dtype=bool)
        first[self.offsets[:-1][np.diff(self.offsets) > 0]] = True
        gap = np.empty(self.n, dtype=np.int64)
        gap[0] = 0
        np.subtract(self.t[1:], self.t[:-1], out=gap[1:])
        new = first | (gap >= w_ns)
        out = np.empty(self.n)
        out[self.perm] = new
        return out

    def recent_gaps(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per flow: how many of the last ``k`` gaps between starts of its group exist (up to it),
        their mean (s) and coefficient of variation (std / mean, 0 for a single gap)."""
        first = np.zeros(self.n, dtype=bool)
        first[self.offsets[:-1][np.diff(self.offsets) > 0]] = True
        gap = np.zeros(self.n)
        gap[1:] = (self.t[1:] - self.t[:-1]) / NS
        gap[first] = 0.0
        has = (~first).astype(np.float64)
        c1, c2, cn = (np.zeros(self.n + 1) for _ in range(3))
        np.cumsum(gap, out=c1[1:])
        np.cumsum(gap * gap, out=c2[1:])
        np.cumsum(has, out=cn[1:])
        pos = np.arange(self.n)
        group_start = self.offsets[:-1][self.gid]
        lo = np.maximum(pos - k + 1, group_start)
        count = cn[pos + 1] - cn[lo]
        total = c1[pos + 1] - c1[lo]
        sq = c2[pos + 1] - c2[lo]
        safe = np.maximum(count, 1.0)
        mean = total / safe
        var = np.maximum(sq / safe - mean * mean, 0.0)
        cv = np.where(mean > 0, np.sqrt(var) / np.where(mean > 0, mean, 1.0), 0.0)
        out = [np.empty(self.n) for _ in range(3)]
        for o, v in zip(out, (count, mean, np.minimum(cv, MAX_CV))):
            o[self.perm] = v
        return out[0], out[1], out[2]


def _window_lo(t: np.ndarray, gid: np.ndarray, offsets: np.ndarray, w_ns: int) -> np.ndarray:
    """First position ``j`` of each position's group with ``t[j] > t[i] - w_ns`` (t sorted in groups).

    One searchsorted over a key that places the groups one after another with a gap wider than the
    window, so a search never crosses into the previous group. Times are taken in microseconds
    (or coarser when needed) so the key fits in int64.
    """
    n_groups = len(offsets) - 1
    t0 = t - t.min()
    for unit in (1_000, 1_000_000, NS):
        span = int(t0.max()) // unit + 1
        w = -(-w_ns // unit)  # ceil: a window never shrinks under rounding
        stride = span + w + 1
        if n_groups * stride < 2 ** 62:
            break
    key = gid.astype(np.int64) * stride + t0 // unit
    return np.searchsorted(key, key - w, side="right")
