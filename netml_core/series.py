"""What every netml flow representation shares: a fitted width, the FFT variant, the header block.

netml 0.7.1 turns each flow into a per-packet series (IAT, SIZE, ...), then either pads/cuts it to
a width ``dim`` or takes the real part of its FFT at ``n = dim``, and with ``header=True`` prepends
8 TCP flag counts (F, S, R, P, A, U, E, C) and one TTL per packet, fixed to ``8 + dim`` values
(FFT'd too when ``fft``). ``dim`` comes from the ``q_dim`` quantile of packets per flow. netml
recomputes it on every capture; here it is learned once in ``fit`` and kept in ``dim_``.

One-packet flows: netml 0.x dropped every flow of fewer than 2 packets before computing anything, so
its widths (and SAMP's window length) were learned on flows of 2 or more packets only. They still
are (``learning_flows``): a one-packet flow has no inter-arrival time and no duration, and a scan
of thousands of them would otherwise pull the width down to 1 packet for every flow. On flows of
2 or more packets the result is netml's, bit for bit. When *every* training flow has one packet
the width is learned from all of them (base dimension 1). Whatever the base, each series keeps
at least one column (IAT's ``dim - 1`` is clamped to 1). One-packet flows themselves get the
series netml's formulas give for ``n = 1`` (empty IATs, one size), zero-padded to the width.

Feature plugins subclass ``SeriesFeature`` and implement ``_width(n)`` (series width for a base
dimension of ``n`` packets), ``_series(flows, ctx)`` (the padded matrix) and ``_names()``.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from . import segments as seg
from .components import Feature
from .errors import NetmlError, ParameterError
from .flowtable import FlowTable

#: TCP flag names in the order of the header block (bits 0..7 of ``PacketTable.tcp_flags``)
TCP_FLAG_NAMES = ("F", "S", "R", "P", "A", "U", "E", "C")


class NoFlowsToFitError(NetmlError):
    """A feature was fitted on zero flows."""


def check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ParameterError(f"parameter {name!r} must be true or false, got {value!r}")


def check_fraction(name: str, value) -> None:
    """A quantile in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (0 < value <= 1):
        raise ParameterError(f"parameter {name!r} must be a number in (0, 1], got {value!r}")


#: widest series a feature may be asked for (packets): a flows x width matrix is built per batch
MAX_DIM = 8192


def check_positive_int(name: str, value, high: int = MAX_DIM) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or not 1 <= value <= high):
        raise ParameterError(f"parameter {name!r} must be an integer in [1, {high}] or unset, got "
                             f"{str(value)[:40]}")


