"""The default flow splitter: flows as a flow meter sees them (nfstream, CICFlowMeter, Zeek, Argus).

A flow is the packets of one 5-tuple, both directions together by default, from its first packet
until one of:

- **idle timeout**: no packet for more than ``idle_timeout`` seconds; the next packet starts a new
  flow;
- **active timeout**: the flow has lasted ``active_timeout`` seconds; the packet at or past that
  point starts a new flow (so a day-long connection becomes a series of windows, and a detector
  sees it long before it ends);
- **TCP close and reuse** (``tcp_close``): after a FIN or RST, a new SYN (without ACK) on the same
  5-tuple starts a new connection and so a new flow; the FIN/ACK exchange and late ACKs stay in the
  flow they close.

Every TCP/UDP packet lands in exactly one flow: there is no learned sub-flow interval and nothing
is dropped for being the tail of a flow. One-packet flows (a scan probe, a SYN of a flood, a lone
DNS query) are kept unless ``min_packets`` says otherwise. Flows are returned in order of their
first packet. Timestamps are compared as integer nanoseconds, so the cuts do not depend on float
rounding.

Everything is numpy over the packet columns: one grouping sort, then segment arithmetic; only the
active timeout needs rounds (one vectorised binary search per window of the longest flow).
"""

from __future__ import annotations

import numpy as np

from .components import FlowSplitter
from .errors import ParameterError
from .flowstream import FlowStream
from .flowtable import FlowTable
from .packets import PacketTable
from . import segments as seg
from .splitter import _check_number, flow_key_columns, packet_direction

NS = 1_000_000_000
#: TCP flag bits (see ``PacketTable.tcp_flags``)
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


