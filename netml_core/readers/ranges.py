"""Byte ranges of one classic pcap file, each framed on its own (for Dask workers).

A worker given ``[start, stop)`` frames from the first record boundary at or after ``start`` that it
can verify: a chain of record headers that are sane (captured length within the file's limit and
not above the wire length, sub-second field in range, timestamps not going back, nor before the
file's first record) and end exactly on
the next header, or on the end of the file. It reads up to the boundary verified the same way at
``stop``, which is where the next range starts. The framing of the range itself proves the boundary:
the records from a true start lead exactly to the end only if the end is a true boundary too, so a
range whose records do not end exactly there (``Range.exact`` false), or that finds damage, makes
the caller read the whole capture in one piece instead. The first range starts at byte 24, a true
boundary, so by induction every accepted range is framed as a whole-file read frames it.

Only plain (uncompressed) classic pcap is cut; pcapng, compressed files and standard input are
read whole (by capture).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from ..packets import PacketTable
from .framing import UNBOUNDED, packet_batches, read_whole
from .pcap import HARD_CAPLEN, MAX_SNAPLEN, PcapFramer
from .source import PCAP_MAGICS

#: record headers a boundary must chain through (fewer only when the file ends first)
CHAIN = 16
#: bytes searched for a boundary after a nominal cut (a record is at most HARD_CAPLEN)
WINDOW = 1 << 20


@dataclass
class Range:
    """A framed byte range: its packets, the verified start and end, and whether it is trustworthy."""

    packets: PacketTable
    start: int
    end: int
    exact: bool


def pcap_size(path) -> int | None:
    """File size of an uncompressed classic pcap file, else ``None`` (not cut in ranges)."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "-":
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(24)
        size = os.path.getsize(path)
    except OSError:
        return None
    if len(head) < 24 or head[:4] not in PCAP_MAGICS or not os.path.isfile(path):
        return None
    return size


def plan(size: int, slice_bytes: int) -> list[tuple[int, int]]:
    """Nominal ``[start, stop)`` cuts of a file of ``size`` bytes, about ``slice_bytes`` each."""
    body = size - 24
    n = max(1, -(-body // max(1, int(slice_bytes))))
    cuts = [24 + body * i // n for i in range(n + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


class _Header:
    def __init__(self, head: bytes, size: int):
        self.head = head
        self.endian, nano = PCAP_MAGICS[head[:4]]
        self.size = size
        snaplen = struct.unpack(self.endian + "I", head[16:20])[0]
        self.cap_limit = max(MAX_SNAPLEN, min(snaplen, HARD_CAPLEN))
        self.frac_limit = 1_000_000_000 if nano else 1_000_000
        self.rec = struct.Struct(self.endian + "IIII")
        self.first_t = 0  # time of the file's first record: no later record is older in an ordered capture


def _first_time(f, hdr: _Header) -> int:
    f.seek(24)
    head = f.read(16)
    if len(head) < 16:
        return 0
    sec, frac, _, _ = hdr.rec.unpack(head)
    return sec * 1_000_000_000 + frac


def boundary(f, pos: int, hdr: _Header) -> int:
    """First offset >= ``pos`` where a chain of sane record headers starts (the file size if none)."""
    if pos <= 24:
        return 24
    while pos < hdr.size:
        f.seek(pos)
        buf = f.read(2 * WINDOW)
        limit = min(len(buf), WINDOW)
        for c in range(limit):
            if _chain(buf, c, pos, hdr):
                return pos + c
        pos += limit
    return hdr.size


def _chain(buf: bytes, c: int, pos: int, hdr: _Header) -> bool:
    unpack = hdr.rec.unpack_from
    prev = -1
    for k in range(CHAIN):
        if pos + c == hdr.size:
            return True  # ends exactly at the end of the file
        if c + 16 > len(buf):
            # past the buffer: the file ends there (and this chain did not end on it), or huge
            # records ran past the window: then four sane ones in a row will do
            return k >= 4 and pos + len(buf) < hdr.size
        sec, frac, caplen, wire = unpack(buf, c)
        t = sec * 1_000_000_000 + frac
        # a header read 4 bytes late (its sub-second field as seconds, caplen as fraction, wire
        # length as caplen) chains just as well when caplen == wire: its "seconds" are too small
        if caplen > hdr.cap_limit or caplen > wire or frac >= hdr.frac_limit or t < max(prev, hdr.first_t):
            return False
        prev = t
        c += 16 + caplen
    return True


def read_range(path, start: int, stop: int, size: int) -> Range:
    """Frame and decode the records of ``[start, stop)`` (boundaries verified as said above)."""
    with open(path, "rb") as f:
        hdr = _Header(f.read(24), size)
        hdr.first_t = _first_time(f, hdr)
        begin = boundary(f, start, hdr)
        end = boundary(f, stop, hdr) if stop < size else size
        f.seek(begin)
        stream = _Bounded(hdr.head, f, max(0, end - begin))
        framer = PcapFramer(stream)
        packets = read_whole(packet_batches(framer.batches(), UNBOUNDED, str(path), framer.format))
    exact = begin <= end and not packets.damage
    return Range(packets, begin, end, exact)


class _Bounded:
    """The 24-byte file header, then ``n`` bytes of ``f`` from its position: one range as a file."""

    def __init__(self, head: bytes, f, n: int):
        self._head, self._f, self._left = head, f, n

    def read(self, n: int = -1) -> bytes:
        out = b""
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            n -= len(out)
        if n > 0 and self._left > 0:
            data = self._f.read(min(n, self._left))
            self._left -= len(data)
            out += data
        return out
