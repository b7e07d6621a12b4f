"""``dpkt`` reader: dpkt's record and block classes frame the capture, netml's decoder does the rest.

dpkt's own ``Reader`` classes are not used as they are, because they lose what a PacketTable needs
or get it wrong (measured on the shared corpus):

- they yield ``(float timestamp, bytes)``: nanosecond timestamps are rounded and the original
  length (``wire_len``) is lost, so the plugin reads both from the record or block headers that
  dpkt framed (at the offsets dpkt's framing implies, vectorised);
- on a record cut short by the end of the file they yield the short bytes as a packet; here the cut
  record is dropped and reported, as the native reader does;
- ``dpkt.pcapng.Reader`` reads only the first section and applies the first interface's link type
  and timestamp resolution to every packet; here sections and interfaces are tracked per block
  with dpkt's block classes (``SectionHeaderBlock``, ``InterfaceDescriptionBlock``,
  ``EnhancedPacketBlock``, ``PacketBlock``);
- dpkt has no Simple Packet Block class: SPB packets are counted as skipped (``spb_unsupported``)
  and reported, not decoded.

Speed: the per-record Python work is dpkt's own (one header or block object per record); the
plugin keeps one integer per record and does the rest vectorised per batch. Classic pcap: about
310,000 records per CPU second, dpkt's bare ``pcap.Reader`` loop about 370,000. pcapng: about
220,000, above dpkt's bare ``pcapng.Reader`` loop (about 205,000); dpkt's ``EnhancedPacketBlock``
parse alone allows at most about 270,000 (``benchmarks/bench_readers.py --only dpkt``).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from functools import partial
from itertools import islice
from operator import itemgetter

import dpkt
import dpkt.pcap
import dpkt.pcapng
import numpy as np

from netml_core.components import Reader
from netml_core.packets import PacketTable
from netml_core.params import check_number
from netml_core.readers.decode import gather
from netml_core.readers.framing import UNBOUNDED, packet_batches, read_whole
from netml_core.readers.pcap import CHUNK_BYTES, HARD_CAPLEN, LINKTYPE_MASK, MAX_SNAPLEN
from netml_core.readers.pcapng import (MAX_BLOCK, TS_MISSING, Interface, fill_missing, ticks_to_ns,
                                       timestamp_notes)
from netml_core.readers.records import HEAD_BYTES, RecordBatch, add_count, empty_run
from netml_core.readers.source import PCAP_MAGICS, open_capture, read_exactly

DPKT_ERRORS = (dpkt.Error, struct.error, ValueError, IndexError)

#: records framed per batch at most (their bytes are held until the batch is decoded)
MAX_BATCH_RECORDS = 1 << 22


class DpktReader(Reader):
    """dpkt frames pcap/pcapng records, netml's numpy decoder reads the headers."""

    param_docs = {"batch_records": f"records framed by dpkt before each vectorised decode (1..{MAX_BATCH_RECORDS})"}

    def __init__(self, batch_records: int = 65536) -> None:
        check_number("batch_records", batch_records, low=1, high=MAX_BATCH_RECORDS, integer=True)
        self.batch_records = batch_records

    def read(self, source) -> PacketTable:
        return read_whole(self.iter_batches(source, UNBOUNDED))

    def iter_batches(self, source, max_packets: int = 1_000_000) -> Iterator[PacketTable]:
        with open_capture(source) as cap:
            walk = _PcapWalk(cap.stream) if cap.kind == "pcap" else _PcapngWalk(cap.stream)
            suffix = f"+{cap.compression}" if cap.compression else ""
            yield from packet_batches(walk.batches(max(1, int(self.batch_records))), max_packets,
                                      cap.name, lambda: walk.format + suffix, cap.stream_damage)