class FlowMeterSplitter(FlowSplitter):
    """Flow-meter flows: idle and active timeouts, TCP close, both directions, every packet kept."""

    param_docs = {
        "idle_timeout": "seconds without a packet that end a flow",
        "active_timeout": "seconds after its first packet at which a flow is cut (null: never)",
        "direction": "'bi': both directions of a 5-tuple in one flow; 'uni': one flow per direction",
        "tcp_close": "a SYN after a FIN or RST on the same 5-tuple starts a new flow",
        "min_packets": "flows with fewer packets are dropped (1 keeps every packet)",
    }

    learns_from_packets = False  # timeouts are parameters: training can stream

    def __init__(self, idle_timeout=60.0, active_timeout=120.0, direction="bi", tcp_close=True,
                 min_packets=1):
        self.idle_timeout = idle_timeout
        self.active_timeout = active_timeout
        self.direction = direction
        self.tcp_close = tcp_close
        self.min_packets = min_packets
        self._validate()

    def _validate(self) -> None:
        _check_number("idle_timeout", self.idle_timeout, low=0, low_open=True, high=10 ** 9)
        if self.active_timeout is not None:
            _check_number("active_timeout", self.active_timeout, low=0, low_open=True, high=10 ** 9)
        if self.direction not in ("uni", "bi"):
            raise ParameterError(f"parameter 'direction' must be 'uni' or 'bi', got {self.direction!r}")
        if not isinstance(self.tcp_close, bool):
            raise ParameterError(f"parameter 'tcp_close' must be true or false, got {self.tcp_close!r}")
        _check_number("min_packets", self.min_packets, low=1, high=2 ** 31, integer=True)

    def fit(self, packets: PacketTable) -> "FlowMeterSplitter":
        """Nothing is learned from the data: timeouts are parameters, the same on every capture."""
        self._validate()
        return self

    def split(self, packets: PacketTable) -> FlowTable:
        self._validate()
        cut = self._cut(packets)
        keep = np.diff(cut.offsets) >= self.min_packets
        return self._flowtable(packets, cut, keep)

    def stream(self, max_open_flows: int | None = None) -> "FlowMeterStream":
        """A state that takes a time-ordered capture batch by batch and gives each flow once it ended."""
        self._validate()
        return FlowMeterStream(self, max_open_flows)

    # -- stages ----------------------------------------------------------------------------------
    def _cut(self, packets: PacketTable, force_start: np.ndarray | None = None) -> "_Cut":
        """Every flow of ``packets`` (small ones too), in grouped order, and which ones may go on.

        ``force_start`` (bool per packet) marks packets known to start a flow whatever came before
        them (``netml_core.flowmerge``: the packets between them were split elsewhere)."""
        n = len(packets)
        ts = packets.ts_ns
        base = seg.stable_argsort(ts) if n and np.any(ts[1:] < ts[:-1]) else np.arange(n, dtype=np.int64)
        perm, group_offsets = seg.group_rows(flow_key_columns(packets, self.direction), order=base)
        t = ts[perm]
        first = np.zeros(n, dtype=bool)
        first[group_offsets[:-1][np.diff(group_offsets) > 0]] = True

        gap = np.zeros(n, dtype=np.int64)
        if n:
            np.subtract(t[1:], t[:-1], out=gap[1:])
        start = first | (gap > _ns(self.idle_timeout))
        if force_start is not None and n:
            start |= force_start[perm]
        n_idle = int(np.count_nonzero(start)) - int(np.count_nonzero(first))
        n_close = 0
        if self.tcp_close and n:
            reopen = _tcp_reopen(packets.tcp_flags[perm], packets.proto[perm], start)
            n_close = int(np.count_nonzero(reopen))
            start |= reopen
        n_active = 0
        if self.active_timeout is not None and n:
            active = _active_cuts(t, seg.offsets_from_starts(start), _ns(self.active_timeout))
            n_active = int(np.count_nonzero(active & ~start))
            start |= active
        offsets = seg.offsets_from_starts(start) if n else np.zeros(1, dtype=np.int64)
        # the last flow of each 5-tuple is the only one a later packet could still join
        last_of_key = np.zeros(len(offsets) - 1, dtype=bool)
        if n:
            last_of_key[np.searchsorted(offsets, group_offsets[1:], side="left") - 1] = True
        return _Cut(perm, t, offsets, last_of_key, n_idle, n_active, n_close)

    def _flowtable(self, packets: PacketTable, cut: "_Cut", keep: np.ndarray) -> FlowTable:
        """The flows of ``cut`` selected by ``keep``, in order of their first packet."""
        n = len(packets)
        counts = np.diff(cut.offsets)
        # flows in order of their first packet (ties in time: in file order), so that a stream of
        # batches can put the flows it gives in the same order (``FlowStream.emitted_seq``)
        keep_idx = np.flatnonzero(keep)
        if len(keep_idx):
            heads = cut.offsets[:-1][keep_idx]
            keep_idx = keep_idx[np.lexsort((cut.perm[heads], cut.t[heads]))]
        pos, offsets = seg.gather(cut.offsets, keep_idx)
        order = cut.perm[pos].astype(np.int64)
        small = counts < self.min_packets
        meta = {
            "packets": n,
            "flows": len(offsets) - 1,
            "packets_in_flows": int(offsets[-1]),
            "flows_cut_by_idle_timeout": cut.n_idle,
            "flows_cut_by_active_timeout": cut.n_active,
            "flows_reopened_after_tcp_close": cut.n_close,
            "dropped_small_flow_packets": int(counts[small].sum()),
            "direction": self.direction,
        }
        meta["dropped_packets"] = meta["dropped_small_flow_packets"]
        head = order[offsets[:-1]]
        direction = packet_direction(packets, order, offsets) if self.direction == "bi" else None
        return FlowTable(packets=packets, order=order, offsets=offsets,
                         src=packets.src[head], dst=packets.dst[head], sport=packets.sport[head],
                         dport=packets.dport[head], proto=packets.proto[head],
                         ip_version=packets.ip_version[head], direction=direction, meta=meta)


