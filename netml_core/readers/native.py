"""``native``: the default reader, numpy only.

pcap and pcapng are framed in Python (``pcap.py``, ``pcapng.py``), headers are decoded vectorised
(``decode.py``). The format comes from the magic bytes (``source.py``), gzip is undone on the fly.
"""

from __future__ import annotations

from typing import Iterator

from ..components import Reader
from ..packets import PacketTable
from ..params import check_number
from .framing import UNBOUNDED, packet_batches, read_whole
from .pcap import PcapFramer
from .pcapng import PcapngFramer
from .live import Follow
from .source import open_capture


#: largest read chunk (MiB): a chunk and the record it carries over are held in memory at once
MAX_CHUNK_MIB = 256


class NativeReader(Reader):
    """pcap/pcapng framing in Python, header decoding vectorised in numpy (no dependency)."""

    param_docs = {"chunk_mib": f"bytes read from the capture at a time, in MiB (bounds memory; at most {MAX_CHUNK_MIB})"}

    def __init__(self, chunk_mib: float = 8) -> None:
        check_number("chunk_mib", chunk_mib, low=0.0, low_open=True, high=MAX_CHUNK_MIB)
        self.chunk_mib = chunk_mib

    def read(self, source) -> PacketTable:
        return read_whole(self.iter_batches(source, UNBOUNDED))

    #: reads live sources: a pipe as bytes arrive, and ``Follow`` (a file being written, rotated)
    live = True

    def iter_batches(self, source, max_packets: int = 1_000_000) -> Iterator[PacketTable]:
        if isinstance(source, Follow):  # one capture per file that appears at the path
            for stream in source.streams():
                yield from self._batches(stream, max_packets)
            return
        yield from self._batches(source, max_packets)

    def _batches(self, source, max_packets: int) -> Iterator[PacketTable]:
        chunk = max(1 << 16, int(float(self.chunk_mib) * (1 << 20)))
        with open_capture(source) as cap:
            framer = PcapFramer(cap.stream, chunk) if cap.kind == "pcap" else PcapngFramer(cap.stream, chunk)
            suffix = f"+{cap.compression}" if cap.compression else ""

            def fmt() -> str:
                spb = "+spb" if getattr(framer, "spb_records", 0) else ""
                return framer.format + spb + suffix

            for table in packet_batches(framer.batches(), max_packets, cap.name, fmt, cap.stream_damage,
                                        live=cap.live):
                table.bytes_read = cap.position()  # for a progress line, not a column
                yield table
