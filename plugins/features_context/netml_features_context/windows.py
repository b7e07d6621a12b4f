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


class Summary:
    """What host context needs of each flow, one array per value: start (ns), hosts, ports, protocol,
    packets, bytes and whether it went unanswered. The context of a flow depends on these alone, so a
    stream can keep the summaries of past flows and drop their packets."""

    FIELDS = ("start", "src", "dst", "sport", "dport", "proto", "pkts", "nbytes", "unanswered")

    def __init__(self, **arrays):
        for name in self.FIELDS:
            setattr(self, name, arrays[name])

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def of(cls, flows: FlowTable) -> "Summary":
        off = flows.offsets
        n = len(flows)
        head = flows.order[off[:-1]] if n else np.zeros(0, dtype=np.int64)
        return cls(
            start=flows.packets.ts_ns[head].astype(np.int64),
            src=flows.src, dst=flows.dst, sport=flows.sport.astype(np.uint64), dport=flows.dport.astype(np.uint64),
            proto=flows.proto.astype(np.uint64),
            pkts=np.diff(off).astype(np.float64),
            nbytes=seg.segment_sum(flows.packets.wire_len[flows.order].astype(np.int64), off).astype(np.float64),
            unanswered=(~_answered(flows)).astype(np.float64) if n else np.zeros(0),
        )

    def take(self, index) -> "Summary":
        return Summary(**{name: getattr(self, name)[index] for name in self.FIELDS})

    @staticmethod
    def concat(parts: list["Summary"]) -> "Summary":
        return Summary(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in Summary.FIELDS})


def flow_context(flows: FlowTable, windows: list[float], max_gaps: int, log: bool = True,
                 max_gap: float = 3600.0) -> np.ndarray:
    """``(n_flows, len(context_names(windows)))`` float64, finite, rows in flow order."""
    return context_rows(Summary.of(flows), windows, max_gaps, log, max_gap=max_gap)[0]


def canonical_order(flows: Summary) -> np.ndarray:
    """Flows by start time, ties by 5-tuple: an order that does not depend on how flows arrive."""
    keys = [flows.proto, flows.dport, flows.sport]
    for col in (flows.dst, flows.src):
        keys += [col[:, j] for j in range(col.shape[1] - 1, -1, -1)] if col.ndim == 2 else [col]
    start = flows.start
    return np.lexsort(keys + [start - (start.min() if len(start) else 0)])