class _Cut:
    """All flows of a table before the ``min_packets`` filter: packet order, times, CSR offsets."""

    __slots__ = ("perm", "t", "offsets", "last_of_key", "n_idle", "n_active", "n_close")

    def __init__(self, perm, t, offsets, last_of_key, n_idle, n_active, n_close):
        self.perm, self.t, self.offsets, self.last_of_key = perm, t, offsets, last_of_key
        self.n_idle, self.n_active, self.n_close = n_idle, n_active, n_close


class FlowMeterStream(FlowStream):
    """Flow-meter state over a stream of packet batches: open flows are carried, ended ones given.

    ``push(batch)`` returns the flows that can no longer grow: a later flow of the same 5-tuple has
    begun, or the newest packet seen (the watermark) lies more than ``idle_timeout`` after the
    flow's last packet or ``active_timeout`` or more after its first. Their packets are dropped from
    the state; the packets of the other (open) flows are carried into the next batch. ``flush()``
    ends every open flow (end of input). On a time-ordered capture the flows, and so every per-flow
    feature row, are exactly those of ``split`` on the whole capture, whatever the batch size;
    memory holds one batch plus the packets of open flows.

    ``max_open_flows`` caps the open flows after each batch: the ones idle longest are ended early
    and counted in ``evicted`` (a later packet of such a flow starts a new one, so results then
    differ from the whole-capture split; the count says by how many flows).
    """

    def __init__(self, splitter: FlowMeterSplitter, max_open_flows: int | None = None):
        if max_open_flows is not None and (isinstance(max_open_flows, bool) or not isinstance(max_open_flows, int)
                                           or max_open_flows < 1):
            raise ParameterError(f"--max-open-flows must be a positive integer, got {max_open_flows!r}")
        super().__init__(splitter)
        self.max_open_flows = max_open_flows
        self.evicted = 0

    def expire(self, clock_ns: int) -> FlowTable | None:
        """End the open flows whose timeouts have passed at ``clock_ns`` (a capture-clock estimate
        on a quiet live link). The watermark of packets is kept: a packet that later turns out to
        be older than ``clock_ns`` is split as usual (a flow ended here then restarts)."""
        if self.carry is None or self.watermark is None or clock_ns <= self.watermark:
            return None
        packets_mark = self.watermark
        self.watermark = int(clock_ns)
        self._table_seq = self.carry_seq
        try:
            return self._count(self._emit(self.carry, final=False))
        finally:
            self.watermark = packets_mark

    def _emit(self, table: PacketTable, final: bool) -> FlowTable:
        sp = self.splitter
        cut = sp._cut(table)
        ended = np.ones(len(cut.offsets) - 1, dtype=bool)
        if not final and len(ended):
            first_t, last_t = cut.t[cut.offsets[:-1]], cut.t[cut.offsets[1:] - 1]
            quiet = (self.watermark - last_t) > _ns(sp.idle_timeout)
            if sp.active_timeout is not None:
                quiet |= (self.watermark - first_t) >= _ns(sp.active_timeout)
            ended = ~cut.last_of_key | quiet
            n_open = int(np.count_nonzero(~ended))
            if self.max_open_flows is not None and n_open > self.max_open_flows:
                # end the flows idle longest (their last packet oldest) until the cap holds
                still = np.flatnonzero(~ended)
                oldest = still[np.argsort(last_t[still], kind="stable")[:n_open - self.max_open_flows]]
                ended[oldest] = True
                self.evicted += len(oldest)
        sizes = np.diff(cut.offsets)
        self._carry_open(table, cut.perm, sizes, ~ended)
        # the ended flows on a table of their own packets only: the batch can then be freed
        done_rows = np.sort(cut.perm[np.repeat(ended, sizes)]) if len(ended) else np.zeros(0, np.int64)
        self.emitted_seq = self._table_seq[done_rows]
        return sp.split(table.take(done_rows))


