"""Classic pcap framing: the 24-byte file header, then 16-byte record headers.

The file is read in chunks (``chunk_bytes``, default 8 MiB) so memory stays bounded and standard
input works; a record that straddles two chunks is carried over. A live source (a pipe, a followed
file: ``live.py``) gives shorter chunks, what arrived before its writer paused, and ``None`` while it
is silent (yielded as an empty batch, a tick). The walk over record headers is a
tight Python loop (one ``unpack_from`` per record, the only per-packet Python work); the header
fields of all records of a chunk are then gathered with numpy.

Damage policy: a record cut short by the end of the file, or one whose captured length is absurd
(more than ``max(262144, snaplen)`` bytes, libpcap's sanity rule), ends the reading; every complete
record before it is kept, and the damage is described in ``RecordBatch.damage``. A sub-second field
out of range (>= 10**6 us or 10**9 ns) is kept, carried into the seconds as scapy and tshark do, and
reported.
"""

from __future__ import annotations

import struct
from typing import Iterator

import numpy as np

from .decode import gather
from .records import HEAD_BYTES, RecordBatch, add_count, empty_run
from .source import PCAP_MAGICS, read_chunk, read_exactly

CHUNK_BYTES = 8 << 20
#: libpcap's largest snapshot length for most link types; a bigger caplen is taken as garbage
MAX_SNAPLEN = 262144
#: never believe a caplen above this, whatever the file header's snaplen says
HARD_CAPLEN = 16 << 20
#: link type field: the low 26 bits are the DLT, the upper bits carry FCS information
LINKTYPE_MASK = 0x03FFFFFF


