"""IAT and IAT_SIZE: the timing of a flow's packets, as netml 0.7.1 defines them.

IAT is ``np.diff`` of the packet times (seconds) of each flow; a flow of ``n`` packets has
``n - 1`` values and the width is ``dim - 1``. IAT_SIZE interleaves them with the packet sizes
(bytes on the wire): ``iat_0, size_0, iat_1, size_1, ..., size_{n-1}``, width ``2 * dim - 1``.

One-packet flows (netml's formulas at ``n = 1``): IAT has no value, so the row is all zeros (the
padding); IAT_SIZE is just ``size_0``, in the first column, then zeros. With a base dimension of 1
(training flows that all have one packet) IAT's width ``dim - 1 = 0`` is clamped to 1.
"""

from __future__ import annotations

import numpy as np

from netml_core import segments as seg
from netml_core.series import FlowContext, SeriesFeature
from netml_core.state_checks import SeriesStateChecks


class IatFeature(SeriesStateChecks, SeriesFeature):
    """Inter-arrival times (seconds) of each flow, zero-padded or cut to the fitted width."""

    series_name = "iat"

    def _width(self, n: int) -> int:
        return n - 1

    def _series(self, ctx: FlowContext) -> np.ndarray:
        iat, off = seg.segment_diff(ctx.ts, ctx.offsets)
        return seg.pad_segments(iat, off, self.dim_)


class IatSizeFeature(SeriesStateChecks, SeriesFeature):
    """Inter-arrival times (s) interleaved with packet sizes (bytes), netml's IAT_SIZE."""

    series_name = "iat_size"

    def _width(self, n: int) -> int:
        return 2 * n - 1

    def _series(self, ctx: FlowContext) -> np.ndarray:
        off = ctx.offsets
        iat, iat_off = seg.segment_diff(ctx.ts, off)
        X = seg.pad_segments(iat, iat_off, self.dim_, stride=2, start=0)
        sizes = ctx.column("wire_len")
        # size k sits after iat k (column 2k+1), except the last size, which follows the last iat
        pos = seg.positions(off)
        last = np.zeros(len(pos), dtype=bool)
        last[off[1:][np.diff(off) > 0] - 1] = True
        col = np.where(last, 2 * pos, 2 * pos + 1)
        keep = col < self.dim_
        X[seg.segment_ids(off)[keep], col[keep]] = sizes[keep]
        return X

    def _names(self) -> list[str]:
        return [f"iat_{i // 2}" if i % 2 == 0 else f"size_{i // 2}" for i in range(self.dim_)]