def _ns(seconds) -> int:
    return int(round(float(seconds) * NS))


def _tcp_reopen(flags: np.ndarray, proto: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Packets (in grouped order) that open a new TCP connection on a 5-tuple that was closed.

    A pure SYN (SYN without ACK) starts a new flow when a FIN or RST was seen since the flow
    started or since the flow's previous pure SYN (a retransmitted SYN is the same attempt).
    """
    tcp = proto == 6
    syn = tcp & ((flags & (SYN | ACK)) == SYN)
    closing = tcp & ((flags & (FIN | RST)) != 0)
    n = len(flags)
    idx = np.arange(n, dtype=np.int64)
    # anchor[i]: last position < i that is a flow start or a pure SYN
    marks = np.where(syn | start, idx, -1)
    anchor = np.empty(n, dtype=np.int64)
    anchor[0] = -1
    np.maximum.accumulate(marks[:-1], out=anchor[1:])
    closed_before = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(closing, out=closed_before[1:])  # closed_before[i]: closing packets in [0, i)
    seen = closed_before[idx] - closed_before[np.maximum(anchor, 0)]
    return syn & ~start & (anchor >= 0) & (seen > 0)


def _active_cuts(t: np.ndarray, offsets: np.ndarray, active_ns: int) -> np.ndarray:
    """Packets that start a new window: the first at or past ``window start + active_ns``.

    Greedy, as a flow meter does it on packet arrival: each window starts at a packet and the next
    begins at the first packet ``active_ns`` or more after it. Done for all segments at once, one
    round per window. The segments long enough to be cut are laid end to end, keyed by segment,
    then time since its first packet, so each round is one ``searchsorted`` (a flow of thousands of
    windows, e.g. a day-long tunnel, costs thousands of cheap rounds); where that key would not fit
    in int64, each round is a vectorised binary search instead.
    """
    cuts = np.zeros(len(t), dtype=bool)
    lo_all, hi_all = offsets[:-1], offsets[1:]
    long = (hi_all > lo_all) & (t[np.maximum(hi_all - 1, 0)] - t[np.minimum(lo_all, len(t) - 1)] >= active_ns)
    if not long.any():
        return cuts
    lo, lengths = lo_all[long], (hi_all - lo_all)[long]
    hi = np.cumsum(lengths)
    cur = hi - lengths
    pos = np.repeat(lo - cur, lengths) + np.arange(int(hi[-1]), dtype=np.int64)  # compact -> packet position
    tc = t[pos]
    seg = np.repeat(np.arange(len(lo), dtype=np.int64), lengths)
    rel = tc - np.repeat(tc[cur], lengths)
    span = int(rel.max()) + int(active_ns) + 1
    key = seg * span + rel if span * (len(lo) + 1) < 2**62 else None
    while len(cur):
        if key is not None:  # the first position with t >= target in the segment, or its end
            nxt = np.maximum(np.searchsorted(key, key[cur] + active_ns, side="left"), cur + 1)
        else:
            nxt = _first_at_or_after(tc, cur + 1, hi, tc[cur] + active_ns)
        found = nxt < hi
        cuts[pos[nxt[found]]] = True
        cur, hi = nxt[found], hi[found]
        more = tc[hi - 1] - tc[cur] >= active_ns
        cur, hi = cur[more], hi[more]
    return cuts


def _first_at_or_after(t: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each i, the first position in ``[lo[i], hi[i])`` with ``t >= target[i]`` (``hi[i]`` if none)."""
    lo, h = lo.copy(), hi.copy()
    while True:
        open_ = lo < h
        if not open_.any():
            return lo
        mid = (lo + h) >> 1
        ge = t[np.minimum(mid, len(t) - 1)] >= target
        h = np.where(open_ & ge, mid, h)
        lo = np.where(open_ & ~ge, mid + 1, lo)
