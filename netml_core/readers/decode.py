"""The vectorised link/IP/TCP/UDP header decoder shared by every reader.

The first bytes of every record of a batch (``WIDTH``; more for the few records whose headers go
deeper) are gathered into one 2-D ``uint8`` array, and each layer is decoded for all records at
once with fancy indexing, group by group (per link type, per ethertype, per IP version). No Python
object is made per packet.

Every read is checked against the record's captured length: parsing stops there, and a record whose
headers end before the ports is counted as ``truncated``, never guessed. Records that give no
5-tuple are counted in ``PacketTable.skipped`` under one reason each:

``unknown_linktype``  link type this decoder does not know
``non_ip``            ARP, LLDP, other ethertypes, non-IP PPP/loopback families
``bad_ip_header``     IP version nibble disagreeing with the link layer, IHL < 5, total length < IHL
``fragment``          IPv4/IPv6 fragment other than the first: its ports are unknown
``not_tcp_udp``       ICMP, SCTP, GRE, ESP, tunnels (not decapsulated) ...
``truncated``         captured bytes end before the TCP/UDP ports
"""

from __future__ import annotations

import numpy as np

from ..packets import PacketTable
from .records import RecordBatch, add_count

#: bytes gathered per record in the first pass; deeper headers get a second pass
WIDTH = 96

OK, UNKNOWN_LINK, NON_IP, TRUNC, FRAG, NOT_L4, BAD_IP, MORE = range(8)
REASONS = {
    UNKNOWN_LINK: "unknown_linktype",
    NON_IP: "non_ip",
    TRUNC: "truncated",
    FRAG: "fragment",
    NOT_L4: "not_tcp_udp",
    BAD_IP: "bad_ip_header",
}

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
VLAN_TPIDS = np.array([0x8100, 0x88A8, 0x9100, 0x9200, 0x9300])
MPLS = np.array([0x8847, 0x8848])
PPPOE_SESSION = 0x8864
#: BSD loopback (DLT_NULL / DLT_LOOP) address families: AF_INET and every BSD's AF_INET6
AF_INET = 2
AF_INET6 = np.array([10, 24, 28, 30])  # Linux, NetBSD/OpenBSD/BSDi, FreeBSD/DragonFly, Darwin
#: IPv6 extension headers walked to reach TCP/UDP (fragment = 44 and AH = 51 handled apart)
IPV6_EXT = np.array([0, 43, 60, 135, 139, 140, 253, 254])

LINK_ETHERNET = (1,)
LINK_RAW = (101, 12, 14)
LINK_NULL, LINK_LOOP = 0, 108
LINK_PPP = (9, 50)
LINK_C_HDLC = 104
LINK_SLL, LINK_SLL2 = 113, 276
LINK_IPV4, LINK_IPV6 = 228, 229
KNOWN_LINKTYPES = {1, 101, 12, 14, 0, 108, 9, 50, 104, 113, 276, 228, 229}


