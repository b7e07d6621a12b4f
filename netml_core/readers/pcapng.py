"""pcapng framing: sections (each with its own byte order), interfaces, packet blocks.

Blocks are read in chunks like classic pcap. The Python loop only reads each block's type and
length; Enhanced Packet Blocks and obsolete Packet Blocks (the bulk of a file) are then decoded
with numpy per run of blocks that share a section. Interface Description Blocks give each
interface its link type, ``if_tsresol`` (10^-n or 2^-n seconds) and ``if_tsoffset`` (seconds).

Simple Packet Blocks carry no timestamp: their packets take the timestamp of the packet before
them in the file (the first packet's timestamp after them if none came before, 0 if the file has
none), so flows keep their order; the format string gets ``+spb`` and a note says so.
Name Resolution, Interface Statistics, Decryption Secrets and custom blocks are skipped.

Damage policy: a block whose length is impossible (not a multiple of 4, below 12, above 64 MiB,
or running past the end of the file), a section header with a version other than 1.x or corrupt
options, ends the reading; the packets before it are kept. A packet block naming an interface the
section never described, or claiming more bytes than it holds, is dropped and counted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .decode import gather
from .records import HEAD_BYTES, RecordBatch, add_count
from .source import read_chunk

CHUNK_BYTES = 8 << 20
MAX_BLOCK = 64 << 20
SHB, IDB, PB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
BOM = 0x1A2B3C4D
NS = 1_000_000_000


@dataclass
class Interface:
    linktype: int
    snaplen: int
    tsresol: int = 6  # raw if_tsresol byte: bit 7 set = 2^-n, else 10^-n
    tsoffset: int = 0  # seconds


#: the latest time int64 nanoseconds can hold (2262-04-11), in seconds; the earliest is its negative
MAX_SECONDS = (2**63 - 1) // NS - 1
LIMIT_NS = MAX_SECONDS * NS

#: ``ticks_to_ns`` status of each timestamp
TS_OK, TS_SEC_NS, TS_MISSING = 0, 1, 2
#: the damage notes of the two repairs (every reader says the same)
SEC_NS_NOTE = ("packet(s) whose two timestamp words hold seconds and nanoseconds (a writer's bug: read as the "
               "interface's ticks they fall after the year 2262): read as seconds + nanoseconds")
MISSING_NOTE = ("packet(s) with a timestamp outside 1677-2262 (not representable in int64 nanoseconds): kept, "
                "with the time of the packet before them")


def resolution(tsresol: int) -> int:
    """Ticks per second of an ``if_tsresol`` byte: bit 7 set = 2^-n, else 10^-n seconds."""
    v = tsresol & 0x7F
    return 2**v if tsresol & 0x80 else 10**v


def tick_ns(ticks: int, per_second: int, tsoffset: int) -> tuple[int, int]:
    """One timestamp, exactly (Python integers): ``(nanoseconds, status)``.

    The ticks are rounded to the nearest nanosecond, ``if_tsoffset`` (seconds) is added. A result
    outside +-``LIMIT_NS`` is not representable: if its low word is below 10^9 the writer put
    seconds and nanoseconds in the two words (seen in real files) and it is read so
    (``TS_SEC_NS``); otherwise it is ``TS_MISSING`` (0 here; the framer fills it in).
    """
    if NS % per_second == 0:
        ns = ticks * (NS // per_second)
    else:
        ns = (ticks * NS + per_second // 2) // per_second
    ns += tsoffset * NS
    if -LIMIT_NS <= ns <= LIMIT_NS:
        return ns, TS_OK
    hi, lo = ticks >> 32, ticks & 0xFFFFFFFF
    if lo < NS:
        ns = hi * NS + lo + tsoffset * NS
        if -LIMIT_NS <= ns <= LIMIT_NS:
            return ns, TS_SEC_NS
    return 0, TS_MISSING


def ticks_to_ns(ticks: np.ndarray, iface: Interface) -> tuple[np.ndarray, np.ndarray]:
    """Timestamp units of one interface -> (integer nanoseconds, status per timestamp).

    Vectorised for the timestamps that are clearly representable, exactly ``tick_ns`` for the rest
    (near or past the limits, or with an ``if_tsoffset`` that int64 arithmetic would overflow):
    every reader gets the same nanoseconds whatever the values.
    """
    t = np.asarray(ticks, np.uint64)
    v = iface.tsresol & 0x7F
    per_second = resolution(iface.tsresol)
    offset = int(iface.tsoffset)
    raw_seconds = t.astype(np.float64) / float(per_second)
    margin = MAX_SECONDS - 4  # float64 seconds are off by far less than this
    fast = (raw_seconds < margin) & (np.abs(raw_seconds + float(offset)) < margin) if abs(offset) < margin \
        else np.zeros(len(t), bool)
    ns = np.zeros(len(t), np.int64)
    status = np.zeros(len(t), np.uint8)
    if fast.any():
        f = t[fast]
        if iface.tsresol & 0x80:  # 2^-v seconds: round to the nearest nanosecond
            if v == 0:
                out = f.astype(np.int64) * NS
            elif v <= 33:
                q = (f >> np.uint64(v)).astype(np.int64)
                r = (f & np.uint64((1 << v) - 1)).astype(np.int64)
                out = q * NS + ((r * NS + (1 << (v - 1))) >> v)
            else:
                out = np.array([tick_ns(int(x), per_second, 0)[0] for x in f.tolist()], np.int64)
        elif v <= 9:
            out = f.astype(np.int64) * (10 ** (9 - v))
        else:
            d = 10 ** (v - 9)  # round half up, as tick_ns: (f + d // 2) // d, without overflowing f + d // 2
            if d < 2**63:
                q, r = np.divmod(f, np.uint64(d))
                out = (q + (r >= np.uint64(d - d // 2))).astype(np.int64)
            else:
                out = np.array([tick_ns(int(x), per_second, 0)[0] for x in f.tolist()], np.int64)
        ns[fast] = out + offset * NS
    slow = np.flatnonzero(~fast)
    for i, x in zip(slow.tolist(), t[slow].tolist()):
        ns[i], status[i] = tick_ns(x, per_second, offset)
    return ns, status


def timestamp_notes(status: np.ndarray, damage: list[str]) -> None:
    """The damage notes for the repaired timestamps among ``status`` (see ``tick_ns``)."""
    if status.any():
        if (status == TS_SEC_NS).any():
            damage.append(SEC_NS_NOTE)
        if (status == TS_MISSING).any():
            damage.append(MISSING_NOTE)


def fill_missing(ts: np.ndarray, missing: np.ndarray, last_ts: int | None) -> np.ndarray:
    """Timestamps of ``missing`` rows: the previous row's (``last_ts`` for leading rows, from the
    batch before), else the first later one, else 0. Used for Simple Packet Blocks (no timestamp)
    and for timestamps int64 nanoseconds cannot hold."""
    ts = ts.copy()
    idx = np.where(~missing, np.arange(len(ts)), -1)
    np.maximum.accumulate(idx, out=idx)
    has_prev = idx >= 0
    ts[missing & has_prev] = ts[idx[missing & has_prev]]
    lead = missing & ~has_prev
    if lead.any():
        if last_ts is not None:
            ts[lead] = last_ts
        else:
            later = np.flatnonzero(~missing)
            ts[lead] = ts[later[0]] if len(later) else 0
    return ts


def _options(buf: bytes, start: int, end: int, e: str) -> dict[int, bytes] | None:
    """Option code -> first value; None when an option runs past ``end`` (corrupt block)."""
    out: dict[int, bytes] = {}
    off = start
    while off + 4 <= end:
        code, length = struct.unpack_from(e + "HH", buf, off)
        if code == 0:
            return out
        vend = off + 4 + length
        if vend > end:
            return None
        out.setdefault(code, buf[off + 4 : vend])
        off = off + 4 + ((length + 3) & ~3)
    return out


class PcapngFramer:
    """Frames a pcapng stream positioned at byte 0 (first SHB)."""

    def __init__(self, stream, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.stream = stream
        self.chunk_bytes = int(chunk_bytes)
        self.format = "pcapng"
        self.endian = "<"
        self.interfaces: list[Interface] = []
        self.sections = 0
        self.spb_records = 0
        self.last_ts: int | None = None  # for SPBs that come after a timestamped packet
        self.pending_spb_fill = True  # leading SPBs take the first later timestamp

    def batches(self) -> Iterator[RecordBatch]:
        carry = b""
        consumed = 0
        while True:
            more = read_chunk(self.stream, self.chunk_bytes)
            if more is None:  # a live source is silent: a tick, the carried bytes wait
                yield RecordBatch.empty()
                continue
            buf = carry + more if carry else more
            batch, off, stop = self._frame(buf, consumed)
            consumed += off
            carry = buf[off:]
            if stop or not more:
                if not stop and carry:
                    add_count(batch.skipped, "cut_record")
                    batch.damage.append(
                        f"file ends inside a block at byte {consumed} ({len(carry)} bytes of it present): "
                        "that block is dropped"
                    )
                yield batch
                return
            yield batch

    # -- one chunk -------------------------------------------------------------------------------
    def _frame(self, buf: bytes, base: int):
        n = len(buf)
        arr = np.frombuffer(buf, np.uint8)
        skipped: dict[str, int] = {}
        damage: list[str] = []
        runs: list[tuple[str, list[Interface], list[int]]] = []  # (endian, interfaces, packet block offsets)
        spbs: list[tuple[int, int, int, int]] = []  # (block offset, data offset, caplen, wirelen)
        cur: list[int] = []
        runs.append((self.endian, self.interfaces, cur))
        unpack = struct.Struct(self.endian + "II").unpack_from
        off = 0
        stop = False
        lim = n - 12
        while off <= lim:
            # hot loop over a run of EPBs: only their offsets; lengths are checked vectorised after
            start = len(cur)
            append = cur.append
            try:  # ends at a non-EPB block or when unpack_from runs off the buffer
                while True:
                    btype, blen = unpack(buf, off)
                    if btype != EPB:
                        break
                    append(off)
                    off += blen or 4
            except struct.error:
                pass
            if len(cur) > start:
                off, bad = self._check_run(arr, cur, start, n)
                if bad:
                    damage.append(f"packet block at byte {base + off} has an impossible length {bad}: reading stopped")
                    add_count(skipped, "bad_block")
                    stop = True
                    break
                if off > lim:
                    break
            btype, blen = unpack(buf, off)
            if btype == EPB:
                break  # the EPB at ``off`` continues in the next chunk
            if btype == PB:
                if blen < 32 or blen & 3 or blen > MAX_BLOCK:
                    damage.append(f"packet block at byte {base + off} has an impossible length {blen}: reading stopped")
                    add_count(skipped, "bad_block")
                    stop = True
                    break
                if off + blen > n:
                    break
                cur.append(off)
                off += blen
                continue
            if btype == SHB:
                if off + 28 > n:
                    break
                (bom,) = struct.unpack_from("<I", buf, off + 8)
                e = "<" if bom == BOM else ">" if bom == 0x4D3C2B1A else ""
                if not e:
                    damage.append(f"section header at byte {base + off} has no valid byte-order magic: reading stopped")
                    stop = True
                    break
                (blen,) = struct.unpack_from(e + "I", buf, off + 4)
                if blen < 28 or blen & 3 or blen > MAX_BLOCK:
                    damage.append(f"section header at byte {base + off} has an impossible length {blen}: reading stopped")
                    stop = True
                    break
                if off + blen > n:
                    break
                major, minor = struct.unpack_from(e + "HH", buf, off + 12)
                if major != 1:
                    damage.append(f"section at byte {base + off} has unsupported pcapng version {major}.{minor}: reading stopped")
                    stop = True
                    break
                if _options(buf, off + 24, off + blen - 4, e) is None:
                    damage.append(f"section header at byte {base + off} has an option running past its end: reading stopped")
                    stop = True
                    break
                self.endian = e
                self.interfaces = []
                self.sections += 1
                unpack = struct.Struct(e + "II").unpack_from
                cur = []
                runs.append((e, self.interfaces, cur))
                off += blen
                continue
            if blen < 12 or blen & 3 or blen > MAX_BLOCK:
                damage.append(f"block of type {btype:#x} at byte {base + off} has an impossible length {blen}: reading stopped")
                add_count(skipped, "bad_block")
                stop = True
                break
            if off + blen > n:
                break
            if btype == IDB:
                self._idb(buf, off, blen, base, damage)
            elif btype == SPB:
                spbs.append(self._spb(buf, off, blen))
                cur.append(-len(spbs))  # placeholder keeps file order inside the run
            off += blen
        batch = self._assemble(arr, runs, spbs, skipped, damage)
        return batch, off, stop

    def _check_run(self, arr: np.ndarray, cur: list[int], start: int, n: int) -> tuple[int, int]:
        """Validate the EPB offsets ``cur[start:]`` (in place); returns (next offset, bad length or 0)."""
        o = np.fromiter(cur[start:], np.int64, len(cur) - start)
        lens = np.ascontiguousarray(gather(arr, o + 4, 4)).view(self.endian + "u4").reshape(-1).astype(np.int64)
        invalid = (lens < 32) | ((lens & 3) != 0) | (lens > MAX_BLOCK)
        if invalid.any():
            k = int(np.argmax(invalid))
            del cur[start + k :]
            return int(o[k]), int(lens[k])
        if o[-1] + lens[-1] > n:  # the last block continues in the next chunk
            cur.pop()
            return int(o[-1]), 0
        return int(o[-1] + lens[-1]), 0

    def _idb(self, buf: bytes, off: int, blen: int, base: int, damage: list[str]) -> None:
        e = self.endian
        if blen < 20:
            damage.append(f"interface block at byte {base + off} is too short: interface ignored")
            self.interfaces.append(Interface(-1, 0))
            return
        linktype, _res, snaplen = struct.unpack_from(e + "HHI", buf, off + 8)
        iface = Interface(linktype, snaplen)
        opts = _options(buf, off + 16, off + blen - 4, e) or {}
        if 9 in opts and len(opts[9]) >= 1:
            iface.tsresol = opts[9][0]
        if 14 in opts and len(opts[14]) >= 8:
            iface.tsoffset = struct.unpack(e + "q", opts[14][:8])[0]
        self.interfaces.append(iface)

    def _spb(self, buf: bytes, off: int, blen: int) -> tuple[int, int, int, int]:
        (wirelen,) = struct.unpack_from(self.endian + "I", buf, off + 8)
        room = blen - 16
        caplen = min(wirelen, room)
        if self.interfaces and self.interfaces[0].snaplen:
            caplen = min(caplen, self.interfaces[0].snaplen)
        return off, off + 12, max(caplen, 0), wirelen

    # -- vectorised part -------------------------------------------------------------------------
    def _assemble(self, arr, runs, spbs, skipped, damage) -> RecordBatch:
        parts = []
        for e, ifaces, offs in runs:
            if not offs:
                continue
            o = np.fromiter(offs, np.int64, len(offs))
            is_spb = o < 0
            pk = o[~is_spb]
            if len(pk):
                parts.append(self._packet_blocks(arr, pk, e, ifaces, skipped, damage))
            if is_spb.any():
                idx = -o[is_spb] - 1
                sp = np.asarray([spbs[i] for i in idx.tolist()], np.int64).reshape(-1, 4)
                lt = ifaces[0].linktype if ifaces else -1
                if not ifaces:
                    add_count(skipped, "no_interface", len(sp))
                    damage.append("simple packet block before any interface description: dropped")
                    continue
                self.spb_records += len(sp)
                spb_head = np.zeros((len(sp), 28 + HEAD_BYTES), np.uint8)  # same layout as packet blocks
                spb_head[:, 28:] = gather(arr, sp[:, 1], HEAD_BYTES)
                parts.append((sp[:, 0], sp[:, 1], sp[:, 2], sp[:, 3], np.full(len(sp), lt, np.int64),
                              np.zeros(len(sp), np.int64), spb_head, np.ones(len(sp), bool)))
        if not parts:
            return RecordBatch(arr, *(np.zeros(0, np.int64) for _ in range(5)), skipped=skipped, damage=damage)
        if len(parts) == 1:
            block_off, data_off, caplen, wire_len, linktype, ts, head, missing = parts[0]
        else:
            block_off, data_off, caplen, wire_len, linktype, ts, head, missing = (
                np.concatenate(c) for c in zip(*parts))
            order = np.argsort(block_off, kind="stable")
            data_off, caplen, wire_len, linktype, ts, head, missing = (
                a[order] for a in (data_off, caplen, wire_len, linktype, ts, head, missing))
        if missing.any():  # SPBs (no timestamp) and timestamps int64 nanoseconds cannot hold
            ts = fill_missing(ts, missing, self.last_ts)
        if len(ts):
            self.last_ts = int(ts[-1])
        return RecordBatch(arr, data_off, caplen, wire_len, linktype, ts, skipped=skipped, damage=damage,
                           head=head, head_shift=28)

    def _packet_blocks(self, arr, o, e, ifaces, skipped, damage):
        """EPBs and obsolete PBs of one section, all at once."""
        dt = np.dtype({"names": ["type", "len", "ifid", "hi", "lo", "caplen", "wire"], "formats": [e + "u4"] * 7,
                       "offsets": [0, 4, 8, 12, 16, 20, 24], "itemsize": 28 + HEAD_BYTES})
        head = gather(arr, o, 28 + HEAD_BYTES)  # block header and the packet's first bytes at once
        h = head.view(dt).reshape(-1)  # header fields as strided views, no copy
        blen = h["len"].astype(np.int64)
        ifid = h["ifid"].astype(np.int64)
        pb = h["type"] == PB
        if pb.any():  # obsolete Packet Block: 16-bit interface id then 16-bit drop count
            ifid = np.where(pb, (ifid & 0xFFFF) if e == "<" else (ifid >> 16), ifid)
        caplen = h["caplen"].astype(np.int64)
        ok = np.ones(len(o), bool)
        too_long = caplen > blen - 32
        if too_long.any():
            add_count(skipped, "bad_block", int(np.count_nonzero(too_long)))
            damage.append("packet block(s) claiming more captured bytes than the block holds: dropped")
            ok &= ~too_long
        n_if = len(ifaces)
        no_if = ifid >= n_if
        if no_if.any():
            add_count(skipped, "no_interface", int(np.count_nonzero(no_if & ok)))
            damage.append("packet block(s) naming an interface the section never described: dropped")
            ok &= ~no_if
        if not ok.all():
            o, h, ifid, caplen, head = o[ok], h[ok], ifid[ok], caplen[ok], head[ok]
        ticks = (h["hi"].astype(np.uint64) << np.uint64(32)) | h["lo"].astype(np.uint64)
        ts = np.zeros(len(o), np.int64)
        linktype = np.zeros(len(o), np.int64)
        status = np.zeros(len(o), np.uint8)
        for i in np.unique(ifid).tolist():
            sel = ifid == i
            ts[sel], status[sel] = ticks_to_ns(ticks[sel], ifaces[i])
            linktype[sel] = ifaces[i].linktype
        timestamp_notes(status, damage)
        return o, o + 28, caplen, h["wire"].astype(np.int64), linktype, ts, head, status == TS_MISSING