class PcapFramer:
    """Frames a classic pcap stream positioned at byte 0 (magic included)."""

    def __init__(self, stream, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.stream = stream
        self.chunk_bytes = int(chunk_bytes)
        self.format = "pcap"
        self.header_damage: list[str] = []
        head = read_exactly(stream, 24)
        self.endian, self.nano = PCAP_MAGICS[head[:4]]
        if self.nano:
            self.format = "pcap-ns"
        self.ok = len(head) == 24
        if not self.ok:
            self.header_damage.append(f"file ends inside the 24-byte pcap file header ({len(head)} bytes)")
            self.linktype = self.snaplen = 0
            return
        major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(self.endian + "HHiIII", head[4:])
        self.version = (major, minor)
        self.snaplen = snaplen
        self.linktype = linktype & LINKTYPE_MASK
        if major != 2:
            self.ok = False
            self.header_damage.append(f"unsupported pcap version {major}.{minor}: no record read")

    def batches(self) -> Iterator[RecordBatch]:
        if not self.ok:
            yield RecordBatch.empty(damage=list(self.header_damage))
            return
        e = self.endian
        unpack_caplen = struct.Struct(e + "8xI").unpack_from  # caplen sits 8 bytes into a record header
        cap_limit = max(MAX_SNAPLEN, min(self.snaplen, HARD_CAPLEN))
        hdr_dtype = np.dtype({"names": ["sec", "frac", "caplen", "len"], "formats": [e + "u4"] * 4,
                              "offsets": [0, 4, 8, 12], "itemsize": 16 + HEAD_BYTES})
        frac_limit = 1_000_000_000 if self.nano else 1_000_000
        frac_scale = 1 if self.nano else 1000
        carry = b""
        consumed = 24  # file offset of carry[0]
        while True:
            more = read_chunk(self.stream, self.chunk_bytes)
            if more is None:  # a live source is silent: a tick, the carried bytes wait
                yield RecordBatch.empty()
                continue
            buf = carry + more if carry else more
            n = len(buf)
            offs: list[int] = []
            append = offs.append
            off = 0
            runs: list[tuple[int, int, int]] = []  # (offset, records, bad sub-second fields)
            # hot loop: only find record starts; sanity checks and fields come vectorised below.
            # It ends when unpack_from runs off the buffer (cheaper than a bounds test per record);
            # the offset appended last then has no complete header and is dropped. A record of
            # caplen 0 starts a run of them, counted in bulk (a gzip bomb of zeros is millions)
            while True:
                try:
                    while True:
                        append(off)
                        c = unpack_caplen(buf, off)[0]
                        if not c:
                            break
                        off += 16 + c
                except struct.error:
                    offs.pop()
                    break
                offs.pop()
                run, bad = empty_run(buf, off, e, frac_limit)
                if not run:  # 12 to 15 bytes left: the caplen is there, not the whole header
                    break
                runs.append((off, run, bad))
                off += 16 * run
            batch, off, absurd = self._batch(buf, offs, hdr_dtype, frac_limit, frac_scale, cap_limit,
                                             end=off)
            runs = [r for r in runs if r[0] < off]  # not those after an absurd or unfinished record
            if runs:
                batch.empty_records[self.linktype] = sum(r[1] for r in runs)
                if any(r[2] for r in runs) and self._frac_note(frac_limit) not in batch.damage:
                    batch.damage.append(self._frac_note(frac_limit))
            if absurd >= 0:
                add_count(batch.skipped, "absurd_caplen")
                batch.damage.append(
                    f"record at byte {consumed + off} claims {absurd} captured bytes "
                    f"(more than {cap_limit}): reading stopped there, {n - off} bytes or more left unread"
                )
                yield batch
                return
            carry = buf[off:]
            consumed += off
            if not more:
                if carry:
                    add_count(batch.skipped, "cut_record")
                    batch.damage.append(
                        f"file ends inside a record at byte {consumed} "
                        f"({len(carry)} bytes of it present): that record is dropped"
                    )
                yield batch
                return
            yield batch

    def _frac_note(self, frac_limit: int) -> str:
        unit = "nanosecond" if self.nano else "microsecond"
        return f"record(s) with a {unit} field >= {frac_limit} (out of range): kept, carried into the seconds"

    def _batch(self, buf: bytes, offs: list[int], hdr_dtype, frac_limit: int, frac_scale: int, cap_limit: int,
               end: int = 0):
        """Records at ``offs`` -> (batch of the complete sane ones, end of the last, absurd caplen or -1).

        ``end``: where the walk stopped (after a run of empty records that no offset stands for).
        """
        arr = np.frombuffer(buf, np.uint8)
        absurd = -1
        if not offs:
            return RecordBatch(arr, *(np.zeros(0, np.int64) for _ in range(5))), end, absurd
        o = np.fromiter(offs, np.int64, len(offs))
        head = gather(arr, o, 16 + HEAD_BYTES)  # record header and the packet's first bytes at once
        hdr = head.view(hdr_dtype).reshape(-1)  # header fields as strided views, no copy
        caplen = hdr["caplen"].astype(np.int64)
        bad = caplen > cap_limit
        if bad.any():
            first = int(np.argmax(bad))
            absurd = int(caplen[first])
            o, hdr, caplen, head = o[:first], hdr[:first], caplen[:first], head[:first]
        if len(o) and o[-1] + 16 + caplen[-1] > len(buf):  # the last record continues in the next chunk
            o, hdr, caplen, head = o[:-1], hdr[:-1], caplen[:-1], head[:-1]
        # the first record not taken (absurd, or unfinished in this chunk), else where the walk ended
        stop = int(offs[len(o)]) if len(o) < len(offs) else end
        sec = hdr["sec"].astype(np.int64)
        frac = hdr["frac"].astype(np.int64)
        batch = RecordBatch(
            arr,
            o + 16,
            caplen,
            hdr["len"].astype(np.int64),
            np.full(len(o), self.linktype, np.int64),
            sec * 1_000_000_000 + frac * frac_scale,
            head=head,
            head_shift=16,
        )
        if int(np.count_nonzero(frac >= frac_limit)):
            batch.damage.append(self._frac_note(frac_limit))
        return batch, stop, absurd