def gather(buf: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``(len(offsets), width)`` bytes starting at each offset (zeros past the buffer end)."""
    n = len(offsets)
    if n == 0:
        return np.zeros((0, width), np.uint8)
    if len(buf) >= width and offsets.max() <= len(buf) - width:
        return np.lib.stride_tricks.sliding_window_view(buf, width)[offsets]
    start = int(offsets.min())
    tail = np.zeros(len(buf) - start + width, np.uint8)
    tail[: len(buf) - start] = buf[start:]
    return np.lib.stride_tricks.sliding_window_view(tail, width)[offsets - start]


class _Pass:
    """Decodes a gathered head array; rows that need bytes beyond ``width`` end with ``MORE``."""

    def __init__(self, head: np.ndarray, caplen: np.ndarray, linktype: np.ndarray) -> None:
        n = len(head)
        self.h = head
        self.w = head.shape[1]
        self.cap = caplen
        self.why = np.zeros(n, np.uint8)
        self.off = np.zeros(n, np.int64)  # network-layer offset, then transport-layer offset
        self.et = np.zeros(n, np.int64)  # ethertype-like protocol of what starts at ``off``
        self.ipv = np.zeros(n, np.uint8)
        self.proto = np.zeros(n, np.uint8)
        self.ttl = np.zeros(n, np.uint8)
        self.src = np.zeros((n, 2), np.uint64)
        self.dst = np.zeros((n, 2), np.uint64)
        self.sport = np.zeros(n, np.uint16)
        self.dport = np.zeros(n, np.uint16)
        self.flags = np.zeros(n, np.uint8)
        self.lt = linktype

    # -- bounded reads ---------------------------------------------------------------------------
    def have(self, idx: np.ndarray, end) -> np.ndarray:
        """Rows of ``idx`` whose bytes up to ``end`` are captured and gathered; others get a reason."""
        end = np.broadcast_to(end, idx.shape)
        short = end > self.cap[idx]
        far = ~short & (end > self.w)
        if short.any():
            self.why[idx[short]] = TRUNC
        if far.any():
            self.why[idx[far]] = MORE
        return ~(short | far)

    def u8(self, idx, pos) -> np.ndarray:
        return self.h[idx, pos].astype(np.int64)

    def u16(self, idx, pos) -> np.ndarray:
        h = self.h
        return (h[idx, pos].astype(np.int64) << 8) | h[idx, pos + 1]

    def u32(self, idx, pos) -> np.ndarray:
        return (self.u16(idx, pos) << 16) | self.u16(idx, pos + 2)

    def active(self, mask=None) -> np.ndarray:
        ok = self.why == OK
        return np.flatnonzero(ok if mask is None else ok & mask)

    # -- layers ----------------------------------------------------------------------------------
    def run(self) -> "_Pass":
        self.link()
        self.ether_walk()
        self.ipv4()
        self.ipv6()
        self.transport()
        return self

    def link(self) -> None:
        lt = self.lt
        for value in np.unique(lt).tolist():
            idx = np.flatnonzero(lt == value)
            if value in LINK_ETHERNET:
                self._fixed(idx, 14, 12)
            elif value == LINK_SLL:
                self._fixed(idx, 16, 14)
            elif value == LINK_SLL2:
                self._fixed(idx, 20, 0)
            elif value == LINK_C_HDLC:
                self._fixed(idx, 4, 2)
            elif value in LINK_RAW:
                self._by_version(idx, 0)
            elif value == LINK_IPV4 or value == LINK_IPV6:
                self.off[idx] = 0
                self.et[idx] = ETH_IPV4 if value == LINK_IPV4 else ETH_IPV6
            elif value == LINK_NULL or value == LINK_LOOP:
                self._loopback(idx, big_endian=value == LINK_LOOP)
            elif value in LINK_PPP:
                self._ppp(idx)
            else:
                self.why[idx] = UNKNOWN_LINK

    def _fixed(self, idx, hdr_len: int, et_pos: int) -> None:
        idx = idx[self.have(idx, hdr_len)]
        self.et[idx] = self.u16(idx, et_pos)
        self.off[idx] = hdr_len

    def _by_version(self, idx, pos) -> None:
        """Raw IP: the version nibble says which IP it is."""
        idx = idx[self.have(idx, pos + 1)]
        nib = self.h[idx, pos] >> 4
        self.off[idx] = pos
        self.et[idx] = np.where(nib == 4, ETH_IPV4, np.where(nib == 6, ETH_IPV6, -1))
        self.why[idx[(nib != 4) & (nib != 6)]] = BAD_IP

    def _loopback(self, idx, big_endian: bool) -> None:
        idx = idx[self.have(idx, 4)]
        h = self.h[idx, :4].astype(np.int64)
        le = h[:, 0] | (h[:, 1] << 8) | (h[:, 2] << 16) | (h[:, 3] << 24)
        be = (h[:, 0] << 24) | (h[:, 1] << 16) | (h[:, 2] << 8) | h[:, 3]
        # DLT_NULL is in the capturing host's byte order: the small reading is the right one
        af = be if big_endian else np.where(le <= 0xFFFF, le, be)
        v6 = np.isin(af, AF_INET6)
        v4 = af == AF_INET
        self.off[idx] = 4
        self.et[idx] = np.where(v4, ETH_IPV4, np.where(v6, ETH_IPV6, -1))
        self.why[idx[~(v4 | v6)]] = NON_IP

    def _ppp(self, idx) -> None:
        """PPP (with or without FF 03 address/control, with protocol-field compression) or Cisco HDLC."""
        idx = idx[self.have(idx, 2)]
        b0, b1 = self.u8(idx, 0), self.u8(idx, 1)
        hdlc = ((b0 == 0x0F) | (b0 == 0x8F)) & (b1 == 0x00)
        addr = (b0 == 0xFF) & (b1 == 0x03)
        start = np.where(addr, 2, 0)
        # Cisco HDLC: address, control, then an ethertype
        cisco = idx[hdlc]
        cisco = cisco[self.have(cisco, 4)]
        self.et[cisco] = self.u16(cisco, 2)
        self.off[cisco] = 4
        rest, start = idx[~hdlc], start[~hdlc]
        keep = self.have(rest, start + 1)
        rest, start = rest[keep], start[keep]
        first = self.u8(rest, start)
        short = (first & 1) == 1  # protocol-field compression: one odd byte
        long_rows = rest[~short]
        ok = self.have(long_rows, start[~short] + 2)
        proto = np.zeros(len(rest), np.int64)
        proto[short] = first[short]
        lr, ls = long_rows[ok], start[~short][ok]
        tmp = np.full(len(long_rows), -1, np.int64)
        tmp[ok] = self.u16(lr, ls)
        proto[~short] = tmp
        self.off[rest] = start + np.where(short, 1, 2)
        good = proto >= 0
        self._ppp_proto(rest[good], proto[good])

    def _ppp_proto(self, idx, proto) -> None:
        et = np.where(proto == 0x0021, ETH_IPV4, np.where(proto == 0x0057, ETH_IPV6, -1))
        et = np.where((proto == 0x0281) | (proto == 0x0283), 0x8847, et)
        self.et[idx] = et
        self.why[idx[et < 0]] = NON_IP

    def ether_walk(self) -> None:
        """VLAN/QinQ tags, MPLS label stacks, PPPoE sessions and LLC/SNAP, up to the IP header."""
        for _ in range(16):
            idx = self.active()
            et = self.et[idx]
            vlan = np.isin(et, VLAN_TPIDS)
            mpls = np.isin(et, MPLS)
            pppoe = et == PPPOE_SESSION
            llc = (et >= 0) & (et < 0x0600)
            if not (vlan.any() or mpls.any() or pppoe.any() or llc.any()):
                break
            off = self.off
            if vlan.any():
                i = idx[vlan]
                i = i[self.have(i, off[i] + 4)]
                self.et[i] = self.u16(i, off[i] + 2)
                off[i] += 4
            if pppoe.any():
                i = idx[pppoe]
                i = i[self.have(i, off[i] + 8)]
                proto = self.u16(i, off[i] + 6)
                off[i] += 8
                self._ppp_proto(i, proto)
            if mpls.any():
                i = idx[mpls]
                i = i[self.have(i, off[i] + 4)]
                bottom = (self.u8(i, off[i] + 2) & 1) == 1
                off[i] += 4
                b = i[bottom]
                b = b[self.have(b, off[b] + 1)]
                nib = self.u8(b, off[b]) >> 4
                self.et[b] = np.where(nib == 4, ETH_IPV4, np.where(nib == 6, ETH_IPV6, -1))
                self.why[b[(nib != 4) & (nib != 6)]] = NON_IP  # pseudowire (control word 0) etc.
            if llc.any():
                i = idx[llc]
                i = i[self.have(i, off[i] + 8)]
                snap = (self.u8(i, off[i]) == 0xAA) & (self.u8(i, off[i] + 1) == 0xAA) & (self.u8(i, off[i] + 2) == 3)
                s = i[snap]
                self.et[s] = self.u16(s, off[s] + 6)
                off[s] += 8
                self.why[i[~snap]] = NON_IP
        idx = self.active()
        et = self.et[idx]
        self.why[idx[(et != ETH_IPV4) & (et != ETH_IPV6)]] = NON_IP

    def ipv4(self) -> None:
        idx = self.active(self.et == ETH_IPV4)
        off = self.off[idx]
        keep = self.have(idx, off + 20)
        idx, off = idx[keep], off[keep]
        b0 = self.u8(idx, off)
        ihl = (b0 & 15) * 4
        total = self.u16(idx, off + 2)
        bad = ((b0 >> 4) != 4) | (ihl < 20) | ((total != 0) & (total < ihl))
        self.why[idx[bad]] = BAD_IP
        idx, off, ihl = idx[~bad], off[~bad], ihl[~bad]
        keep = self.have(idx, off + ihl)
        idx, off, ihl = idx[keep], off[keep], ihl[keep]
        frag = (self.u16(idx, off + 6) & 0x1FFF) != 0
        self.why[idx[frag]] = FRAG
        idx, off, ihl = idx[~frag], off[~frag], ihl[~frag]
        self.ipv[idx] = 4
        self.proto[idx] = self.u8(idx, off + 9)
        self.ttl[idx] = self.u8(idx, off + 8)
        self.src[idx, 1] = (np.uint64(0xFFFF) << np.uint64(32)) | self.u32(idx, off + 12).astype(np.uint64)
        self.dst[idx, 1] = (np.uint64(0xFFFF) << np.uint64(32)) | self.u32(idx, off + 16).astype(np.uint64)
        self.off[idx] = off + ihl

    def ipv6(self) -> None:
        idx = self.active(self.et == ETH_IPV6)
        off = self.off[idx]
        keep = self.have(idx, off + 40)
        idx, off = idx[keep], off[keep]
        bad = (self.u8(idx, off) >> 4) != 6
        self.why[idx[bad]] = BAD_IP
        idx, off = idx[~bad], off[~bad]
        self.ipv[idx] = 6
        self.ttl[idx] = self.u8(idx, off + 7)
        cols = off[:, None] + np.arange(16)
        self.src[idx] = self.h[idx[:, None], cols + 8].copy().view(">u8").astype(np.uint64)
        self.dst[idx] = self.h[idx[:, None], cols + 24].copy().view(">u8").astype(np.uint64)
        nh = self.u8(idx, off + 6)
        self.off[idx] = off + 40
        self.proto[idx] = nh
        for _ in range(12):  # extension header chain
            idx = self.active(self.ipv == 6)
            nh = self.proto[idx].astype(np.int64)
            ext = np.isin(nh, IPV6_EXT) | (nh == 44) | (nh == 51)
            if not ext.any():
                break
            idx, nh = idx[ext], nh[ext]
            off = self.off[idx]
            keep = self.have(idx, off + 8)
            idx, nh, off = idx[keep], nh[keep], off[keep]
            frag = nh == 44
            later = frag & ((self.u16(idx, off + 2) >> 3) != 0)
            self.why[idx[later]] = FRAG
            hlen = np.where(frag, 8, np.where(nh == 51, (self.u8(idx, off + 1) + 2) * 4, (self.u8(idx, off + 1) + 1) * 8))
            self.proto[idx] = self.u8(idx, off)
            self.off[idx] = off + hlen

    def transport(self) -> None:
        idx = self.active()
        proto = self.proto[idx]
        l4 = (proto == 6) | (proto == 17)
        self.why[idx[~l4]] = NOT_L4
        idx = idx[l4]
        off = self.off[idx]
        keep = self.have(idx, off + 4)
        idx, off = idx[keep], off[keep]
        self.sport[idx] = self.u16(idx, off)
        self.dport[idx] = self.u16(idx, off + 2)
        tcp = self.proto[idx] == 6
        t, toff = idx[tcp], off[tcp]
        captured = toff + 14 <= self.cap[t]  # a cut TCP header keeps its ports; flags only if captured
        far = captured & (toff + 14 > self.w)
        self.why[t[far]] = MORE
        ok = captured & ~far
        self.flags[t[ok]] = self.u8(t[ok], toff[ok] + 13)


def decode(batch: RecordBatch) -> PacketTable:
    """Decode every record of ``batch``; returns the TCP/UDP packets and counts the rest."""
    n = len(batch)
    caplen = batch.caplen
    cols = {
        "ipv": np.zeros(n, np.uint8), "proto": np.zeros(n, np.uint8), "ttl": np.zeros(n, np.uint8),
        "src": np.zeros((n, 2), np.uint64), "dst": np.zeros((n, 2), np.uint64),
        "sport": np.zeros(n, np.uint16), "dport": np.zeros(n, np.uint16), "flags": np.zeros(n, np.uint8),
    }
    why = np.zeros(n, np.uint8)
    rows = np.arange(n)
    width = WIDTH
    while len(rows):
        head = gather(batch.buf, batch.data_off[rows], width)
        p = _Pass(head, caplen[rows], batch.linktype[rows]).run()
        for name, attr in (("ipv", "ipv"), ("proto", "proto"), ("ttl", "ttl"), ("src", "src"), ("dst", "dst"),
                           ("sport", "sport"), ("dport", "dport"), ("flags", "flags")):
            cols[name][rows] = getattr(p, attr)
        why[rows] = p.why
        more = p.why == MORE
        if not more.any():
            break
        rows = rows[more]
        width = int(caplen[rows].max()) if width >= 1024 else 1024
    keep = why == OK
    skipped = dict(batch.skipped)
    counts = np.bincount(why, minlength=8)
    for code, name in REASONS.items():
        add_count(skipped, name, int(counts[code]))
    lt_values, lt_counts = np.unique(batch.linktype, return_counts=True)
    return PacketTable(
        ts_ns=batch.ts_ns[keep],
        wire_len=np.minimum(batch.wire_len[keep], 0xFFFFFFFF),
        ip_version=cols["ipv"][keep],
        proto=cols["proto"][keep],
        src=cols["src"][keep],
        dst=cols["dst"][keep],
        sport=cols["sport"][keep],
        dport=cols["dport"][keep],
        tcp_flags=cols["flags"][keep],
        ttl=cols["ttl"][keep],
        link_types={int(k): int(v) for k, v in zip(lt_values.tolist(), lt_counts.tolist())},
        records=n,
        skipped=skipped,
        damage=list(batch.damage),
    )
