"""Byte ranges of one capture file, each framed on its own (for Dask workers).

A worker given ``[start, stop)`` frames from the first record boundary at or after ``start`` that it
can verify: a chain of record headers that are sane (captured length within the file's limit and
not above the wire length, sub-second field in range, timestamps not going back, nor before the
file's first record) and end exactly on
the next header, or on the end of the file. It reads up to the boundary verified the same way at
``stop``, which is where the next range starts. The framing of the range itself proves the boundary:
the records from a true start lead exactly to the end only if the end is a true boundary too, so a
range whose records do not end exactly there (``Range.exact`` false), or that finds damage, makes
the caller read the whole capture in one piece instead. The first range starts right after the
file header (byte 24; after a pcapng file's head), a true boundary, so by induction every accepted
range is framed as a whole-file read frames it.

pcapng is cut the same way. Its blocks start on 4-byte offsets and repeat their length at their
end, so a boundary is a chain of blocks whose two lengths agree (packet blocks must also name a
described interface and fit their data). A range is framed with the file's head in front of it:
the section header and interface descriptions before the first other block, which say what every
packet block's interface and byte order mean. A section header or interface description anywhere
after the head, or a Simple Packet Block (its time is the packet before it, maybe in another range),
makes its range inexact, so such files are read whole.

Compressed files and standard input are read whole (by capture).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from ..packets import PacketTable
from .framing import UNBOUNDED, packet_batches, read_whole
from .pcap import HARD_CAPLEN, MAX_SNAPLEN, PcapFramer
from .pcapng import BOM, EPB, IDB, MAX_BLOCK, PB, SHB, PcapngFramer
from .source import PCAP_MAGICS, PCAPNG_MAGIC

#: record headers a boundary must chain through (fewer only when the file ends first)
CHAIN = 16
#: bytes searched for a boundary after a nominal cut (a record is at most HARD_CAPLEN)
WINDOW = 1 << 20
#: a pcapng head (section header and interface descriptions) longer than this is not cut
MAX_HEAD = 1 << 20


@dataclass
class Range:
    """A framed byte range: its packets, the verified start and end, and whether it is trustworthy."""

    packets: PacketTable
    start: int
    end: int
    exact: bool


@dataclass
class Layout:
    """A file that can be cut: its kind, size and where its records start (after the file header)."""

    kind: str  # "pcap" or "pcapng"
    size: int
    first: int


def layout(path) -> Layout | None:
    """The layout of an uncompressed pcap or pcapng file, else ``None`` (read whole, not cut)."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "-" or not os.path.isfile(path):
        return None
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            magic = f.read(4)
            if magic in PCAP_MAGICS:
                return Layout("pcap", size, 24) if size >= 24 else None
            if magic == PCAPNG_MAGIC:
                head = _NgHeader.read(f, size)
                return None if head is None else Layout("pcapng", size, head.first)
    except OSError:
        return None
    return None