class _PcapWalk:
    """dpkt's ``pcap.Reader`` iterates the records of an in-memory chunk; numpy reads their headers.

    The only per-record work is dpkt's own iteration, keeping ``len(pkt)`` (see ``_frame``): record
    ``i`` then starts at ``start + sum(16 + len_j, j < i)``, so the record headers (exact
    timestamps, original length, captured length) are read for the whole chunk at once, and the
    packet bytes are used in place (no copy per record). dpkt's ``(float, bytes)`` pairs lose
    nanoseconds and the original length; the headers read back here keep both, and comparing each
    header's caplen with the bytes dpkt returned finds the record dpkt would yield cut short.
    """

    def __init__(self, stream) -> None:
        self.stream = stream
        self.format = "pcap"

    def batches(self, size: int) -> Iterator[RecordBatch]:
        head = read_exactly(self.stream, 24)
        if len(head) < 24:
            yield RecordBatch.empty(damage=[f"file ends inside the 24-byte pcap file header ({len(head)} bytes)"])
            return
        reader = dpkt.pcap.Reader(io.BytesIO(head))
        fh = reader._Reader__fh  # dpkt keeps the parsed file header private
        nano = reader._divisor != 1e6
        self.format = "pcap-ns" if nano else "pcap"
        if fh.v_major != 2:
            yield RecordBatch.empty(damage=[f"unsupported pcap version {fh.v_major}.{fh.v_minor}: no record read"])
            return
        linktype = fh.linktype & LINKTYPE_MASK
        cap_limit = max(MAX_SNAPLEN, min(fh.snaplen, HARD_CAPLEN))
        scale, limit = (1, 10**9) if nano else (1000, 10**6)
        e = PCAP_MAGICS[head[:4]][0]
        hdr_dtype = np.dtype({"names": ["sec", "frac", "caplen", "len"], "formats": [e + "u4"] * 4,
                              "offsets": [0, 4, 8, 12], "itemsize": 16 + HEAD_BYTES})
        stream = self.stream.unwrap() if hasattr(self.stream, "unwrap") else self.stream
        more = read_exactly(stream, CHUNK_BYTES)
        eof = len(more) < CHUNK_BYTES
        data = head + more  # every chunk keeps the file header in front: dpkt's Reader starts there
        base = 24  # file offset of data[24]
        start = 24  # where the next record starts in data
        bad_frac = 0
        while True:
            lens, run = _frame(data, start, size, e)
            batch, stop, state = self._batch(data, start, lens, hdr_dtype, linktype, cap_limit, scale)
            bad_frac += state["bad_frac"]
            pos = base + stop - 24  # file offset of the first record not in this batch
            if state["absurd"] >= 0:
                add_count(batch.skipped, "absurd_caplen")
                batch.damage.append(f"record at byte {pos} claims {state['absurd']} captured bytes "
                                    f"(more than {cap_limit}): reading stopped there")
                break
            if run:  # a long run of empty records after the batch: counted, not framed one by one
                bad_frac += empty_run(data, stop, e, limit)[1]
                batch.empty_records[linktype] = run
                yield batch
                start = stop + 16 * run
                continue
            rest = len(data) - stop
            if len(lens) == size and not state["short"]:
                yield batch
                start = stop
                continue
            if not eof:  # dpkt ran out of chunk: carry the unread tail in front of the next chunk
                if len(batch):
                    yield batch
                more = read_exactly(stream, CHUNK_BYTES)
                eof = len(more) < CHUNK_BYTES
                data = head + data[stop:] + more
                base, start = pos, 24
                continue
            if 0 < rest < 16:
                add_count(batch.skipped, "cut_record")
                batch.damage.append(f"file ends inside a record header at byte {pos}: dropped")
            elif rest:  # dpkt's Reader would yield this short record as a packet
                caplen = struct.unpack_from(e + "I", data, stop + 8)[0]
                add_count(batch.skipped, "cut_record")
                batch.damage.append(f"file ends inside a record at byte {pos} ({rest - 16} of {caplen} "
                                    "bytes present): that record is dropped")
            break
        if bad_frac:
            unit = "nanosecond" if nano else "microsecond"
            batch.damage.append(f"record(s) with a {unit} field >= {limit} (out of range): "
                                "kept, carried into the seconds")
        yield batch

    @staticmethod
    def _batch(data: bytes, start: int, lens: list[int], hdr_dtype, linktype: int, cap_limit: int, scale: int):
        """The records dpkt framed from ``start`` -> (batch of the complete sane ones, end of the last, state).

        ``state``: ``absurd`` (the first absurd caplen, or -1), ``short`` (dpkt's last record was cut
        by the end of the data), ``bad_frac`` (sub-second fields out of range).
        """
        arr = np.frombuffer(data, np.uint8)
        n = len(lens)
        got = np.fromiter(lens, np.int64, n)  # bytes dpkt returned per record
        o = np.empty(n, np.int64)
        if n:
            o[0] = start
            np.cumsum(got[:-1] + 16, out=o[1:])
            o[1:] += start
        head = gather(arr, o, 16 + HEAD_BYTES)  # record header and the packet's first bytes at once
        hdr = head.view(hdr_dtype).reshape(-1)
        caplen = hdr["caplen"].astype(np.int64)
        state = {"absurd": -1, "short": False, "bad_frac": 0}
        keep = n
        bad = caplen > cap_limit
        if bad.any():
            keep = int(np.argmax(bad))
            state["absurd"] = int(caplen[keep])
        if keep and got[keep - 1] < caplen[keep - 1]:  # only the last record can be short
            keep -= 1
            state["short"] = True
        o, hdr, caplen, head = o[:keep], hdr[:keep], caplen[:keep], head[:keep]
        stop = int(o[-1] + 16 + caplen[-1]) if keep else start
        sec = hdr["sec"].astype(np.int64)
        frac = hdr["frac"].astype(np.int64)
        state["bad_frac"] = int(np.count_nonzero(frac >= 1_000_000_000 // scale))  # 10**9 ns or 10**6 us
        batch = RecordBatch(arr, o + 16, caplen, hdr["len"].astype(np.int64), np.full(keep, linktype, np.int64),
                            sec * 1_000_000_000 + frac * scale, head=head, head_shift=16)
        return batch, stop, state


#: a run of at least this many records of caplen 0 is counted in bulk and ends the batch; shorter
#: runs stay in the batch as records of 0 bytes
LONG_EMPTY_RUN = 64


def _frame(data: bytes, start: int, size: int, endian: str) -> tuple[list[int], int]:
    """Lengths of the (at most ``size``) records dpkt's ``pcap.Reader`` yields from ``data[start:]``,
    and the length of a long run of empty records that follows them (0 if none).

    ``data`` starts with the 24-byte file header, which dpkt's Reader parses first. The hot loop is
    dpkt's own iteration, drained by ``list.extend`` in C (8% faster than a Python ``for`` with an
    append, measured): no Python bytecode of ours runs per record. It pauses at a record of 0
    bytes (the ``iter`` sentinel): a short run of them is added as zeros and dpkt goes on after it;
    a long one (a gzip bomb of zeros is millions, 47 s for 256 MiB one by one) ends the batch and
    is counted in bulk by the caller.
    """
    lens: list[int] = []
    pos = start
    # closed on exit: the Reader sits in a reference cycle (it keeps a generator over itself), so
    # only closing the BytesIO frees the chunk at once rather than at the next cyclic collection
    with io.BytesIO(data) as chunk:
        records = dpkt.pcap.Reader(chunk)
        records._divisor = 1.0  # its float timestamp is not used: skip the Decimal division of ns files
        chunk.seek(start)
        lengths = map(len, map(itemgetter(1), iter(records)))
        try:
            while len(lens) < size:
                before = len(lens)
                lens.extend(islice(iter(partial(next, lengths, 0), 0), size - before))
                pos += 16 * (len(lens) - before) + sum(lens[before:])
                if len(lens) == size or len(data) - pos < 16 or _CAPLEN[endian](data, pos)[0]:
                    break  # the end of the data (or a record cut by it), not an empty record
                run = empty_run(data, pos, endian)[0]
                if run >= LONG_EMPTY_RUN:
                    return lens, run
                take = min(run, size - len(lens))
                lens.extend([0] * take)
                pos += 16 * take
                chunk.seek(pos)
        except DPKT_ERRORS:  # NeedData: a partial record header ends the data (extend keeps what it took)
            pass
    return lens, 0


_CAPLEN = {e: struct.Struct(e + "8xI").unpack_from for e in "<>"}


class _PcapngWalk:
    """dpkt's block classes parse every block of an in-memory chunk; numpy reads the packet headers.

    ``dpkt.pcapng.Reader`` cannot be iterated as it is (first section only, first interface's link
    type and resolution for every packet, float timestamps), so the walk goes block by block and
    hands each one to dpkt's class for its type (``EnhancedPacketBlock``, ``PacketBlock``,
    ``InterfaceDescriptionBlock``, ``SectionHeaderBlock``): what dpkt cannot parse ends the
    reading as damage. Per packet block the Python work is dpkt's parse and one offset kept; the
    fixed fields (interface, timestamp, lengths) of a batch are then read at those offsets with
    numpy, and the packet bytes are used in place. A batch never spans an SHB or IDB, so byte
    order and the interface table are constant within it.
    """

    def __init__(self, stream) -> None:
        self.stream = stream
        self.format = "pcapng"

    def batches(self, size: int) -> Iterator[RecordBatch]:
        P = dpkt.pcapng
        EPB, PB, IDB, SPB, SHB = P.PCAPNG_BT_EPB, P.PCAPNG_BT_PB, P.PCAPNG_BT_IDB, P.PCAPNG_BT_SPB, P.PCAPNG_BT_SHB
        data = read_exactly(self.stream, CHUNK_BYTES)
        eof = len(data) < CHUNK_BYTES
        stream = self.stream.unwrap() if hasattr(self.stream, "unwrap") else self.stream
        n = len(data)
        base = off = 0  # base: file offset of data[0]; off: the next block in data
        le = True
        ifaces: list[Interface] = []
        offs: list[int] = []  # packet blocks of the pending batch
        pbs: list[int] = []  # which of them are (obsolete) Packet Blocks
        meta: dict = {"skipped": {}, "damage": [], "last_ts": None}  # counters riding on the next batch
        spb = 0

        def take() -> RecordBatch:
            rb = _packet_batch(data, offs, pbs, le, ifaces, meta)
            offs.clear(), pbs.clear()
            meta["skipped"], meta["damage"] = {}, []
            return rb

        def stop(reason: str, count: str | None = None) -> None:
            if count:
                add_count(meta["skipped"], count)
            meta["damage"].append(reason)

        while True:
            epb_cls = P.EnhancedPacketBlockLE if le else P.EnhancedPacketBlock
            unpack_hdr = struct.Struct("<II" if le else ">II").unpack_from
            append = offs.append
            try:  # hot loop: complete EPBs only; everything else is handled one block at a time below
                while True:
                    btype, blen = unpack_hdr(data, off)
                    end = off + blen
                    if btype != EPB or end > n or blen < 32 or blen & 3 or len(offs) >= size:
                        break
                    epb_cls(data[off:end])
                    append(off)
                    off = end
            except DPKT_ERRORS as exc:
                if n - off < 8:  # unpack_hdr ran off the data: fewer than 8 bytes left
                    btype = blen = None
                else:
                    stop(f"dpkt cannot parse the block of type {EPB:#x} at byte {base + off} ({exc}): "
                         "reading stopped", "bad_block")
                    break
            pos = base + off
            if len(offs) >= size:
                yield take()
                continue
            if btype is not None and data[off:off + 4] == SHB.to_bytes(4, "little"):
                if n - off < 12:
                    btype = blen = None  # the byte-order magic is in the next chunk, or the file ends before it
                else:
                    bom = data[off + 8:off + 12]
                    if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                        stop(f"section header at byte {pos} has no valid byte-order magic: reading stopped")
                        break
                    sle = bom == b"\x4d\x3c\x2b\x1a"
                    (blen,) = struct.unpack_from("<I" if sle else ">I", data, off + 4)
                    if blen < 28 or blen & 3 or blen > MAX_BLOCK:
                        stop(f"section header at byte {pos} has an impossible length {blen}: reading stopped")
                        break
            elif btype is not None and (blen < 12 or blen & 3 or blen > MAX_BLOCK):
                stop(f"block of type {btype:#x} at byte {pos} has an impossible length {blen}: reading stopped",
                     "bad_block")
                break
            if btype is None or off + blen > n:  # the block continues past the data read so far
                if eof:
                    if off < n:
                        add_count(meta["skipped"], "cut_record")
                        meta["damage"].append(f"file ends inside a block at byte {pos} ({n - off} bytes of it "
                                              "present): that block is dropped")
                    break
                if offs:
                    yield take()
                data = data[off:] + read_exactly(stream, max(CHUNK_BYTES, (blen or 0) - (n - off)))
                eof = len(data) - (n - off) < max(CHUNK_BYTES, (blen or 0) - (n - off))
                base, off, n = pos, 0, len(data)
                continue
            buf = data[off:off + blen]
            try:
                if btype == SHB and data[off:off + 4] == SHB.to_bytes(4, "little"):
                    shb = (P.SectionHeaderBlockLE if sle else P.SectionHeaderBlock)(buf)
                    if shb.v_major != 1:
                        stop(f"section at byte {pos} has unsupported pcapng version "
                             f"{shb.v_major}.{shb.v_minor}: reading stopped")
                        break
                    if offs:
                        yield take()
                    le, ifaces = sle, []
                elif btype == EPB or btype == PB:
                    (epb_cls if btype == EPB else P.PacketBlockLE if le else P.PacketBlock)(buf)
                    if btype == PB:
                        pbs.append(len(offs))
                    offs.append(off)
                elif btype == IDB:
                    idb = (P.InterfaceDescriptionBlockLE if le else P.InterfaceDescriptionBlock)(buf)
                    iface = Interface(idb.linktype, idb.snaplen)
                    for opt in idb.opts:
                        if opt.code == P.PCAPNG_OPT_IF_TSRESOL and opt.data:
                            iface.tsresol = opt.data[0]
                        elif opt.code == P.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) >= 8:
                            iface.tsoffset = struct.unpack("<q" if le else ">q", opt.data[:8])[0]
                    if offs:  # earlier packets must not see this interface
                        yield take()
                    ifaces = ifaces + [iface]
                elif btype == SPB:
                    spb += 1
            except DPKT_ERRORS as exc:
                if btype == SHB:
                    stop(f"dpkt cannot parse the section header at byte {pos} ({exc}): reading stopped")
                else:
                    stop(f"dpkt cannot parse the block of type {btype:#x} at byte {pos} ({exc}): reading stopped",
                         "bad_block")
                break
            off += blen
        if spb:
            add_count(meta["skipped"], "spb_unsupported", spb)
            meta["damage"].append(f"dpkt has no Simple Packet Block support: {spb} SPB packet(s) not read")
        yield take()


def _packet_batch(data: bytes, offs: list[int], pbs: list[int], le: bool, ifaces: list[Interface],
                  meta: dict) -> RecordBatch:
    """Packet blocks at ``offs`` of ``data`` (one section, one interface table) -> a RecordBatch.

    Drops, counted in ``meta``: a block naming an interface the section never described, one
    claiming more captured bytes than it holds (as the native reader). Timestamps int64 nanoseconds
    cannot hold are repaired as the native reader does (``meta["last_ts"]``: the packet before).
    """
    skipped, damage = dict(meta["skipped"]), list(meta["damage"])
    arr = np.frombuffer(data, np.uint8)
    o = np.fromiter(offs, np.int64, len(offs))
    e = "<" if le else ">"
    dtype = np.dtype({"names": ["blen", "iface", "th", "tl", "caplen", "wire"], "formats": [e + "u4"] * 6,
                      "offsets": [4, 8, 12, 16, 20, 24], "itemsize": 28 + HEAD_BYTES})
    head = gather(arr, o, 28 + HEAD_BYTES)  # block header and the packet's first bytes at once
    h = head.view(dtype).reshape(-1)
    iface = h["iface"].astype(np.int64)
    if pbs:  # a Packet Block's interface is 16 bits, followed by a drop counter
        iface[pbs] = head[pbs, 8:10].copy().view(e + "u2").reshape(-1)
    caplen = h["caplen"].astype(np.int64)
    ticks = (h["th"].astype(np.uint64) << np.uint64(32)) | h["tl"].astype(np.uint64)
    ns = np.zeros(len(o), np.int64)
    status = np.zeros(len(o), np.uint8)
    linktype = np.zeros(len(o), np.int64)
    for i, itf in enumerate(ifaces):
        rows = np.flatnonzero(iface == i)
        if len(rows):
            ns[rows], status[rows] = ticks_to_ns(ticks[rows], itf)
            linktype[rows] = itf.linktype
    no_iface = iface >= len(ifaces)
    too_long = ~no_iface & (caplen > h["blen"].astype(np.int64) - 32)
    for mask, reason, sentence in (
        (too_long, "bad_block", "packet block(s) claiming more captured bytes than the block holds: dropped"),
        (no_iface, "no_interface", "packet block(s) naming an interface the section never described: dropped"),
    ):
        k = int(np.count_nonzero(mask))
        if k:
            add_count(skipped, reason, k)
            damage.append(sentence)
    keep = ~no_iface & ~too_long
    if not keep.all():
        o, caplen, h, head, linktype, ns, status = (a[keep] for a in (o, caplen, h, head, linktype, ns, status))
    timestamp_notes(status, damage)
    if (status == TS_MISSING).any():
        ns = fill_missing(ns, status == TS_MISSING, meta["last_ts"])
    if len(ns):
        meta["last_ts"] = int(ns[-1])
    return RecordBatch(arr, o + 28, caplen, h["wire"].astype(np.int64), linktype, ns,
                       skipped=skipped, damage=damage, head=head, head_shift=28)