class FlowContext:
    """Per-transform cache of packet columns in flow order, so each is gathered once."""

    def __init__(self, flows: FlowTable):
        self.flows = flows
        self.offsets = flows.offsets
        self._cache: dict[str, np.ndarray] = {}

    def column(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self.flows.column(name)
        return self._cache[name]

    @property
    def ts(self) -> np.ndarray:
        """Packet times, float64 epoch seconds (what netml used)."""
        return self.column("ts")

    def durations(self) -> np.ndarray:
        """Last minus first packet time per flow (seconds), as netml's max - min."""
        off = self.offsets
        if len(off) < 2:
            return np.zeros(0)
        ts = self.ts
        return ts[off[1:] - 1] - ts[off[:-1]]


#: flows with fewer packets carry no timing (no IAT, zero duration); widths and rates are learned
#: without them, as netml 0.x (which dropped them) learned them
MIN_LEARNING_PKTS = 2


def learning_flows(n_pkts: np.ndarray) -> np.ndarray:
    """Mask of the flows that widths and rates are learned from.

    The flows of at least ``MIN_LEARNING_PKTS`` (2) packets, the only ones netml 0.x ever saw; all
    flows when there is none (training data made only of one-packet flows).
    """
    n_pkts = np.asarray(n_pkts)
    multi = n_pkts >= MIN_LEARNING_PKTS
    return multi if multi.any() else np.ones(len(n_pkts), dtype=bool)


def base_dimension(n_pkts: np.ndarray, q: float) -> int:
    """``floor(quantile(packets per flow, q))``, netml's feature dimension rule.

    Taken over the ``learning_flows`` (flows of 2 or more packets; all flows when every flow has
    one packet, which gives 1), so one-packet flows do not shrink the width of the others and the
    width is netml's whenever netml could have computed one. ``SeriesFeature.fit`` clamps each
    series width to at least 1.
    """
    n_pkts = np.asarray(n_pkts)
    return int(np.floor(np.quantile(n_pkts[learning_flows(n_pkts)], q)))


def header_block(ctx: FlowContext, n_ttl: int) -> np.ndarray:
    """``(n_flows, 8 + n_ttl)``: TCP flag counts (F,S,R,P,A,U,E,C) then the first ``n_ttl`` TTLs.

    Flags are counted over TCP packets only (UDP rows carry 0 anyway); TTL is the IPv4 TTL or IPv6
    hop limit, so raw-IP and IPv6 captures work (netml raised on both).
    """
    off = ctx.offsets
    n = len(off) - 1
    out = np.zeros((n, 8 + n_ttl), dtype=np.float64)
    flags = ctx.column("tcp_flags")
    flags = np.where(ctx.column("proto") == 6, flags, 0).astype(np.int64)
    for b in range(8):
        out[:, b] = seg.segment_sum((flags >> b) & 1, off)
    seg.pad_segments(ctx.column("ttl"), off, n_ttl, out=out[:, 8:])
    return out


def fft_real(X: np.ndarray) -> np.ndarray:
    """Real part of the FFT of each row (the row already zero-padded/cut to ``n``)."""
    if X.shape[1] == 0:
        return X.copy()
    return np.real(np.fft.fft(X, axis=1))


class SeriesFeature(Feature):
    """A netml flow representation: fitted width ``dim_``, optional FFT and header block."""

    per_flow = True  # every row comes from that flow's packets only

    #: prefix for feature names, e.g. ``iat``
    series_name = "series"

    param_docs = {
        "fft": "real part of the FFT of the series (netml's FFT-* features)",
        "header": "prepend 8 TCP flag counts and one TTL per packet",
        "q_dim": "quantile of packets per training flow (flows of 2+ packets) that sets the feature width",
        "dim": "fixed base width in packets; learned from q_dim when unset",
    }

    def __init__(self, fft=False, header=False, q_dim=0.9, dim=None):
        self.fft = fft
        self.header = header
        self.q_dim = q_dim
        self.dim = dim
        self._validate()

    def _validate(self) -> None:
        check_flag("fft", self.fft)
        check_flag("header", self.header)
        check_fraction("q_dim", self.q_dim)
        check_positive_int("dim", self.dim)

    # -- to implement -----------------------------------------------------------------------------
    def _width(self, n: int) -> int:
        """Series width for a base dimension of ``n`` packets (e.g. ``n - 1`` for IAT)."""
        raise NotImplementedError

    def _series(self, ctx: FlowContext) -> np.ndarray:
        """``(n_flows, dim_)`` float64: the series padded with zeros / cut to ``dim_``."""
        raise NotImplementedError

    def _names(self) -> list[str]:
        return [f"{self.series_name}_{i}" for i in range(self.dim_)]

    def _fit_more(self, ctx: FlowContext) -> None:
        """Learn anything beyond the width (e.g. a sampling rate)."""

    # -- Feature API ------------------------------------------------------------------------------
    def fit(self, flows: FlowTable) -> "SeriesFeature":
        self._validate()
        if len(flows) == 0:
            raise NoFlowsToFitError(f"cannot fit feature {self.series_name!r}: no flows to learn from")
        base = int(self.dim) if self.dim is not None else base_dimension(flows.n_pkts, self.q_dim)
        # at least one column: IAT of a base of 1 packet (all-one-packet training, or dim=1) is 1 wide
        self.dim_ = int(max(1, self._width(base)))
        self._fit_more(FlowContext(flows))
        return self

    def transform(self, flows: FlowTable) -> np.ndarray:
        self._check_fitted("dim_")
        ctx = FlowContext(flows)
        X = self._series(ctx)
        if self.fft:
            X = fft_real(X)
        if self.header:
            H = header_block(ctx, self.dim_)
            if self.fft:
                H = fft_real(H)
            X = np.hstack([H, X])
        return np.ascontiguousarray(X, dtype=np.float64)

    def feature_names(self) -> list[str]:
        self._check_fitted("dim_")
        names = self._names()
        if self.fft:
            names = [f"fft_{n}" for n in names]
        if self.header:
            head = [f"tcp_{f}" for f in TCP_FLAG_NAMES] + [f"ttl_{i}" for i in range(self.dim_)]
            if self.fft:
                head = [f"fft_{n}" for n in head]
            names = head + names
        return names
