"""SIZE: the packet sizes of a flow (bytes on the wire), as netml 0.7.1 defines them.

Width is the fitted dimension itself (``floor`` of the ``q_dim`` quantile of packets per flow).
netml took ``len(pkt)`` after scapy re-serialised the packet, which differs from the wire length for
a few protocols scapy re-encodes (e.g. LDAP); here it is the length the capture recorded.

A one-packet flow gives its one size, then zeros.
"""

from __future__ import annotations

import numpy as np

from netml_core import segments as seg
from netml_core.series import FlowContext, SeriesFeature
from netml_core.state_checks import SeriesStateChecks


class SizeFeature(SeriesStateChecks, SeriesFeature):
    """Packet sizes (bytes on the wire) of each flow, zero-padded or cut to the fitted width."""

    series_name = "size"

    def _width(self, n: int) -> int:
        return n

    def _series(self, ctx: FlowContext) -> np.ndarray:
        return seg.pad_segments(ctx.column("wire_len"), ctx.offsets, self.dim_)
