"""Packet readers: capture bytes -> ``PacketTable``.

``source`` sniffs and opens a capture, ``pcap``/``pcapng`` frame records, ``decode`` reads the
link/IP/TCP/UDP headers of a whole batch with numpy, ``framing`` turns decoded batches into bounded
``PacketTable`` batches. ``native`` is the default reader; the dpkt and scapy plugins reuse
``RecordBatch`` + ``packet_batches`` after their library has framed the records.
"""

from .decode import decode
from .framing import packet_batches
from .records import RecordBatch
from .source import open_capture

__all__ = ["decode", "packet_batches", "RecordBatch", "open_capture"]
