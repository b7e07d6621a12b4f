"""FLOWSTATS: whole-flow statistics of both directions, one fixed-width row per flow.

30 values plus the signed sizes of the first ``first_n`` packets (38 with the default 8). "Forward"
packets are those sent by the flow's ``src`` (the endpoint that sent its first packet), "backward"
the others; with directional flows (``FlowTable.direction`` is None) every packet is forward.
Sizes are bytes on the wire (``wire_len``); times come from the capture's integer nanoseconds and
are given in seconds.

====================  =======  ===================================================================
name                  unit     value
====================  =======  ===================================================================
duration              s        last minus first packet time (0 for a 1-packet flow)
fwd_pkts, bwd_pkts    packets  packets sent forward / backward
fwd_bytes, bwd_bytes  bytes    bytes on the wire sent forward / backward
size_mean, size_std   bytes    packet size over the whole flow: mean, standard deviation (ddof 0)
size_min              bytes    smallest packet
size_q25              bytes    25th percentile (numpy's linear quantile)
size_median           bytes    median
size_q75              bytes    75th percentile
size_max              bytes    largest packet
fwd_size_mean         bytes    mean size of the forward packets (0 when there are none)
bwd_size_mean         bytes    mean size of the backward packets (0 when there are none)
iat_mean, iat_std     s        inter-arrival times over the whole flow (both directions
iat_min, iat_median,           interleaved): mean, standard deviation (ddof 0), min, median, max;
iat_max                        all 0 when the flow has fewer than 2 packets
tcp_fin ... tcp_cwr   packets  packets with FIN, SYN, RST, PSH, ACK, URG, ECE, CWR set (0 for UDP)
is_tcp                -        1.0 for TCP, 0.0 for UDP
bwd_pkt_share         -        bwd_pkts / packets, in [0, 1] (0: nothing came back)
bwd_byte_share        -        bwd_bytes / bytes, in [0, 1] (0 when the flow has no bytes)
first_size_0 ...      bytes    sizes of the first ``first_n`` packets, + forward, - backward,
                               0 past the flow's end
====================  =======  ===================================================================

With ``log=True`` (the default) every non-negative heavy-tailed value (durations, counts, bytes,
sizes, IATs, flag counts) is replaced by ``log1p(x)`` and every signed first size by
``sign(x) * log1p(|x|)``; ``is_tcp`` and the two shares are left as they are. Detectors see these
values after standard scaling, where a few elephant flows would otherwise set the scale and squash
every ordinary flow into a sliver near the mean.

Every value is defined for every flow (1-packet flows, zero durations, flows with nothing coming
back) and finite; an empty flow (no splitter makes one) gets a row of zeros. Everything is segment
arithmetic over the packet columns in flow order (per-flow sums as differences of one running sum,
flags counted in packed lanes, one packed sort each for sizes and IATs): no Python loop over
packets or flows.
"""

from __future__ import annotations

import functools
from numbers import Integral

import numpy as np

from netml_core import segments as seg
from netml_core.components import Feature
from netml_core.errors import ParameterError
from netml_core.flowtable import FlowTable
from netml_core.series import NoFlowsToFitError, check_flag
from netml_core.state_checks import number

