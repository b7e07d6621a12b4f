"""``scapy`` reader: scapy's ``RawPcapReader``/``RawPcapNgReader`` frame, netml's decoder does the rest.

The raw readers give each record's bytes with its metadata (seconds and fraction, or pcapng
timestamp words and resolution, original length, link type) without dissecting it: that is scapy's
own fastest iteration, and the shared vectorised decoder then reads every header. Dissecting each
packet into scapy layers (what the original netml did, about 2,000 packets/s) is not needed for a
5-tuple.

Where scapy's framing is wrong the plugin works around it (the shared corpus shows each case):

- a record cut short by the end of the file is yielded by scapy as a short packet ("packet has been
  truncated"): it is dropped and reported here;
- a caplen above libpcap's limit makes scapy skip blindly: reading stops and it is reported;
- the pcap link type field's FCS bits are not masked by scapy: masked here;
- a pcap file header with a major version other than 2 is read by scapy: refused here, like libpcap;
- scapy keeps interface ids across pcapng sections (later sections get an earlier section's link
  type and resolution) and ignores ``if_tsoffset``: both corrected in a small subclass;
- Simple Packet Blocks have no timestamp: they take the previous packet's, as in the native reader.

scapy's own warnings are silenced while reading; damage is reported once, through
``netml.readers``.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from typing import Iterator

from netml_core.components import Reader
from netml_core.packets import PacketTable
from netml_core.params import check_number
from netml_core.readers.framing import UNBOUNDED, packet_batches, read_whole
from netml_core.readers.pcap import HARD_CAPLEN, LINKTYPE_MASK, MAX_SNAPLEN
from netml_core.readers.pcapng import MISSING_NOTE, SEC_NS_NOTE, TS_MISSING, TS_SEC_NS, tick_ns
from netml_core.readers.records import RecordBatch, add_count, empty_run
from netml_core.readers.source import open_capture, read_exactly

NS = 1_000_000_000
#: scapy reads at most this much of a record (MTU * 4) and skips the rest
SCAPY_MAX_READ = 4 * 0xFFFF


@contextlib.contextmanager
def _quiet_scapy():
    log = logging.getLogger("scapy.runtime")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


#: records framed per batch at most (their bytes are held until the batch is decoded)
MAX_BATCH_RECORDS = 1 << 22


class ScapyReader(Reader):
    """scapy's raw pcap/pcapng readers frame records, netml's numpy decoder reads the headers."""

    param_docs = {"batch_records": f"records framed by scapy before each vectorised decode (1..{MAX_BATCH_RECORDS})"}

    def __init__(self, batch_records: int = 65536) -> None:
        check_number("batch_records", batch_records, low=1, high=MAX_BATCH_RECORDS, integer=True)
        self.batch_records = batch_records

    def read(self, source) -> PacketTable:
        return read_whole(self.iter_batches(source, UNBOUNDED))

    def iter_batches(self, source, max_packets: int = 1_000_000) -> Iterator[PacketTable]:
        with _quiet_scapy():
            from scapy.utils import RawPcapNgReader, RawPcapReader

        with open_capture(source) as cap, _quiet_scapy():
            suffix = f"+{cap.compression}" if cap.compression else ""
            state = {"format": cap.kind}
            if cap.kind == "pcap":
                gen = self._pcap(cap.stream, RawPcapReader, state)
            else:
                gen = self._pcapng(cap.stream, RawPcapNgReader, state)
            yield from packet_batches(gen, max_packets, cap.name, lambda: state["format"] + suffix,
                                      cap.stream_damage)

    # -- classic pcap ----------------------------------------------------------------------------
    def _pcap(self, stream, RawPcapReader, state) -> Iterator[RecordBatch]:
        size = max(1, int(self.batch_records))
        head = read_exactly(stream, 24)
        if len(head) < 24:
            yield RecordBatch.empty(damage=[f"file ends inside the 24-byte pcap file header ({len(head)} bytes)"])
            return
        e = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        major, minor, _z, _s, snaplen, linktype = struct.unpack(e + "HHiIII", head[4:])
        if major != 2:  # scapy reads it anyway; libpcap refuses it
            yield RecordBatch.empty(damage=[f"unsupported pcap version {major}.{minor}: no record read"])
            return
        watch = _ShortReads(stream.unwrap(), prefix=head)  # scapy reads the header again itself
        reader = RawPcapReader(watch)
        nano = bool(getattr(reader, "nano", False))
        state["format"] = "pcap-ns" if nano else "pcap"
        linktype &= LINKTYPE_MASK
        cap_limit = max(MAX_SNAPLEN, min(snaplen, HARD_CAPLEN))
        scale, limit = (1, NS) if nano else (1000, 10**6)
        pkts, wire, ts, damage, skipped = [], [], [], [], {}
        bad_frac = empty = 0
        cut = False
        while True:
            try:
                data, meta = reader._read_packet(size=SCAPY_MAX_READ)
            except EOFError:
                break
            except Exception as exc:  # noqa: BLE001 - scapy raises Scapy_Exception/struct.error on bad bytes
                damage.append(f"scapy stopped reading: {exc}")
                cut = True
                break
            if meta.caplen > cap_limit:
                add_count(skipped, "absurd_caplen")
                damage.append(f"record {len(pkts) + 1} claims {meta.caplen} captured bytes (more than {cap_limit}): "
                              "reading stopped there")
                cut = True
                break
            if len(data) < min(meta.caplen, SCAPY_MAX_READ):  # scapy yields cut records as packets
                add_count(skipped, "cut_record")
                damage.append(f"file ends inside a record ({len(data)} of {meta.caplen} bytes present): "
                              "that record is dropped")
                cut = True
                break
            if meta.usec >= limit:
                bad_frac += 1
            pkts.append(data)
            wire.append(meta.wirelen)
            ts.append(meta.sec * NS + meta.usec * scale)
            if not meta.caplen:  # the empty records after it are counted in bulk, not read one by one
                run, bad = watch.skip_empty_records(e, limit)
                empty += run
                bad_frac += bad
            if len(pkts) >= size or empty >= size:
                yield RecordBatch.from_packets(pkts, wire, linktype, ts, skipped=skipped, damage=damage,
                                               empty_records={linktype: empty} if empty else {})
                pkts, wire, ts, damage, skipped = [], [], [], [], {}
                empty = 0
        if bad_frac:
            unit = "nanosecond" if nano else "microsecond"
            damage.append(f"record(s) with a {unit} field >= {limit} (out of range): "
                          "kept, carried into the seconds")
        if watch.truncated and not cut:  # scapy stops silently on a cut record header
            add_count(skipped, "cut_record")
            damage.append("file ends inside a record header: dropped")
        yield RecordBatch.from_packets(pkts, wire, linktype, ts, skipped=skipped, damage=damage,
                                       empty_records={linktype: empty} if empty else {})

    # -- pcapng ----------------------------------------------------------------------------------
    def _pcapng(self, stream, RawPcapNgReader, state) -> Iterator[RecordBatch]:
        size = max(1, int(self.batch_records))
        magic = read_exactly(stream, 4)
        counter = _ShortReads(stream.unwrap(), prefix=magic)
        try:
            reader = _fixed_ng_reader(RawPcapNgReader)(counter)
        except (EOFError, struct.error, ValueError) as exc:
            yield RecordBatch.empty(damage=[f"scapy cannot read the section header: {exc or 'bad header'}"])
            return
        except Exception as exc:  # noqa: BLE001 - scapy raises Scapy_Exception for bad headers
            yield RecordBatch.empty(damage=[f"scapy cannot read the section header: {exc}"])
            return
        pkts, wire, lts, ts, damage, skipped = [], [], [], [], [], {}
        last_ts = None
        pending_spb = 0
        spb_total = 0
        while True:
            try:
                data, meta = reader._read_packet(size=1 << 30)
            except EOFError:
                break
            except Exception as exc:  # noqa: BLE001 - scapy raises Scapy_Exception/struct.error on bad bytes
                damage.append(f"scapy stopped reading: {exc}")
                break
            status = TS_MISSING
            if meta.tshigh is None:  # Simple Packet Block: no timestamp
                spb_total += 1
            else:
                ticks = (meta.tshigh << 32) | meta.tslow
                value, status = tick_ns(ticks, int(meta.tsresol), reader.netml_tsoffset)
                note = SEC_NS_NOTE if status == TS_SEC_NS else MISSING_NOTE if status else ""
                if note and note not in damage:
                    damage.append(note)
            if status == TS_MISSING:  # the time of the packet before (or, for leading ones, after)
                value = last_ts
                if value is None:
                    pending_spb += 1
            else:
                if pending_spb:
                    ts = [value if t is None else t for t in ts]
                    pending_spb = 0
                last_ts = value
            pkts.append(data)
            wire.append(meta.wirelen)
            lts.append(meta.linktype)
            ts.append(value)
            if len(pkts) >= size and not pending_spb:
                yield RecordBatch.from_packets(pkts, wire, lts, ts, skipped=skipped, damage=damage)
                pkts, wire, lts, ts, damage, skipped = [], [], [], [], [], {}
        if pending_spb:
            ts = [0 if t is None else t for t in ts]
        if spb_total:
            state["format"] = "pcapng+spb"
        if reader.bad_blocks:
            add_count(skipped, "bad_block", reader.bad_blocks)
            damage.append("packet block(s) claiming more captured bytes than the block holds: dropped")
        if counter.truncated:
            add_count(skipped, "cut_record")
            damage.append("file ends inside a block: that block is dropped")
        yield RecordBatch.from_packets(pkts, wire, lts, ts, skipped=skipped, damage=damage)


def _fixed_ng_reader(RawPcapNgReader):
    """scapy's pcapng reader with its block parsers corrected.

    - SHB: scapy keeps the interface list across sections; interface ids restart per section.
    - IDB/EPB/PB: scapy ignores ``if_tsoffset``; the packet's interface offset is kept in
      ``netml_tsoffset`` for the reader to add (exactly, ``pcapng.tick_ns``).
    - SPB: scapy cuts the packet to the interface snaplen even when it is 0 (which means "no
      limit"), giving empty packets; here 0 means no limit and the block size bounds the data.
    - EPB: scapy silently shortens a packet whose caplen exceeds its block; here it is dropped and
      counted in ``bad_blocks``.
    """

    class FixedRawPcapNgReader(RawPcapNgReader):
        bad_blocks = 0
        netml_tsoffset = 0  # if_tsoffset (seconds) of the interface of the packet read last

        def _read_block_spb(self, block, size):
            if not self._check_interface_id(0) or len(block) < 4:
                return None
            (wirelen,) = struct.unpack(self.endian + "I", block[:4])
            linktype, snaplen, options = self.interfaces[0]
            caplen = min(wirelen, len(block) - 4)
            if snaplen:
                caplen = min(caplen, snaplen)
            meta = self.PacketMetadata(linktype=linktype, tsresol=options["tsresol"], tshigh=None, tslow=None,
                                       wirelen=wirelen, comments=None, ifname=options.get("name"),
                                       direction=None, process_information={})
            return block[4 : 4 + caplen][:size], meta

        def _read_block_shb(self):
            super()._read_block_shb()
            self.interfaces = []  # interface ids restart in every section

        def _read_block_idb(self, block, size):
            super()._read_block_idb(block, size)
            offset = 0
            opts = self._read_options(block[8:])
            if 14 in opts and len(opts[14]) >= 8:
                (offset,) = struct.unpack(self.endian + "q", opts[14][:8])
            self.interfaces[-1][2]["netml_tsoffset"] = offset

        def _read_block_epb(self, block, size):
            if len(block) >= 20:
                (caplen,) = struct.unpack(self.endian + "I", block[12:16])
                if caplen > len(block) - 20:
                    self.bad_blocks += 1
                    return None
            res = super()._read_block_epb(block, size)
            if res is not None:
                (intid,) = struct.unpack(self.endian + "I", block[:4])
                self.netml_tsoffset = self.interfaces[intid][2].get("netml_tsoffset", 0)
            return res

        def _read_block_pkt(self, block, size):
            res = super()._read_block_pkt(block, size)
            if res is not None:
                (intid,) = struct.unpack(self.endian + "H", block[:2])
                self.netml_tsoffset = self.interfaces[intid][2].get("netml_tsoffset", 0)
            return res

    return FixedRawPcapNgReader


class _ShortReads:
    """The stream scapy reads: ``prefix`` (bytes already sniffed) first, then the raw stream, noting
    a short read (the file ends inside a header or block: scapy itself stops silently)."""

    def __init__(self, stream, prefix: bytes = b"") -> None:
        self._prefix = prefix
        self._raw = stream.read
        self.truncated = False
        self.name = "<stream>"

    def read(self, n: int = -1) -> bytes:
        head = b""
        if self._prefix:
            if n is None or n < 0:
                head, self._prefix = self._prefix, b""
            else:
                head, self._prefix = self._prefix[:n], self._prefix[n:]
                if len(head) == n:
                    return head
        data = head + (self._raw(n - len(head) if n is not None and n >= 0 else -1) or b"")
        if n is not None and 0 < len(data) < n:
            self.truncated = True
        return data

    def skip_empty_records(self, endian: str, limit: int) -> tuple[int, int]:
        """Consume the classic-pcap records of caplen 0 that come next (16 bytes each, nothing to
        decode): ``(how many, how many have a sub-second field >= limit)``. A gzip bomb of zeros is
        millions of them, which scapy read one by one (133 s for 256 MiB)."""
        count = bad = 0
        want = 256
        while True:
            buf, self._prefix = self._prefix[:want], self._prefix[want:]
            if len(buf) < want:
                buf += self._raw(want - len(buf)) or b""
            run, b = empty_run(buf, 0, endian, limit)
            count += run
            bad += b
            used = 16 * run
            if used < len(buf) or not buf:
                self._prefix = buf[used:] + self._prefix
                return count, bad
            want = min(want * 16, 1 << 20)

    def close(self) -> None:
        pass