def context_rows(flows: Summary, windows: list[float], max_gaps: int, log: bool = True,
                 known_new: dict | None = None, max_gap: float = 3600.0,
                 want: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Context rows of ``flows`` (in their order; of the flows ``want`` only, when given) and each
    flow's "new pair / new port" flags per window (of every flow).

    Flows are ordered by start, ties broken by the 5-tuple, so the rows do not depend on the order the
    flows come in. ``known_new`` (``{"rows": mask, w: (new_dst, new_port)}``) gives the flags of
    flows whose earlier flows a stream has already dropped: their flags were fixed when they were
    first computed and are used instead of recomputing them. A stream wants the rows of its new
    flows only; the past ones are there as their context (each value is computed as for all rows).
    """
    n = len(flows)
    width = len(context_names(windows))
    if n == 0:
        return np.zeros((0, width), dtype=np.float64), {}
    start = flows.start
    by_time = canonical_order(flows)
    src, dst = flows.src, flows.dst
    src_g = _Groups([src], by_time, start, want)
    dst_g = _Groups([dst], by_time, start, want)
    pair_g = _Groups([src, dst], by_time, start, want)
    port_g = _Groups([src, flows.dport], by_time, start, want)
    n_out = n if want is None else len(want)

    cols, flags = [], {}
    for w in windows:
        w_ns = int(round(float(w) * NS))
        new_dst = pair_g.is_new(w_ns)
        new_port = port_g.is_new(w_ns)
        if known_new is not None:
            rows = known_new["rows"]
            new_dst[rows], new_port[rows] = known_new[w]
        flags[w] = (new_dst, new_port)
        new_src = new_dst  # a source new to the destination is the same (source, destination) pair
        flows_src = src_g.window_sum(None, w_ns)
        flows_dst = dst_g.window_sum(None, w_ns)
        cols += [
            flows_src,
            src_g.window_sum(new_dst, w_ns),
            src_g.window_sum(new_port, w_ns),
            src_g.window_sum(flows.unanswered, w_ns) / flows_src,
            src_g.window_sum(flows.pkts, w_ns),
            src_g.window_sum(flows.nbytes, w_ns),
            flows_dst,
            dst_g.window_sum(new_src, w_ns),
            dst_g.window_sum(flows.unanswered, w_ns) / flows_dst,
            pair_g.window_sum(None, w_ns),
        ]
    n_gaps, gap_mean, gap_cv = pair_g.recent_gaps(max_gaps, int(round(max_gap * NS)))
    cols += [n_gaps, gap_mean, gap_cv]
    shares = _share_columns(windows)
    T = np.empty((len(cols), n_out))  # one contiguous row per value, filled (and logged) in place
    for i, col in enumerate(cols):
        if log and not shares[i]:
            np.log1p(col, out=T[i])
        else:
            T[i] = col
    return np.ascontiguousarray(T.T), flags


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
    """Flows grouped by a key, time-sorted within each group, with window sums by prefix sums.

    ``want``: the flows whose values are asked for (all when None); every flow still counts in the
    sums of the others."""

    def __init__(self, key_columns, by_time: np.ndarray, start: np.ndarray, want: np.ndarray | None = None):
        self.perm, self.offsets = seg.group_rows(key_columns, order=by_time)
        self.gid = seg.segment_ids(self.offsets)
        self.t = start[self.perm]
        self.n = len(self.perm)
        if want is None:  # positions (in group order) of the flows asked for, and where each goes
            self.pos, self.dest = np.arange(self.n), self.perm
        else:
            where = np.empty(self.n, dtype=np.int64)
            where[self.perm] = np.arange(self.n)
            self.pos, self.dest = where[want], np.arange(len(want))
        self._lo_cache: dict[int, np.ndarray] = {}

    def _out(self, values: np.ndarray) -> np.ndarray:
        """``values`` at ``self.pos``, placed in the asked-for order."""
        out = np.empty(len(self.pos))
        out[self.dest] = values
        return out

    def window_lo(self, w_ns: int) -> np.ndarray:
        """For each asked-for position: the first position of its group whose start is within ``w_ns``."""
        if w_ns not in self._lo_cache:
            self._lo_cache[w_ns] = _window_lo(self.t, self.gid, self.offsets, w_ns, self.pos)
        return self._lo_cache[w_ns]

    def window_sum(self, values: np.ndarray | None, w_ns: int) -> np.ndarray:
        """Per asked-for flow: the sum of ``values`` (1 when None) over its window."""
        v = np.ones(self.n) if values is None else values[self.perm]
        prefix = np.zeros(self.n + 1)
        np.cumsum(v, out=prefix[1:])
        return self._out(prefix[self.pos + 1] - prefix[self.window_lo(w_ns)])

    def is_new(self, w_ns: int) -> np.ndarray:
        """Per flow (every flow, in flow order): 1.0 when its group had no flow in the ``w_ns``
        before it, else 0.0."""
        first = np.zeros(self.n, dtype=bool)
        first[self.offsets[:-1][np.diff(self.offsets) > 0]] = True
        gap = np.empty(self.n, dtype=np.int64)
        gap[0] = 0
        np.subtract(self.t[1:], self.t[:-1], out=gap[1:])
        new = first | (gap >= w_ns)
        out = np.empty(self.n)
        out[self.perm] = new
        return out

    def recent_gaps(self, k: int, max_gap_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per asked-for flow: how many of the last ``k`` gaps between starts of its group exist (up
        to it), their mean (s) and coefficient of variation (std / mean, 0 for a single gap). A gap
        longer than ``max_gap_ns`` starts the series anew, as the group's first flow does.

        Summed gap by gap from the newest back (k vectorised steps), not by prefix sums over all
        flows: a flow's figures then depend on its own gaps only, bit for bit, whichever other flows
        are in the table (a stream holds fewer than the whole capture)."""
        first = np.zeros(self.n, dtype=bool)
        first[self.offsets[:-1][np.diff(self.offsets) > 0]] = True
        gap_ns = np.zeros(self.n, dtype=np.int64)
        np.subtract(self.t[1:], self.t[:-1], out=gap_ns[1:])
        first |= gap_ns > max_gap_ns
        gap = gap_ns / NS
        gap[first] = 0.0
        every = np.arange(self.n)
        series_start = np.maximum.accumulate(np.where(first, every, 0))
        pos = self.pos
        count = np.minimum(pos - series_start[pos], k).astype(np.int64)  # gaps available
        m = len(pos)
        total = np.zeros(m)
        steps = int(count.max()) if m else 0
        for j in range(steps):
            has = count > j
            total[has] += gap[pos[has] - j]
        safe = np.maximum(count, 1)
        mean = total / safe
        sq = np.zeros(m)
        for j in range(steps):
            has = count > j
            d = gap[pos[has] - j] - mean[has]
            sq[has] += d * d
        std = np.sqrt(sq / safe)
        cv = np.where(mean > 0, std / np.where(mean > 0, mean, 1.0), 0.0)
        return self._out(count.astype(np.float64)), self._out(mean), self._out(np.minimum(cv, MAX_CV))


def _window_lo(t: np.ndarray, gid: np.ndarray, offsets: np.ndarray, w_ns: int, pos: np.ndarray) -> np.ndarray:
    """For each position ``i`` of ``pos``: the first position ``j`` of its group with
    ``t[j] > t[i] - w_ns`` (t sorted in groups).

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
    return np.searchsorted(key, key[pos] - w, side="right")