#: (name, log-scaled when log=True, unit and meaning) of the fixed columns, in output order
COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("duration", True, "s, last minus first packet time"),
    ("fwd_pkts", True, "packets sent by the flow's src (all of them for directional flows)"),
    ("bwd_pkts", True, "packets sent by the other endpoint"),
    ("fwd_bytes", True, "bytes on the wire sent forward"),
    ("bwd_bytes", True, "bytes on the wire sent backward"),
    ("size_mean", True, "bytes, mean packet size over the flow"),
    ("size_std", True, "bytes, standard deviation (ddof 0) of packet sizes"),
    ("size_min", True, "bytes, smallest packet"),
    ("size_q25", True, "bytes, 25th percentile of packet sizes (numpy linear)"),
    ("size_median", True, "bytes, median packet size"),
    ("size_q75", True, "bytes, 75th percentile of packet sizes (numpy linear)"),
    ("size_max", True, "bytes, largest packet"),
    ("fwd_size_mean", True, "bytes, mean size of forward packets (0 when none)"),
    ("bwd_size_mean", True, "bytes, mean size of backward packets (0 when none)"),
    ("iat_mean", True, "s, mean inter-arrival time (0 below 2 packets)"),
    ("iat_std", True, "s, standard deviation (ddof 0) of inter-arrival times"),
    ("iat_min", True, "s, smallest inter-arrival time"),
    ("iat_median", True, "s, median inter-arrival time"),
    ("iat_max", True, "s, largest inter-arrival time"),
    ("tcp_fin", True, "packets with FIN (0 for UDP)"),
    ("tcp_syn", True, "packets with SYN"),
    ("tcp_rst", True, "packets with RST"),
    ("tcp_psh", True, "packets with PSH"),
    ("tcp_ack", True, "packets with ACK"),
    ("tcp_urg", True, "packets with URG"),
    ("tcp_ece", True, "packets with ECE"),
    ("tcp_cwr", True, "packets with CWR"),
    ("is_tcp", False, "1.0 TCP, 0.0 UDP"),
    ("bwd_pkt_share", False, "bwd_pkts / packets, 0..1"),
    ("bwd_byte_share", False, "bwd_bytes / bytes, 0..1 (0 when no bytes)"),
)
NAMES = tuple(c[0] for c in COLUMNS)
_ROW = {name: i for i, name in enumerate(NAMES)}
#: TCP flag bit (``PacketTable.tcp_flags``: F S R P A U E C = bits 0..7) of each flag column
_FLAG_BITS = {"tcp_fin": 0, "tcp_syn": 1, "tcp_rst": 2, "tcp_psh": 3, "tcp_ack": 4, "tcp_urg": 5,
              "tcp_ece": 6, "tcp_cwr": 7}
#: first_n above this is refused (a whole-flow summary, not a per-packet series)
MAX_FIRST_N = 4096


class FlowStatsFeature(Feature):
    """Whole-flow statistics of both directions: counts, bytes, sizes, IATs, TCP flags, first sizes."""

    per_flow = True  # every row comes from that flow's packets only: flows can be scored as they end
    fit_learns_from_flows = False  # the width comes from first_n: the flows only have to exist

    param_docs = {
        "first_n": "number of leading packets whose sizes (bytes, + forward / - backward, 0-padded) "
                   f"are kept; integer 0..{MAX_FIRST_N}",
        "log": "log1p the non-negative heavy-tailed values (counts, bytes, seconds, sizes, flag "
               "counts) and sign*log1p the signed first sizes",
    }

    def __init__(self, first_n=8, log=True):
        self.first_n = first_n
        self.log = log
        self._validate()

    def _validate(self) -> None:
        n = self.first_n
        if isinstance(n, bool) or not isinstance(n, Integral) or not 0 <= n <= MAX_FIRST_N:
            raise ParameterError(f"parameter 'first_n' must be an integer in 0..{MAX_FIRST_N}, got {n!r}")
        check_flag("log", self.log)

    def _width(self) -> int:
        return len(COLUMNS) + int(self.first_n)

    # -- Feature API ------------------------------------------------------------------------------
    def fit(self, flows: FlowTable) -> "FlowStatsFeature":
        """Learns nothing from the flows; records the width in ``n_features_``."""
        self._validate()
        _check_flows(flows)
        if len(flows) == 0:
            raise NoFlowsToFitError("cannot fit feature 'flowstats': no flows to learn from")
        self.n_features_ = self._width()
        return self

    def transform(self, flows: FlowTable) -> np.ndarray:
        """``(n_flows, n_features_)`` float64, C-contiguous, finite."""
        self._check_fitted("n_features_")
        self._validate()
        if int(self.n_features_) != self._width():
            raise ParameterError(f"flowstats was fitted with {self.n_features_} values but first_n="
                                 f"{self.first_n} gives {self._width()}; fit it again")
        _check_flows(flows)
        return flow_stats(flows, int(self.first_n), bool(self.log))

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """``n_features_`` must be the width ``first_n`` gives (model files are checked with this
        before anything is built; ``transform`` refuses a mismatch too)."""
        feature = cls.create(params, name="feature 'flowstats'")
        return number(state, "n_features_", "feature 'flowstats'", low=feature._width(), high=feature._width(),
                      integer=True)

    def feature_names(self) -> list[str]:
        """Column names; units: ``duration`` and ``iat_*`` seconds, ``*_bytes``, ``size_*`` and
        ``first_size_*`` bytes (signed by direction), ``*_pkts`` and ``tcp_*`` packets, ``is_tcp`` and
        ``*_share`` unitless; all but those last three through ``log1p`` when ``log`` (see
        ``COLUMNS`` and the module docstring)."""
        self._check_fitted("n_features_")
        return list(NAMES) + [f"first_size_{i}" for i in range(int(self.first_n))]


