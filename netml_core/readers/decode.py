"""The vectorised link/IP/TCP/UDP header decoder shared by every reader.

Each layer is decoded for all records of a batch at once, group by group (per link type, per
ethertype, per IP version): the few bytes a layer needs are gathered for every record of the group
into one small 2-D ``uint8`` array (a strided view of the batch buffer indexed by the records'
positions), and fields are read as columns. No Python object is made per packet.

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

import functools

import numpy as np

from ..packets import PacketTable
from .records import HEAD_BYTES, RecordBatch, add_count

OK, UNKNOWN_LINK, NON_IP, TRUNC, FRAG, NOT_L4, BAD_IP = range(7)
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
#: every header of the chain the walk passes (fragment 44 and AH 51 included)
IPV6_EXT_ALL = np.append(IPV6_EXT, [44, 51])
_EXT_SET = frozenset(IPV6_EXT_ALL.tolist())
#: chain headers walked vectorised for the whole batch; the rare longer chains are walked row by row
VECTOR_EXT_ROUNDS = 12

LINK_ETHERNET = (1,)
LINK_RAW = (101, 12, 14)
LINK_NULL, LINK_LOOP = 0, 108
LINK_PPP = (9, 50)
LINK_C_HDLC = 104
LINK_SLL, LINK_SLL2 = 113, 276
LINK_IPV4, LINK_IPV6 = 228, 229
LINK_IEEE802_11, LINK_RADIOTAP, LINK_PPI, LINK_PKTAP, LINK_NFLOG, LINK_JUNIPER_ETHER = 105, 127, 192, 258, 239, 178
LINK_ARCNET_LINUX = 129
#: IP over InfiniBand as libpcap/tcpdump frame it: 40 bytes of addresses, the ethertype, 2 reserved
LINK_IPOIB = 242


def gather(buf: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``(len(offsets), width)`` bytes starting at each offset (zeros past the buffer end).

    The buffer is viewed as overlapping ``V<width>`` items with a stride of one byte, so the
    gather is one memcpy per row rather than ``width`` single-byte copies.
    """
    n = len(offsets)
    if n == 0:
        return np.zeros((0, width), np.uint8)
    if len(buf) >= width and offsets.max() <= len(buf) - width:
        items = np.ndarray(shape=(len(buf) - width + 1,), dtype=f"V{width}", buffer=buf, strides=(1,))
        return items[offsets].view(np.uint8).reshape(n, width)
    start = int(offsets.min())
    tail = np.zeros(len(buf) - start + width, np.uint8)
    tail[: len(buf) - start] = buf[start:]
    return gather(tail, offsets - start, width)


def _be(cols: np.ndarray) -> np.ndarray:
    """Big-endian unsigned integer from a ``(k, 2|4)`` byte array, as int64."""
    width = cols.shape[1]
    return np.ascontiguousarray(cols).view(f">u{width}").reshape(-1).astype(np.int64)


