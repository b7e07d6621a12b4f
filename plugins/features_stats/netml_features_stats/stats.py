"""STATS: 12 numbers per flow, as netml 0.7.1 computes them.

duration (s, last - first packet time), packets/s, bytes/s (both 0 when the duration is 0), then of
the packet sizes (bytes): mean, standard deviation (ddof 0), 25th percentile, median, 75th
percentile (numpy's linear quantiles), min, max, and finally packet and byte counts.

A one-packet flow of ``s`` bytes: duration 0, both rates 0, mean/quantiles/min/max ``s``, std 0,
1 packet, ``s`` bytes; all finite, no division by its zero duration.
"""

from __future__ import annotations

import numpy as np

from netml_core import segments as seg
from netml_core.series import FlowContext, SeriesFeature
from netml_core.state_checks import SeriesStateChecks

STATS_NAMES = ("duration", "pkts_per_s", "bytes_per_s", "mean", "std", "q25", "median", "q75",
               "min", "max", "n_pkts", "n_bytes")


class StatsFeature(SeriesStateChecks, SeriesFeature):
    """Duration, packet and byte rates, size moments, quantiles and extremes, counts (12 values)."""

    series_name = "stats"
    param_docs = dict(SeriesFeature.param_docs,
                      q_dim="unused by STATS (always 12 values); kept for a uniform interface",
                      dim="unused by STATS (always 12 values)")

    def _width(self, n: int) -> int:
        return len(STATS_NAMES)

    def _series(self, ctx: FlowContext) -> np.ndarray:
        off = ctx.offsets
        sizes = ctx.column("wire_len")
        n_pkts = np.diff(off).astype(np.float64)
        n_bytes = seg.segment_sum(sizes.astype(np.int64), off).astype(np.float64)
        duration = ctx.durations()
        nz = duration != 0
        safe = np.where(nz, duration, 1.0)
        mean, std = seg.segment_mean_std(sizes, off)
        q = seg.segment_quantiles(seg.sort_within(sizes, off), off, (0.25, 0.5, 0.75))
        X = np.column_stack([
            duration,
            np.where(nz, n_pkts / safe, 0.0),
            np.where(nz, n_bytes / safe, 0.0),
            mean,
            std,
            q,
            seg.segment_min(sizes, off).astype(np.float64),
            seg.segment_max(sizes, off).astype(np.float64),
            n_pkts,
            n_bytes,
        ])
        return X.reshape(len(off) - 1, len(STATS_NAMES))

    def _names(self) -> list[str]:
        return list(STATS_NAMES)
