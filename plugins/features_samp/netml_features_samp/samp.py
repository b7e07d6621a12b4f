"""SAMP_NUM and SAMP_SIZE: traffic per sampling window, as netml 0.7.1 computes them.

Each flow is cut into consecutive windows of ``sampling_rate_`` seconds starting at its first
packet; the feature is the number of packets (SAMP_NUM) or bytes (SAMP_SIZE) in each window,
empty windows included, cut/padded to ``dim - 1`` values. ``sampling_rate_`` is learned at fit time
as the ``q_samp`` (0.3) quantile of the training flows' durations (seconds).

Which durations: those of the training flows of 2 or more packets (``series.learning_flows``), the
flows netml 0.x learned from (it dropped the others), so one-packet flows do not move it. A
one-packet flow's duration is 0 by construction, not a measurement: counted in, a port scan in the
training data would make the quantile 0. When *no* training flow has 2 packets there is no
duration to learn from and the rate is ``DEFAULT_SAMPLING_RATE`` (1 s); ``sampling_rate=`` overrides
it. When flows of 2+ packets exist but their quantile is 0 (all sent within the same clock tick),
fitting still fails as in netml 0.x, asking for a larger ``q_samp`` or an explicit rate.

A one-packet flow is one window holding its packet: SAMP_NUM ``[1, 0, ...]``, SAMP_SIZE
``[size, 0, ...]``, whatever the rate (netml's loop gives the same for ``n = 1``).

netml walks the packets keeping a float ``current`` window start that it advances by repeated
additions (``current += rate``, then ``+= k * rate`` over empty windows). Those additions round at
epoch magnitude (~2.4e-7 s), so which window a packet lands in depends on that exact arithmetic; it
is replayed here, one window step per round for all flows at once (vectorised over flows, with a
vectorised binary search for the end of each window), never a loop over packets. netml also caps a
flow at 500 windows; the cap is kept.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from netml_core.errors import ParameterError
from netml_core.series import (MIN_LEARNING_PKTS, FlowContext, SeriesFeature, check_fraction,
                               learning_flows)
from netml_core.state_checks import SeriesStateChecks, number

#: netml's cap on the number of windows of one flow
MAX_WINDOWS = 500
#: window length (s) when no training flow has 2 packets (every duration is 0): nothing to learn
#: from, so a round human time scale; SAMP_NUM's first column is then "packets in the first second"
DEFAULT_SAMPLING_RATE = 1.0


def window_sums(ts: np.ndarray, values: np.ndarray | None, offsets: np.ndarray, rate: float,
                width: int, max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """``(n_flows, width)``: per-window packet counts (``values`` None) or sums of ``values``.

    ``ts`` are float64 seconds in flow order, time-sorted within each flow. ``rate`` must be a
    positive number of seconds (a zero or NaN rate would divide by zero / compare false forever).
    """
    rate = float(rate)
    if not rate > 0:
        raise ParameterError(f"the sampling rate must be a positive number of seconds, got {rate}")
    n_flows = len(offsets) - 1
    out = np.zeros((n_flows, width), dtype=np.float64)
    counts = np.diff(offsets)
    flows = np.flatnonzero(counts > 0)
    if width <= 0 or len(flows) == 0:
        return out
    prefix = None
    if values is not None:
        prefix = np.zeros(len(values) + 1, dtype=np.float64 if values.dtype.kind == "f" else np.int64)
        np.cumsum(values, out=prefix[1:])
    end = offsets[1:][flows]
    p = offsets[:-1][flows].copy()  # first packet of the open window
    cur = ts[p].astype(np.float64)  # netml's `current`
    w = np.zeros(len(flows), dtype=np.int64)  # index of the open window
    while len(flows):
        # first packet j in (p, end) with ts[j] - cur > rate: it opens the next window
        lo, hi = p + 1, end.copy()
        while True:
            open_ = lo < hi
            if not open_.any():
                break
            mid = (lo + hi) >> 1
            mid_c = np.minimum(mid, len(ts) - 1)
            beyond = (ts[mid_c] - cur) > rate
            hi = np.where(open_ & beyond, mid, hi)
            lo = np.where(open_ & ~beyond, mid + 1, lo)
        j = lo
        val = (j - p) if prefix is None else (prefix[j] - prefix[p])
        done = j >= end
        # a window is kept if below the cap; window `max_windows` survives only as a flow's last
        record = (w < min(width, max_windows)) | (done & (w == max_windows) & (w < width))
        out[flows[record], w[record]] = val[record]
        go = ~done
        cur = cur[go] + rate
        jj = j[go]
        k = np.floor(np.floor_divide(ts[jj] - cur, rate))
        k = np.where(k > 0, np.minimum(k, max_windows), 0)
        cur = np.where(k > 0, cur + k * rate, cur)
        w = w[go] + 1 + k.astype(np.int64)
        # go on while a later window can still be recorded (netml stops a flow beyond the cap)
        alive = (w < min(width, max_windows)) | ((w == max_windows) & (width > max_windows))
        flows, end, cur, w = flows[go][alive], end[go][alive], cur[alive], w[alive]
        p = jj[alive]
    return out


class _SampFeature(SeriesStateChecks, SeriesFeature):
    param_docs = dict(
        SeriesFeature.param_docs,
        q_samp="quantile of training flow durations (flows of 2+ packets) taken as the window length",
        sampling_rate=f"window length in seconds; learned from q_samp when unset "
                      f"({DEFAULT_SAMPLING_RATE:g} s if no training flow has 2 packets)",
    )

    def __init__(self, fft=False, header=False, q_dim=0.9, dim=None, q_samp=0.3, sampling_rate=None):
        self.q_samp = q_samp
        self.sampling_rate = sampling_rate
        super().__init__(fft=fft, header=header, q_dim=q_dim, dim=dim)

    def _validate(self) -> None:
        super()._validate()
        check_fraction("q_samp", self.q_samp)
        r = self.sampling_rate
        if r is not None and (isinstance(r, bool) or not isinstance(r, Real) or not r > 0):
            raise ParameterError(f"parameter 'sampling_rate' must be a positive number (s) or unset, got {r!r}")

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        """``dim_`` (see ``SeriesStateChecks``) and a positive, finite window length."""
        out = super().check_state(params, state)
        number(state, "sampling_rate_", f"feature {cls.series_name!r}", low=0.0, low_open=True)
        return out

    def _width(self, n: int) -> int:
        return n - 1  # netml: "the dim of SAMP_SIZE is dim - 1, which equals that of SAMP_NUM"

    def _fit_more(self, ctx: FlowContext) -> None:
        if self.sampling_rate is not None:
            self.sampling_rate_ = float(self.sampling_rate)
            return
        n_pkts = ctx.flows.n_pkts
        if not (n_pkts >= MIN_LEARNING_PKTS).any():  # only one-packet flows: every duration is 0
            self.sampling_rate_ = DEFAULT_SAMPLING_RATE
            return
        self.sampling_rate_ = float(np.quantile(ctx.durations()[learning_flows(n_pkts)], self.q_samp))
        if not self.sampling_rate_ > 0:
            raise ParameterError(
                f"the learned sampling rate is {self.sampling_rate_} s (the q_samp={self.q_samp} "
                "quantile of the durations of flows of 2 or more packets); raise q_samp or set "
                "sampling_rate")

    def _values(self, ctx: FlowContext):
        raise NotImplementedError

    def _series(self, ctx: FlowContext) -> np.ndarray:
        self._check_fitted("sampling_rate_")
        return window_sums(ctx.ts, self._values(ctx), ctx.offsets, self.sampling_rate_, self.dim_)


class SampNumFeature(_SampFeature):
    """Packets per sampling window (fitted length, seconds) over each flow, netml's SAMP_NUM."""

    series_name = "samp_num"

    def _values(self, ctx):
        return None


class SampSizeFeature(_SampFeature):
    """Bytes per sampling window (fitted length, seconds) over each flow, netml's SAMP_SIZE."""

    series_name = "samp_size"

    def _values(self, ctx):
        return ctx.column("wire_len").astype(np.int64)
