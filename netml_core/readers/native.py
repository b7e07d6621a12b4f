"""``native``: the default reader, numpy only.

pcap and pcapng are framed in Python (``pcap.py``, ``pcapng.py``), headers are decoded vectorised
(``decode.py``). The format comes from the magic bytes (``source.py``), gzip is undone on the fly.
"""

from __future__ import annotations

from typing import Iterator

from ..components import Reader
from ..packets import PacketTable
from .framing import UNBOUNDED, packet_batches, read_whole
from .pcap import PcapFramer
from .pcapng import PcapngFramer
from .source import open_capture


class NativeReader(Reader):
    """pcap/pcapng framing in Python, header decoding vectorised in numpy (no dependency)."""

    param_docs = {"chunk_mib": "bytes read from the capture at a time, in MiB (bounds memory)"}

    def __init__(self, chunk_mib: float = 8) -> None:
        self.chunk_mib = chunk_mib

    def read(self, source) -> PacketTable:
        return read_whole(self.iter_batches(source, UNBOUNDED))

    def iter_batches(self, source, max_packets: int = 1_000_000) -> Iterator[PacketTable]:
        chunk = max(1 << 16, int(float(self.chunk_mib) * (1 << 20)))
        with open_capture(source) as cap:
            framer = PcapFramer(cap.stream, chunk) if cap.kind == "pcap" else PcapngFramer(cap.stream, chunk)
            suffix = f"+{cap.compression}" if cap.compression else ""

            def fmt() -> str:
                spb = "+spb" if getattr(framer, "spb_records", 0) else ""
                return framer.format + spb + suffix

            yield from packet_batches(framer.batches(), max_packets, cap.name, fmt, cap.stream_damage)
