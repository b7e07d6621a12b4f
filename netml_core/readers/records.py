"""``RecordBatch``: framed capture records of one chunk, before any header is decoded.

Framing (pcap, pcapng, or a library such as dpkt/scapy) finds where each record's packet bytes are
and what its header says; the vectorised decoder in ``decode.py`` then reads the link/IP/TCP/UDP
headers of all records at once. Keeping this boundary lets every reader share one decoder, so the
readers agree by construction wherever their framing agrees.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RecordBatch:
    """Records whose bytes live in ``buf`` at ``data_off`` (``caplen`` bytes each).

    ``ts_ns`` is nanoseconds since the epoch, ``wire_len`` the original length in bytes and
    ``linktype`` the DLT of each record (pcapng interfaces may differ). ``skipped`` counts records
    the framing had to drop (reason -> count) and ``damage`` holds one sentence per kind of damage.
    ``empty_records`` counts records of no captured byte (link type -> count) that the framing skipped in
    bulk instead of one by one (a gzip bomb of zeros is millions of them): nothing can be decoded
    from them, so ``decode`` counts them exactly as it would have counted each.
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
    empty_records: dict[int, int] = field(default_factory=dict)

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


#: a classic pcap record header's sub-second field and caplen, by byte order
_FRAC_CAPLEN = {e: struct.Struct(e + "4xII").unpack_from for e in "<>"}


def empty_run(buf, start: int, endian: str, limit: int | None = None) -> tuple[int, int]:
    """Consecutive classic-pcap records of caplen 0 from ``buf[start:]`` (16 bytes each).

    Returns ``(count, sub-second fields >= 10**6 us / 10**9 ns counted with the caller's limit)``
    where the second item is 0 unless ``limit`` is given. The first few are read one by one (an
    isolated empty record costs what any record does), longer runs in growing numpy windows, so a
    run of millions costs a few large calls.
    """
    arr = np.frombuffer(buf, np.uint8) if not isinstance(buf, np.ndarray) else buf
    rows_left = (len(arr) - start) // 16
    count = bad = 0
    unpack = _FRAC_CAPLEN[endian]
    while count < min(rows_left, 16):
        frac, caplen = unpack(buf, start + 16 * count)
        if caplen:
            return count, bad
        bad += limit is not None and frac >= limit
        count += 1
    rows_left -= count
    window = 64
    while rows_left > 0:
        k = min(window, rows_left)
        rec = arr[start + count * 16:start + (count + k) * 16].view(endian + "u4").reshape(k, 4)
        nonzero = np.flatnonzero(rec[:, 2])
        run = int(nonzero[0]) if len(nonzero) else k
        if limit is not None:
            bad += int(np.count_nonzero(rec[:run, 1] >= limit))
        count += run
        rows_left -= run
        if run < k:
            break
        window = min(window * 8, 1 << 20)
    return count, bad