def plan(size: int, slice_bytes: int, first: int = 24) -> list[tuple[int, int]]:
    """Nominal ``[start, stop)`` cuts of the records of a file of ``size`` bytes (from ``first``),
    about ``slice_bytes`` each."""
    body = size - first
    n = max(1, -(-body // max(1, int(slice_bytes))))
    cuts = [first + body * i // n for i in range(n + 1)]
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
        magic = f.read(4)
        f.seek(0)
        if magic == PCAPNG_MAGIC:
            return _read_pcapng_range(f, str(path), start, stop, size)
        hdr = _Header(f.read(24), size)
        hdr.first_t = _first_time(f, hdr)
        begin = boundary(f, start, hdr)
        end = boundary(f, stop, hdr) if stop < size else size
        f.seek(begin)
        framer = PcapFramer(_Bounded(hdr.head, f, max(0, end - begin)))
        packets = read_whole(packet_batches(framer.batches(), UNBOUNDED, str(path), framer.format))
    exact = begin <= end and not packets.damage
    return Range(packets, begin, end, exact)


# -- pcapng ---------------------------------------------------------------------------------------
class _NgHeader:
    """The head of a pcapng file: its leading section headers and interface descriptions."""

    def __init__(self, head: bytes, endian: str, n_ifaces: int, sections: int, size: int):
        self.head, self.first, self.size = head, len(head), size
        self.endian, self.n_ifaces, self.sections = endian, n_ifaces, sections
        self.pair, self.word = struct.Struct(endian + "II"), struct.Struct(endian + "I")

    @classmethod
    def read(cls, f, size: int) -> "_NgHeader | None":
        """Walk the leading blocks; ``None`` when they are odd (damaged, huge, or all there is)."""
        f.seek(0)
        buf = f.read(MAX_HEAD + 12)
        off, endian, n_ifaces, sections = 0, "<", 0, 0
        while off + 12 <= len(buf):
            if buf[off:off + 4] == PCAPNG_MAGIC:
                bom = buf[off + 8:off + 12]
                endian = "<" if bom == struct.pack("<I", BOM) else ">" if bom == struct.pack(">I", BOM) else ""
                if not endian:
                    return None
                n_ifaces, sections = 0, sections + 1
            btype, blen = struct.unpack_from(endian + "II", buf, off)
            if btype not in (SHB, IDB):
                break
            if blen < 12 or blen & 3 or off + blen > len(buf) or off + blen > MAX_HEAD:
                return None
            n_ifaces += btype == IDB
            off += blen
        else:
            return None
        if not sections or off >= size:
            return None
        return cls(buf[:off], endian, n_ifaces, sections, size)


def ng_boundary(f, pos: int, hdr: _NgHeader) -> int:
    """First 4-aligned offset >= ``pos`` where a chain of sane blocks starts (the file size if none).

    Candidates are the offsets whose length word is sane and repeated at the block's end, found
    with numpy over a window; only those are walked as a chain.
    """
    if pos <= hdr.first:
        return hdr.first
    pos = -(-pos // 4) * 4
    while pos < hdr.size:
        f.seek(pos)
        buf = f.read(2 * WINDOW)
        words = np.frombuffer(buf, hdr.endian + "u4", len(buf) // 4).astype(np.int64)
        limit = min(len(words) - 2, WINDOW // 4)
        if limit <= 0:  # fewer than 12 bytes left: no block starts here
            return hdr.size
        blen = words[1:limit + 1]
        tail = np.arange(limit) + blen // 4 - 1
        sane = (blen >= 12) & (blen & 3 == 0) & (blen <= MAX_BLOCK)
        inside = sane & (tail < len(words))
        sane[inside] = words[tail[inside]] == blen[inside]  # a block past the buffer: the chain decides
        for c in np.flatnonzero(sane).tolist():
            if _ng_chain(buf, 4 * c, pos, hdr):
                return pos + 4 * c
        pos += 4 * limit
    return hdr.size


def _ng_chain(buf: bytes, c: int, pos: int, hdr: _NgHeader) -> bool:
    pair, word = hdr.pair.unpack_from, hdr.word.unpack_from
    for k in range(CHAIN):
        if pos + c == hdr.size:
            return True  # ends exactly at the end of the file
        if c + 8 > len(buf):
            return k >= 4 and pos + len(buf) < hdr.size  # as for pcap: huge blocks ran past the window
        btype, blen = pair(buf, c)
        if btype == SHB:
            return k >= 1  # a new section (its byte order may differ): its range is inexact anyway
        if btype == 0 or blen < 12 or blen & 3 or blen > MAX_BLOCK or pos + c + blen > hdr.size:
            return False
        if c + blen > len(buf):
            return k >= 4
        if word(buf, c + blen - 4)[0] != blen:
            return False
        if btype in (EPB, PB):
            ifid, caplen = word(buf, c + 8)[0], word(buf, c + 20)[0]
            if btype == PB:
                ifid = ifid & 0xFFFF if hdr.endian == "<" else ifid >> 16
            if blen < 32 or ifid >= hdr.n_ifaces or caplen > blen - 32:
                return False
        c += blen
    return True


def _read_pcapng_range(f, name: str, start: int, stop: int, size: int) -> Range:
    hdr = _NgHeader.read(f, size)
    if hdr is None:
        return Range(PacketTable.empty(), start, stop, False)
    begin = ng_boundary(f, start, hdr)
    end = ng_boundary(f, stop, hdr) if stop < size else size
    f.seek(begin)
    framer = PcapngFramer(_Bounded(hdr.head, f, max(0, end - begin)))
    packets = read_whole(packet_batches(framer.batches(), UNBOUNDED, name, framer.format))
    # a section or interface described after the head, or a timestamp borrowed from another range
    moved = framer.sections != hdr.sections or len(framer.interfaces) != hdr.n_ifaces or framer.spb_records
    exact = begin <= end and not packets.damage and not moved
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