def _check_flows(flows) -> None:
    """The CSR invariants the arithmetic relies on (a splitter bug, not a user error, if broken)."""
    if not isinstance(flows, FlowTable):
        raise TypeError(f"flowstats needs a FlowTable, got {type(flows).__name__}")
    off = flows.offsets
    if len(off) == 0 or off[0] != 0 or off[-1] != len(flows.order):
        raise ValueError(f"FlowTable.offsets must run from 0 to len(order) = {len(flows.order)}")
    if flows.direction is not None and len(flows.direction) != len(flows.order):
        raise ValueError(f"FlowTable.direction has {len(flows.direction)} entries for "
                         f"{len(flows.order)} packets")


def flow_stats(flows: FlowTable, first_n: int = 8, log: bool = True) -> np.ndarray:
    """The FLOWSTATS matrix of ``flows`` (see the module docstring for the columns)."""
    n = len(flows)
    width = len(COLUMNS) + first_n
    counts = flows.n_pkts
    if n and counts.min() <= 0:
        # no splitter makes empty flows; should one appear, it gets a row of zeros (and its protocol)
        keep = counts > 0
        X = np.zeros((n, width), dtype=np.float64)
        X[keep] = flow_stats(flows.subset(keep), first_n, log)
        X[:, _ROW["is_tcp"]] = flows.proto == 6
        return X
    # (width, n): one contiguous row per column while computing, one transposing copy at the end
    return np.ascontiguousarray(_rows(flows, first_n, log).T)


# -- the arithmetic (every flow has at least one packet here) -----------------------------------
class _Segments:
    """What every column needs of the CSR layout: first/last packet, counts, packet -> flow."""

    def __init__(self, offsets: np.ndarray):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n = len(self.offsets) - 1
        self.starts = self.offsets[:-1]
        self.lasts = self.offsets[1:] - 1
        self.counts = np.diff(self.offsets)
        self.ids = seg.segment_ids(self.offsets)

    def sums(self, values: np.ndarray, dtype=np.int64) -> np.ndarray:
        """Exact per-flow sums of integers: differences of one running sum at the flows' ends.

        Several times faster than ``reduceat`` when flows are short; with ``dtype=uint64`` the
        arithmetic is modular, which is what packed counters (see ``_flag_rows``) need.
        """
        ends = np.cumsum(values, dtype=dtype)[self.lasts]
        return np.diff(ends, prepend=ends.dtype.type(0))


def _rows(flows: FlowTable, first_n: int, log: bool) -> np.ndarray:
    """``(width, n_flows)`` float64: row ``j`` holds column ``j`` for every flow."""
    S = _Segments(flows.offsets)
    out = np.zeros((len(COLUMNS) + first_n, S.n), dtype=np.float64)
    if S.n == 0:
        return out
    R = dict(zip(NAMES, out))  # views: ``R[name][...] = v`` fills the output row
    ts = flows.column("ts_ns")  # int64 ns: exact differences, no float epoch-seconds rounding
    size = flows.column("wire_len")
    back = None if flows.direction is None else np.asarray(flows.direction) != 0

    _time_rows(R, ts, S)
    total_bytes = S.sums(size)
    _size_rows(R, size, S, total_bytes)
    _direction_rows(R, size, back, S, total_bytes)
    _flag_rows(out, flows, S)
    if log:
        for j, (name, logged, _) in enumerate(COLUMNS):
            if logged:
                _log1p(out[j], exact=name in _SECONDS)
    if first_n:
        _first_sizes(out[len(COLUMNS):], S, size, back, log)
    return out


#: rows in seconds: values far below 1, where log1p(x) and log(1 + x) differ
_SECONDS = frozenset(["duration", "iat_mean", "iat_std", "iat_min", "iat_median", "iat_max"])


def _log1p(row: np.ndarray, exact: bool) -> None:
    """``log1p`` in place; for rows of counts, bytes and sizes (0, or rarely far below 1)
    ``log(1 + x)`` is as accurate (to ~1e-16 absolute) and about twice as fast."""
    if exact:
        np.log1p(row, out=row)
    else:
        np.add(row, 1.0, out=row)
        np.log(row, out=row)