class _Decoder:
    """State of one batch: per record, where the current layer starts and why it was dropped."""

    def __init__(self, buf: np.ndarray, base: np.ndarray, caplen: np.ndarray, linktype: np.ndarray) -> None:
        n = len(base)
        self.buf = buf
        self.base = base
        self.cap = caplen
        self.lt = linktype
        self.why = np.zeros(n, np.uint8)
        self.off = np.zeros(n, np.int64)  # offset of the current layer inside the packet
        self.et = np.zeros(n, np.int64)  # ethertype-like protocol of what starts at ``off``
        self.ipv = np.zeros(n, np.uint8)
        self.proto = np.zeros(n, np.uint8)
        self.ttl = np.zeros(n, np.uint8)
        self.src = np.zeros((n, 2), np.uint64)
        self.dst = np.zeros((n, 2), np.uint64)
        self.sport = np.zeros(n, np.uint16)
        self.dport = np.zeros(n, np.uint16)
        self.flags = np.zeros(n, np.uint8)

    # -- bounded reads ---------------------------------------------------------------------------
    def take(self, idx: np.ndarray, rel, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``idx`` that captured ``width`` bytes at packet offset ``rel``, and those bytes.

        The others are dropped as ``truncated``: parsing never reads past the captured length.
        """
        rel = np.broadcast_to(np.asarray(rel, np.int64), idx.shape)
        short = rel + width > self.cap[idx]
        if short.any():
            self.why[idx[short]] = TRUNC
            idx, rel = idx[~short], rel[~short]
        return idx, gather(self.buf, self.base[idx] + rel, width)

    def active(self, mask=None) -> np.ndarray:
        ok = self.why == OK
        return np.flatnonzero(ok if mask is None else ok & mask)

    # -- layers ----------------------------------------------------------------------------------
    def run(self) -> "_Decoder":
        self.link()
        self.ether_walk()
        self.ipv4()
        self.ipv6()
        self.transport()
        return self

    def link(self) -> None:
        lt = self.lt
        values = np.unique(lt).tolist()
        for value in values:
            idx = np.flatnonzero(lt == value) if len(values) > 1 else np.arange(len(lt))
            self._dispatch(idx, value)

    def _dispatch(self, idx, value: int, depth: int = 0) -> None:
        """Link layer ``value`` starting at ``self.off`` of each row of ``idx``."""
        if value in LINK_ETHERNET:
            self._fixed(idx, 14, 12)
        elif value == LINK_SLL:
            self._fixed(idx, 16, 14)
        elif value == LINK_SLL2:
            self._fixed(idx, 20, 0)
        elif value == LINK_C_HDLC:
            self._fixed(idx, 4, 2)
        elif value == LINK_IPOIB:
            self._fixed(idx, 44, 40)
        elif value in LINK_RAW:
            self._by_version(idx)
        elif value == LINK_IPV4 or value == LINK_IPV6:
            self.et[idx] = ETH_IPV4 if value == LINK_IPV4 else ETH_IPV6
        elif value == LINK_NULL or value == LINK_LOOP:
            self._loopback(idx, big_endian=value == LINK_LOOP)
        elif value in LINK_PPP:
            self._ppp(idx)
        elif value == LINK_IEEE802_11:
            self._ieee80211(idx)
        elif value == LINK_RADIOTAP:
            self._radiotap(idx)
        elif value == LINK_NFLOG:
            self._nflog(idx)
        elif value == LINK_JUNIPER_ETHER:
            self._juniper_ether(idx)
        elif value == LINK_ARCNET_LINUX:
            self._arcnet(idx)
        elif value in (LINK_PPI, LINK_PKTAP) and depth < 2:
            self._pseudo_header(idx, value, depth)
        else:
            self.why[idx] = UNKNOWN_LINK

    def _fixed(self, idx, hdr_len: int, et_pos: int) -> None:
        idx, g = self.take(idx, self.off[idx], hdr_len)
        self.et[idx] = _be(g[:, et_pos : et_pos + 2])
        self.off[idx] += hdr_len

    def _by_version(self, idx) -> None:
        """Raw IP: the version nibble says which IP it is."""
        idx, g = self.take(idx, self.off[idx], 1)
        nib = g[:, 0] >> 4
        self.et[idx] = np.where(nib == 4, ETH_IPV4, np.where(nib == 6, ETH_IPV6, -1))
        self.why[idx[(nib != 4) & (nib != 6)]] = BAD_IP

    def _loopback(self, idx, big_endian: bool) -> None:
        idx, g = self.take(idx, self.off[idx], 4)
        h = g.astype(np.int64)
        le = h[:, 0] | (h[:, 1] << 8) | (h[:, 2] << 16) | (h[:, 3] << 24)
        be = (h[:, 0] << 24) | (h[:, 1] << 16) | (h[:, 2] << 8) | h[:, 3]
        # DLT_NULL is in the capturing host's byte order: the small reading is the right one
        af = be if big_endian else np.where(le <= 0xFFFF, le, be)
        v6 = np.isin(af, AF_INET6)
        v4 = af == AF_INET
        self.off[idx] += 4
        self.et[idx] = np.where(v4, ETH_IPV4, np.where(v6, ETH_IPV6, -1))
        self.why[idx[~(v4 | v6)]] = NON_IP

    def _ppp(self, idx) -> None:
        """PPP (with or without FF 03 address/control, with protocol-field compression) or Cisco HDLC."""
        idx, g = self.take(idx, self.off[idx], 2)
        b0, b1 = g[:, 0], g[:, 1]
        hdlc = ((b0 == 0x0F) | (b0 == 0x8F)) & (b1 == 0x00)
        self._fixed(idx[hdlc], 4, 2)  # Cisco HDLC: address, control, then an ethertype
        rest = idx[~hdlc]
        self.off[rest] += np.where((b0[~hdlc] == 0xFF) & (b1[~hdlc] == 0x03), 2, 0)
        rest, g = self.take(rest, self.off[rest], 1)
        short = (g[:, 0] & 1) == 1  # protocol-field compression: one odd byte
        s_rows = rest[short]
        self.off[s_rows] += 1
        self._ppp_proto(s_rows, g[short, 0].astype(np.int64))
        l_rows, g2 = self.take(rest[~short], self.off[rest[~short]], 2)
        self.off[l_rows] += 2
        self._ppp_proto(l_rows, _be(g2))

    def _ieee80211(self, idx) -> None:
        """802.11 data frames with an LLC/SNAP header; management, control, protected and null
        frames carry no IP that can be read."""
        idx, g = self.take(idx, self.off[idx], 2)
        fc0, fc1 = g[:, 0].astype(np.int64), g[:, 1].astype(np.int64)
        subtype = fc0 >> 4
        data = (((fc0 >> 2) & 3) == 2) & ((subtype & 4) == 0) & ((fc1 & 0x40) == 0)
        self.why[idx[~data]] = NON_IP
        idx, fc1, subtype = idx[data], fc1[data], subtype[data]
        qos = (subtype & 8) != 0
        hlen = 24 + np.where((fc1 & 3) == 3, 6, 0) + np.where(qos, 2, 0) + np.where(qos & ((fc1 & 0x80) != 0), 4, 0)
        self.off[idx] += hlen
        idx, g = self.take(idx, self.off[idx], 8)
        snap = (g[:, 0] == 0xAA) & (g[:, 1] == 0xAA) & (g[:, 2] == 3)
        self.why[idx[~snap]] = NON_IP
        idx, g = idx[snap], g[snap]
        self.et[idx] = _be(g[:, 6:8])
        self.off[idx] += 8

    def _radiotap(self, idx) -> None:
        idx, g = self.take(idx, self.off[idx], 4)
        self.off[idx] += g[:, 2].astype(np.int64) | (g[:, 3].astype(np.int64) << 8)
        self._ieee80211(idx)

    def _pseudo_header(self, idx, value: int, depth: int) -> None:
        """PPI (length at 2, little endian u16) and PKTAP (length at 0, u32): inner DLT at 4 (u32 LE)."""
        idx, g = self.take(idx, self.off[idx], 8)
        h = g.astype(np.int64)
        if value == LINK_PPI:
            hlen = h[:, 2] | (h[:, 3] << 8)
        else:
            hlen = h[:, 0] | (h[:, 1] << 8) | (h[:, 2] << 16) | (h[:, 3] << 24)
        inner = h[:, 4] | (h[:, 5] << 8) | (h[:, 6] << 16) | (h[:, 7] << 24)
        self.off[idx] += hlen
        for v in np.unique(inner).tolist():
            self._dispatch(idx[inner == v], int(v), depth + 1)

    def _nflog(self, idx) -> None:
        """Linux NFLOG: family byte, then TLVs (host-order length and type); type 9 is the packet."""
        idx, g = self.take(idx, self.off[idx], 4)
        family = g[:, 0].astype(np.int64)
        et = np.where(family == 2, ETH_IPV4, np.where(family == 10, ETH_IPV6, -1))
        self.why[idx[et < 0]] = NON_IP
        idx, et = idx[et >= 0], et[et >= 0]
        self.et[idx] = et
        self.off[idx] += 4
        pending = idx
        for _ in range(32):
            if not len(pending):
                return
            pending, g = self.take(pending, self.off[pending], 4)
            h = g.astype(np.int64)
            tlen = h[:, 0] | (h[:, 1] << 8)
            ttype = h[:, 2] | (h[:, 3] << 8)
            payload = ttype == 9
            self.off[pending[payload]] += 4
            bad = ~payload & (tlen < 4)
            self.why[pending[bad]] = NON_IP
            move = ~payload & ~bad
            self.off[pending[move]] += (tlen[move] + 3) & ~3
            pending = pending[move]
        self.why[pending] = NON_IP

    def _arcnet(self, idx) -> None:
        """Linux ARCNET: source, destination, 2-byte offset, then an RFC 1201 header (protocol id,
        split flag, sequence number; 4 more bytes after an exception flag 0xFF). A split packet's
        later pieces (even non-zero split flag) carry no IP header."""
        idx, g = self.take(idx, self.off[idx], 6)
        proto, split = g[:, 4], g[:, 5]
        et = np.where(proto == 0xD4, ETH_IPV4, np.where(proto == 0xC4, ETH_IPV6, -1))
        self.why[idx[et < 0]] = NON_IP
        later = (et >= 0) & (split != 0) & (split != 0xFF) & ((split & 1) == 0)
        self.why[idx[later]] = FRAG
        ok = (et >= 0) & ~later
        idx = idx[ok]
        self.et[idx] = et[ok]
        self.off[idx] += np.where(split[ok] == 0xFF, 12, 8)

    def _juniper_ether(self, idx) -> None:
        """Juniper pseudo-header: magic "MGC", flags; with the extension flag a 16-bit length of TLVs."""
        idx, g = self.take(idx, self.off[idx], 4)
        magic = (g[:, 0] == 0x4D) & (g[:, 1] == 0x47) & (g[:, 2] == 0x43)
        self.why[idx[~magic]] = NON_IP
        idx, flags = idx[magic], g[magic, 3]
        ext = (flags & 0x80) != 0
        e_rows, g2 = self.take(idx[ext], self.off[idx[ext]] + 4, 2)
        self.off[e_rows] += 6 + _be(g2)
        self.off[idx[~ext]] += 4
        ok = self.why[idx] == OK
        self._fixed(idx[ok], 14, 12)

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
                i, g = self.take(idx[vlan], off[idx[vlan]], 4)
                self.et[i] = _be(g[:, 2:4])
                off[i] += 4
            if pppoe.any():
                i, g = self.take(idx[pppoe], off[idx[pppoe]], 8)
                off[i] += 8
                self._ppp_proto(i, _be(g[:, 6:8]))
            if mpls.any():
                i, g = self.take(idx[mpls], off[idx[mpls]], 4)
                bottom = (g[:, 2] & 1) == 1
                off[i] += 4
                b, g1 = self.take(i[bottom], off[i[bottom]], 1)
                nib = g1[:, 0] >> 4
                self.et[b] = np.where(nib == 4, ETH_IPV4, np.where(nib == 6, ETH_IPV6, -1))
                self.why[b[(nib != 4) & (nib != 6)]] = NON_IP  # pseudowire (control word 0) etc.
            if llc.any():
                i, g = self.take(idx[llc], off[idx[llc]], 8)
                snap = (g[:, 0] == 0xAA) & (g[:, 1] == 0xAA) & (g[:, 2] == 3)
                s = i[snap]
                self.et[s] = _be(g[snap, 6:8])
                off[s] += 8
                self.why[i[~snap]] = NON_IP
        idx = self.active()
        et = self.et[idx]
        self.why[idx[(et != ETH_IPV4) & (et != ETH_IPV6)]] = NON_IP

    def ipv4(self) -> None:
        idx = self.active(self.et == ETH_IPV4)
        idx, g = self.take(idx, self.off[idx], 20)
        ihl = (g[:, 0] & 15).astype(np.int64) * 4
        total = _be(g[:, 2:4])
        bad = ((g[:, 0] >> 4) != 4) | (ihl < 20) | ((total != 0) & (total < ihl))
        frag = (_be(g[:, 6:8]) & 0x1FFF) != 0
        self.why[idx[bad]] = BAD_IP
        self.why[idx[frag & ~bad]] = FRAG
        keep = ~(bad | frag)
        if not keep.all():
            idx, g, ihl = idx[keep], g[keep], ihl[keep]
        l4 = self.off[idx] + ihl
        short = l4 > self.cap[idx]
        if short.any():  # options cut by the snapshot length
            self.why[idx[short]] = TRUNC
            idx, g, l4 = idx[~short], g[~short], l4[~short]
        self.ipv[idx] = 4
        self.proto[idx] = g[:, 9]
        self.ttl[idx] = g[:, 8]
        mapped = np.uint64(0xFFFF << 32)
        self.src[idx, 1] = _be(g[:, 12:16]).astype(np.uint64) | mapped
        self.dst[idx, 1] = _be(g[:, 16:20]).astype(np.uint64) | mapped
        self.off[idx] = l4

    def ipv6(self) -> None:
        idx = self.active(self.et == ETH_IPV6)
        idx, g = self.take(idx, self.off[idx], 40)
        bad = (g[:, 0] >> 4) != 6
        self.why[idx[bad]] = BAD_IP
        if bad.any():
            idx, g = idx[~bad], g[~bad]
        self.ipv[idx] = 6
        self.ttl[idx] = g[:, 7]
        self.src[idx] = np.ascontiguousarray(g[:, 8:24]).view(">u8").astype(np.uint64)
        self.dst[idx] = np.ascontiguousarray(g[:, 24:40]).view(">u8").astype(np.uint64)
        self.proto[idx] = g[:, 6]
        self.off[idx] += 40
        for _ in range(VECTOR_EXT_ROUNDS):  # extension header chain, one header per round
            idx = self.active(self.ipv == 6)
            nh = self.proto[idx].astype(np.int64)
            ext = np.isin(nh, IPV6_EXT) | (nh == 44) | (nh == 51)
            if not ext.any():
                return
            idx, nh = idx[ext], nh[ext]
            before = idx
            idx, g = self.take(idx, self.off[idx], 8)
            nh = nh[np.isin(before, idx)]
            frag = nh == 44
            later = frag & ((_be(g[:, 2:4]) >> 3) != 0)
            self.why[idx[later]] = FRAG
            hdr_len = g[:, 1].astype(np.int64)
            hlen = np.where(frag, 8, np.where(nh == 51, (hdr_len + 2) * 4, (hdr_len + 1) * 8))
            self.proto[idx] = g[:, 0]
            self.off[idx] += hlen
        idx = self.active(self.ipv == 6)
        for i in idx[np.isin(self.proto[idx], IPV6_EXT_ALL)].tolist():  # longer chains: row by row
            self._ipv6_chain(i)

    def _ipv6_chain(self, i: int) -> None:
        """Walk the rest of one packet's extension header chain to its payload, within its caplen
        (a chain of 100 headers is legal); linear in the captured bytes."""
        start = int(self.base[i] + self.off[i])
        data = self.buf[start:int(self.base[i] + self.cap[i])].tobytes()
        nh, pos = int(self.proto[i]), 0
        while nh in _EXT_SET:
            if pos + 8 > len(data):
                self.why[i] = TRUNC
                return
            if nh == 44:
                if ((data[pos + 2] << 8) | data[pos + 3]) >> 3:  # a later fragment: ports unknown
                    self.why[i] = FRAG
                    return
                hlen = 8
            elif nh == 51:
                hlen = (data[pos + 1] + 2) * 4
            else:
                hlen = (data[pos + 1] + 1) * 8
            nh, pos = data[pos], pos + hlen
        self.proto[i] = nh
        self.off[i] += pos

    def transport(self) -> None:
        idx = self.active()
        proto = self.proto[idx]
        l4 = (proto == 6) | (proto == 17)
        self.why[idx[~l4]] = NOT_L4
        idx = idx[l4]
        idx, g = self.take(idx, self.off[idx], 4)
        self.sport[idx] = _be(g[:, 0:2])
        self.dport[idx] = _be(g[:, 2:4])
        t = idx[self.proto[idx] == 6]
        # a TCP header cut after the ports keeps the packet; its flags only if captured
        t = t[self.off[t] + 14 <= self.cap[t]]
        self.flags[t] = gather(self.buf, self.base[t] + self.off[t] + 13, 1)[:, 0]


#: the fields the fast path reads, at their offsets in an Ethernet + IPv4 (IHL 5) + TCP/UDP packet
_FAST_FIELDS = [("et", ">u2", 12), ("vihl", "u1", 14), ("total", ">u2", 16), ("frag", ">u2", 20),
                ("ttl", "u1", 22), ("proto", "u1", 23), ("src", ">u4", 26), ("dst", ">u4", 30),
                ("sport", ">u2", 34), ("dport", ">u2", 36), ("flags", "u1", 47)]


def _fast_path(head: np.ndarray, shift: int, caplen: np.ndarray, linktype: np.ndarray):
    """Rows laid out as Ethernet + IPv4 without options + TCP/UDP, decoded straight from ``head``.

    This is most traffic; the result is exactly what ``_Decoder`` gives for such rows, read through
    a structured view of ``head`` (no copies) instead of a gather per layer. Returns (mask, columns).
    """
    dt = np.dtype({"names": [f[0] for f in _FAST_FIELDS], "formats": [f[1] for f in _FAST_FIELDS],
                   "offsets": [f[2] + shift for f in _FAST_FIELDS], "itemsize": head.shape[1]})
    r = np.ascontiguousarray(head).view(dt).reshape(-1)
    proto = r["proto"]
    total = r["total"]
    fast = (
        (linktype == 1) & (r["et"] == 0x0800) & (r["vihl"] == 0x45) & (caplen >= 38)
        & ((total == 0) | (total >= 20)) & ((r["frag"] & 0x1FFF) == 0) & ((proto == 6) | (proto == 17))
    )
    n = len(r)
    mapped = np.uint64(0xFFFF << 32)
    src = np.zeros((n, 2), np.uint64)
    dst = np.zeros((n, 2), np.uint64)
    src[:, 1] = r["src"]
    src[:, 1] |= mapped
    dst[:, 1] = r["dst"]
    dst[:, 1] |= mapped
    cols = {
        "ipv": np.full(n, 4, np.uint8),
        "proto": proto.astype(np.uint8),
        "ttl": r["ttl"].astype(np.uint8),
        "src": src,
        "dst": dst,
        "sport": r["sport"].astype(np.uint16),
        "dport": r["dport"].astype(np.uint16),
        "flags": np.where((proto == 6) & (caplen >= 48), r["flags"], 0).astype(np.uint8),
    }
    return fast, cols


@functools.lru_cache(maxsize=256)
def _empty_record_reason(linktype: int) -> int:
    """Why a record of 0 captured bytes and link type ``linktype`` is skipped (decoded once)."""
    d = _Decoder(np.zeros(HEAD_BYTES, np.uint8), np.zeros(1, np.int64), np.zeros(1, np.int64),
                 np.full(1, linktype, np.int64)).run()
    return int(d.why[0])


def known_linktype(linktype: int) -> bool:
    """Whether the decoder reads this link type's header (else its records are ``unknown_linktype``)."""
    return _empty_record_reason(int(linktype)) != UNKNOWN_LINK


def decode(batch: RecordBatch) -> PacketTable:
    """Decode every record of ``batch``; returns the TCP/UDP packets and counts the rest."""
    n = len(batch)
    head, shift = batch.head, batch.head_shift
    if head is None or len(head) != n or head.shape[1] < shift + HEAD_BYTES:
        head, shift = gather(batch.buf, batch.data_off, HEAD_BYTES), 0
    fast, cols = _fast_path(head, shift, batch.caplen, batch.linktype)
    why = np.zeros(n, np.uint8)
    slow = np.flatnonzero(~fast)
    if len(slow):
        d = _Decoder(batch.buf, batch.data_off[slow], batch.caplen[slow], batch.linktype[slow]).run()
        why[slow] = d.why
        for name in cols:
            cols[name][slow] = getattr(d, name)
    keep = np.flatnonzero(why == OK) if len(slow) else slice(None)
    skipped = dict(batch.skipped)
    counts = np.bincount(why, minlength=len(REASONS) + 1)
    for code, name in REASONS.items():
        add_count(skipped, name, int(counts[code]))
    lt_values, lt_counts = np.unique(batch.linktype, return_counts=True)
    link_types = {int(k): int(v) for k, v in zip(lt_values.tolist(), lt_counts.tolist())}
    for lt, count in batch.empty_records.items():  # records of no byte, counted as decoding each would
        link_types[lt] = link_types.get(lt, 0) + count
        add_count(skipped, REASONS[_empty_record_reason(lt)], count)
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
        link_types=link_types,
        records=n + sum(batch.empty_records.values()),
        skipped=skipped,
        damage=list(dict.fromkeys(batch.damage)),
    )
