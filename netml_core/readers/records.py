"""``RecordBatch``: framed capture records of one chunk, before any header is decoded.

Framing (pcap, pcapng, or a library such as dpkt/scapy) finds where each record's packet bytes are
and what its header says; the vectorised decoder in ``decode.py`` then reads the link/IP/TCP/UDP
headers of all records at once. Keeping this boundary lets every reader share one decoder, so the
readers agree by construction wherever their framing agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RecordBatch:
    """Records whose bytes live in ``buf`` at ``data_off`` (``caplen`` bytes each).

    ``ts_ns`` is nanoseconds since the epoch, ``wire_len`` the original length in bytes and
    ``linktype`` the DLT of each record (pcapng interfaces may differ). ``skipped`` counts records
    the framing had to drop (reason -> count) and ``damage`` holds one sentence per kind of damage.
    """

    buf: np.ndarray  # uint8
    data_off: np.ndarray  # int64
    caplen: np.ndarray  # int64
    wire_len: np.ndarray  # int64
    linktype: np.ndarray  # int64
    ts_ns: np.ndarray  # int64
    skipped: dict[str, int] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)
    #: optional C-contiguous ``(n, width)`` bytes per record, gathered by the framer anyway; the
    #: packet's first ``HEAD_BYTES`` bytes start at column ``head_shift`` (after the record header)
    head: np.ndarray | None = None
    head_shift: int = 0

    def __len__(self) -> int:
        return len(self.data_off)

    @classmethod
    def empty(cls, **meta) -> "RecordBatch":
        z = np.zeros(0, np.int64)
        return cls(np.zeros(0, np.uint8), z, z, z, z, z, **meta)

    @classmethod
    def from_packets(cls, packets: list[bytes], wire_len, linktype, ts_ns, **meta) -> "RecordBatch":
        """Records given as separate ``bytes`` objects (library framers): joined into one buffer."""
        lengths = np.fromiter((len(p) for p in packets), np.int64, len(packets))
        data_off = np.zeros(len(packets), np.int64)
        if len(packets) > 1:
            np.cumsum(lengths[:-1], out=data_off[1:])
        buf = np.frombuffer(b"".join(packets), np.uint8)
        return cls(
            buf,
            data_off,
            lengths,
            np.asarray(wire_len, np.int64).reshape(-1),
            np.broadcast_to(np.asarray(linktype, np.int64), (len(packets),)).copy(),
            np.asarray(ts_ns, np.int64).reshape(-1),
            **meta,
        )


#: bytes of each record the decoder's fast path reads (Ethernet 14 + IPv4 20 + TCP up to the flags 14)
HEAD_BYTES = 48


def add_count(counter: dict[str, int], key: str, n: int = 1) -> None:
    if n:
        counter[key] = counter.get(key, 0) + int(n)