def _time_rows(R: dict, ts: np.ndarray, S: _Segments) -> None:
    """Duration and inter-arrival statistics (seconds), from integer nanoseconds."""
    dur_ns = np.maximum(ts[S.lasts] - ts[S.starts], 0)
    R["duration"][:] = dur_ns / 1e9
    n_iat = S.counts - 1
    if not n_iat.any():
        return
    same_flow = S.ids[1:] == S.ids[:-1]  # packet i + 1 follows packet i in its flow
    iat = np.diff(ts)[same_flow]
    np.maximum(iat, 0, out=iat)  # flows are time-sorted; a bad order must still not go negative
    iat_ids = S.ids[1:][same_flow]
    iat_off = seg.offsets_from_lengths(n_iat)  # one-packet flows: empty segments, rows stay 0
    mean = dur_ns / np.maximum(n_iat, 1)  # the IATs of a flow add up to its duration
    R["iat_mean"][:] = mean / 1e9
    R["iat_std"][:] = _std(iat, iat_ids, mean, n_iat) / 1e9
    srt = _sort_within_nonneg(iat, iat_ids, S.n)
    multi = np.flatnonzero(n_iat)
    first = iat_off[multi]
    R["iat_min"][multi] = srt[first] / 1e9
    R["iat_max"][multi] = srt[iat_off[multi + 1] - 1] / 1e9
    R["iat_median"][multi] = _median(srt, first, n_iat[multi]) / 1e9


def _size_rows(R: dict, size: np.ndarray, S: _Segments, total_bytes: np.ndarray) -> None:
    """Packet size statistics over the whole flow (bytes)."""
    mean = total_bytes / S.counts
    R["size_mean"][:] = mean
    R["size_std"][:] = _std(size, S.ids, mean, S.counts)
    single = S.counts == 1
    if single.any():
        # a one-packet flow's every order statistic is its size: sort and interpolate the others only
        for name in ("size_min", "size_q25", "size_median", "size_q75", "size_max"):
            R[name][:] = size[S.starts]
        rows = np.flatnonzero(~single)
        keep = ~single[S.ids]
        srt = _sort_within_nonneg(size[keep], S.ids[keep], S.n)
        sub_off = seg.offsets_from_lengths(S.counts[rows])
    else:
        rows, srt, sub_off = slice(None), _sort_within_nonneg(size, S.ids, S.n), S.offsets
    R["size_min"][rows] = srt[sub_off[:-1]]
    R["size_max"][rows] = srt[sub_off[1:] - 1]
    R["size_median"][rows] = _median(srt, sub_off[:-1], np.diff(sub_off))
    q = seg.segment_quantiles(srt, sub_off, (0.25, 0.75))
    R["size_q25"][rows], R["size_q75"][rows] = q.T


def _direction_rows(R: dict, size: np.ndarray, back: np.ndarray | None, S: _Segments,
                    total_bytes: np.ndarray) -> None:
    """Packets and bytes each way, mean size each way, backward shares."""
    if back is None:
        bwd_pkts = bwd_bytes = np.zeros(S.n, dtype=np.int64)
    else:
        bwd_pkts = S.sums(back)
        bwd_bytes = S.sums(size * back)
    fwd_pkts = S.counts - bwd_pkts
    fwd_bytes = total_bytes - bwd_bytes
    R["fwd_pkts"][:], R["bwd_pkts"][:] = fwd_pkts, bwd_pkts
    R["fwd_bytes"][:], R["bwd_bytes"][:] = fwd_bytes, bwd_bytes
    _ratio(fwd_bytes, fwd_pkts, out=R["fwd_size_mean"])
    _ratio(bwd_bytes, bwd_pkts, out=R["bwd_size_mean"])
    _ratio(bwd_pkts, S.counts, out=R["bwd_pkt_share"])
    _ratio(bwd_bytes, total_bytes, out=R["bwd_byte_share"])


def _flag_rows(out: np.ndarray, flows: FlowTable, S: _Segments) -> None:
    """Protocol indicator and TCP flag counts (counted for TCP flows only).

    The 8 flag bits of a packet are spread by a lookup table into counter lanes of a uint64 (4
    lanes of 16 bits, or 2 of 32 bits when a flow has 65,536 packets or more), so one running sum
    counts several flags at once.
    """
    is_tcp = flows.proto == 6
    out[_ROW["is_tcp"]] = is_tcp
    if not is_tcp.any():
        return
    flags = flows.column("tcp_flags")
    lane = 16 if S.counts.max() < 1 << 16 else 32
    per_word = 64 // lane
    names = list(_FLAG_BITS)  # in bit order
    for first_bit in range(0, 8, per_word):
        packed = S.sums(_lanes(lane, first_bit)[flags], dtype=np.uint64)
        for j in range(per_word):
            counts = (packed >> np.uint64(j * lane)) & np.uint64((1 << lane) - 1)
            out[_ROW[names[first_bit + j]]] = counts
    if not is_tcp.all():
        # a UDP row has 0 whatever its flag column holds
        out[_ROW["tcp_fin"]:_ROW["tcp_cwr"] + 1, np.flatnonzero(~is_tcp)] = 0.0


@functools.lru_cache(maxsize=None)
def _lanes(lane: int, first_bit: int) -> np.ndarray:
    """uint64 per flag byte: bit ``first_bit + j`` of the byte as 0/1 in lane ``j`` (``lane`` bits)."""
    byte = np.arange(256, dtype=np.uint64)
    table = np.zeros(256, dtype=np.uint64)
    for j in range(64 // lane):
        table |= ((byte >> np.uint64(first_bit + j)) & np.uint64(1)) << np.uint64(j * lane)
    return table


def _std(values: np.ndarray, ids: np.ndarray, mean: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Population standard deviation per flow, two-pass (as ``np.std``); 0 for no values."""
    dev = values - mean[ids]
    np.multiply(dev, dev, out=dev)
    return np.sqrt(np.bincount(ids, weights=dev, minlength=len(mean)) / np.maximum(counts, 1))


def _ratio(num: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:
    """``out = num / den``, 0 where ``den`` is 0 (every caller's ``num`` is 0 there too)."""
    np.divide(num, np.maximum(den, 1), out=out)


def _median(srt: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``np.median`` of sorted segments of ``counts >= 1`` integers: the mean of the middle two.

    Exact for integers below 2**53, so the same as numpy's linear quantile at 0.5, without its
    general interpolation.
    """
    a = srt[starts + (counts - 1) // 2].astype(np.float64)
    b = srt[starts + counts // 2].astype(np.float64)
    return a + (b - a) * 0.5


def _sort_within_nonneg(values: np.ndarray, ids: np.ndarray, n_seg: int) -> np.ndarray:
    """Non-negative integers sorted inside each segment (int64); ``ids`` (ascending) name the segments.

    Segment id and value are packed into one integer and sorted once: a uint32 when both fit in 32
    bits (sizes of up to 65,536 flows: about three times faster to sort), else an int64 when they
    fit in 63 (any inter-arrival time below ~2.4 hours with a million flows), else an exact lexsort.
    """
    v = values.astype(np.int64, copy=False)
    if len(v) == 0:
        return v.copy()
    id_bits = max(1, int(n_seg - 1).bit_length())
    value_bits = max(1, int(v.max()).bit_length())
    if id_bits + value_bits > 63:
        return v[np.lexsort((v, ids))]
    kind = np.uint32 if id_bits + value_bits <= 32 else np.int64
    packed = (ids.astype(kind) << kind(value_bits)) | v.astype(kind)
    packed.sort()
    return (packed & kind((1 << value_bits) - 1)).astype(np.int64, copy=False)


def _first_sizes(block: np.ndarray, S: _Segments, size: np.ndarray, back: np.ndarray | None,
                 log: bool) -> None:
    """Fill ``block`` (first_n, n_flows): the k-th packet's size, + forward / - backward, else 0.

    Column k visits only the flows that reach it (a shrinking set), so the work is that of the
    non-zero part of the output.
    """
    flow = np.arange(S.n)
    for k in range(len(block)):
        if k:
            flow = flow[S.counts[flow] > k]
            if not len(flow):
                break
        pos = S.starts[flow] + k
        v = size[pos].astype(np.float64)
        if log:
            np.add(v, 1.0, out=v)
            np.log(v, out=v)
        if back is not None:
            np.negative(v, out=v, where=back[pos])
        block[k, flow] = v
