"""Readers on captures built here byte by byte: every format, link type and kind of damage the
issue names, with the decoded fields asserted. Every reader runs on every file (dpkt has no SPB)."""

from __future__ import annotations

import gzip
import io
import logging
import struct
import subprocess
import sys

import numpy as np
import pytest

from netml_core.errors import CaptureError
from netml_core.packets import PacketTable, ip_to_words
from netml_core.readers.native import NativeReader
from netml_core.registry import get_registry

READERS = ["native", "dpkt", "scapy"]


def make_reader(name, **params):
    return get_registry().create("reader", name, params)


# -- packet builders ---------------------------------------------------------------------------
def ipv4(proto, payload, src="10.0.0.1", dst="10.0.0.2", ttl=64, frag=0, mf=False, ihl=5, version=4, total=None):
    opts = b"\x01" * (ihl * 4 - 20)
    total = 20 + len(opts) + len(payload) if total is None else total
    flags_frag = (0x2000 if mf else 0) | (frag // 8)
    return struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, total, 1, flags_frag, ttl, proto, 0,
                       bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))) + opts + payload


def ipv6(nh, payload, src="2001:db8::1", dst="2001:db8::2", hlim=55):
    import ipaddress

    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hlim,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + payload


def tcp(sport=1234, dport=80, flags=0x12, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, flags, 1024, 0, 0) + data


def udp(sport=5353, dport=53, data=b"abcd"):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def eth(payload, ethertype=0x0800, tags=()):
    hdr = b"\x02" * 6 + b"\x04" * 6
    for tpid, vid in tags:
        hdr += struct.pack("!HH", tpid, vid)
    return hdr + struct.pack("!H", ethertype) + payload


# -- file writers ------------------------------------------------------------------------------
def pcap_bytes(records, linktype=1, endian="<", nano=False, version=(2, 4), snaplen=65535):
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, *version, 0, 0, snaplen, linktype)]
    for rec in records:
        data, ts = rec[0], rec[1]
        wire = rec[2] if len(rec) > 2 else len(data)
        sec, frac = (ts // 10**9, ts % 10**9) if nano else (ts // 10**9, (ts % 10**9) // 1000)
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), wire) + data)
    return b"".join(out)


def block(btype, body, e="<"):
    pad = (-len(body)) % 4
    blen = 12 + len(body) + pad
    return struct.pack(e + "II", btype, blen) + body + b"\0" * pad + struct.pack(e + "I", blen)


def opt(code, value, e="<"):
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def shb(e="<", major=1, options=b""):
    return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, major, 0, -1) + options, e)


def idb(linktype, e="<", tsresol=None, tsoffset=None, snaplen=0):
    opts = b""
    if tsresol is not None:
        opts += opt(9, bytes([tsresol]), e)
    if tsoffset is not None:
        opts += opt(14, struct.pack(e + "q", tsoffset), e)
    if opts:
        opts += opt(0, b"", e)
    return block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, e)


def epb(iface, ticks, data, e="<", wire=None):
    body = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data) if wire is None else wire) + data
    return block(6, body, e)


def spb(data, e="<"):
    return block(3, struct.pack(e + "I", len(data)) + data, e)


T0 = 1_500_000_000_123_456_000  # ns


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- classic pcap ------------------------------------------------------------------------------
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_byte_orders_and_resolutions(tmp_path, reader, endian, nano):
    ts = [T0, T0 + 1_000, T0 + 2_000_000_789]
    recs = [(eth(ipv4(6, tcp(1111, 80, 0x02)), ), ts[0], 1514),
            (eth(ipv4(17, udp(5353, 53), src="192.168.1.9")), ts[1]),
            (eth(ipv6(6, tcp(443, 40000, 0x11)), ethertype=0x86DD), ts[2])]
    p = write(tmp_path, "x.cap", pcap_bytes(recs, endian=endian, nano=nano))
    t = make_reader(reader).read(p)
    assert t.format == ("pcap-ns" if nano else "pcap")
    assert t.records == 3 and len(t) == 3
    expect_ns = [x if nano else x // 1000 * 1000 for x in ts]
    assert t.ts_ns.tolist() == expect_ns
    assert t.wire_len.tolist() == [1514, len(recs[1][0]), len(recs[2][0])]
    assert t.counts() == {"ipv4_tcp": 1, "ipv4_udp": 1, "ipv6_tcp": 1, "ipv6_udp": 0}
    assert t.sport.tolist() == [1111, 5353, 443] and t.dport.tolist() == [80, 53, 40000]
    assert t.tcp_flags.tolist() == [0x02, 0, 0x11]
    assert t.ttl.tolist() == [64, 64, 55]
    assert (t.src == ip_to_words(["10.0.0.1", "192.168.1.9", "2001:db8::1"])).all()
    assert (t.dst == ip_to_words(["10.0.0.2", "10.0.0.2", "2001:db8::2"])).all()
    assert t.link_types == {1: 3}


def test_pcap_ts_float_is_the_correctly_rounded_decimal():
    from fractions import Fraction

    ns = np.array([1499083689815551996, 1499083689_000001000, 1_000_000_000_999_999_999, 17], np.int64)
    t = PacketTable.empty()
    t = PacketTable(**{**{n: np.zeros((4, *getattr(t, n).shape[1:]), getattr(t, n).dtype)
                          for n in ("wire_len", "ip_version", "proto", "src", "dst", "sport", "dport",
                                    "tcp_flags", "ttl")}, "ts_ns": ns})
    assert t.ts.tolist() == [float(Fraction(int(v), 10**9)) for v in ns]


# -- pcapng ------------------------------------------------------------------------------------
def multi_section_pcapng():
    """Section 1 (LE): Ethernet usec + raw IP with 2^-10 s resolution and a 5 s offset.
    Section 2 (BE): NULL loopback with ns resolution; interface ids restart. NRB/ISB/custom blocks."""
    s1 = (shb("<") + idb(1, "<") + idb(101, "<", tsresol=0x80 | 10, tsoffset=5)
          + block(4, b"\0\0\0\0", "<")  # name resolution block (empty)
          + epb(0, T0 // 1000, eth(ipv4(6, tcp(1, 2))), "<")
          + epb(1, 1024 * 3 + 512, ipv4(17, udp(3, 4)), "<")
          + block(5, struct.pack("<III", 0, 0, 0), "<")  # interface statistics
          + block(0x00000BAD, b"\x00\x00\x7e\xd9" + b"custom", "<"))
    null_v6 = struct.pack(">I", 30) + ipv6(17, udp(7, 8))
    s2 = shb(">") + idb(0, ">", tsresol=9) + epb(0, T0 + 7, null_v6, ">")
    return s1 + s2


@pytest.mark.parametrize("reader", READERS)
def test_pcapng_sections_interfaces_and_resolutions(tmp_path, reader):
    p = write(tmp_path, "multi.bin", multi_section_pcapng())
    t = make_reader(reader).read(p)
    assert t.format.startswith("pcapng")
    assert t.records == 3 and len(t) == 3
    assert t.link_types == {1: 1, 101: 1, 0: 1}
    assert t.ts_ns.tolist() == [T0 // 1000 * 1000, 5 * 10**9 + 3_500_000_000, T0 + 7]
    assert t.counts() == {"ipv4_tcp": 1, "ipv4_udp": 1, "ipv6_tcp": 0, "ipv6_udp": 1}
    assert t.sport.tolist() == [1, 3, 7]


@pytest.mark.parametrize("reader", ["native", "scapy"])
def test_pcapng_simple_packet_blocks_take_previous_timestamp(tmp_path, reader):
    data = (shb() + idb(1, snaplen=0) + spb(eth(ipv4(17, udp(1, 1))))
            + epb(0, 2_000_000, eth(ipv4(17, udp(2, 2)))) + spb(eth(ipv4(17, udp(3, 3)))))
    t = make_reader(reader).read(write(tmp_path, "spb.pcapng", data))
    assert t.format == "pcapng+spb"
    assert t.sport.tolist() == [1, 2, 3]
    # the leading SPB takes the first later timestamp, the trailing one the previous
    assert t.ts_ns.tolist() == [2 * 10**9] * 3


def test_dpkt_reports_simple_packet_blocks_it_cannot_read(tmp_path):
    data = shb() + idb(1) + spb(eth(ipv4(17, udp(1, 1)))) + epb(0, 5, eth(ipv4(17, udp(2, 2))))
    t = make_reader("dpkt").read(write(tmp_path, "spb.pcapng", data))
    assert len(t) == 1 and t.skipped["spb_unsupported"] == 1
    assert any("Simple Packet Block" in d for d in t.damage)


# -- link layers -------------------------------------------------------------------------------
LINK_CASES = {
    "vlan": (1, eth(ipv4(6, tcp(10, 20)), tags=[(0x8100, 5)])),
    "qinq": (1, eth(ipv4(17, udp(10, 20)), tags=[(0x88A8, 5), (0x8100, 7)])),
    "mpls": (1, eth(struct.pack("!I", (16 << 12) | 0x40) + struct.pack("!I", (17 << 12) | 0x140)
                    + ipv4(6, tcp(10, 20)), ethertype=0x8847)),
    "pppoe": (1, eth(struct.pack("!BBHH", 0x11, 0, 1, 0) + struct.pack("!H", 0x0057) + ipv6(17, udp(10, 20)),
                     ethertype=0x8864)),
    "llc_snap": (1, b"\x02" * 12 + struct.pack("!H", 60) + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ipv4(17, udp(10, 20))),
    "sll": (113, struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + ipv4(6, tcp(10, 20))),
    "sll2": (276, struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, b"\x02" * 8) + ipv6(6, tcp(10, 20))),
    "raw101": (101, ipv6(17, udp(10, 20))),
    "raw12": (12, ipv4(17, udp(10, 20))),
    "raw14": (14, ipv4(6, tcp(10, 20))),
    "ipv4_228": (228, ipv4(17, udp(10, 20))),
    "ipv6_229": (229, ipv6(6, tcp(10, 20))),
    "null_le_inet": (0, struct.pack("<I", 2) + ipv4(6, tcp(10, 20))),
    "null_be_inet6_freebsd": (0, struct.pack(">I", 28) + ipv6(17, udp(10, 20))),
    "null_le_inet6_openbsd": (0, struct.pack("<I", 24) + ipv6(6, tcp(10, 20))),
    "loop_inet6_darwin": (108, struct.pack(">I", 30) + ipv6(17, udp(10, 20))),
    "ppp_ff03": (9, b"\xff\x03\x00\x21" + ipv4(6, tcp(10, 20))),
    "ppp_pfc": (9, b"\x21" + ipv4(17, udp(10, 20))),
    "ppp_cisco_hdlc": (9, b"\x0f\x00\x08\x00" + ipv4(6, tcp(10, 20))),
    "c_hdlc": (104, b"\x0f\x00\x86\xdd" + ipv6(17, udp(10, 20))),
    "ipv6_ext_headers": (1, eth(ipv6(0, bytes([43, 0]) + b"\0" * 6 + bytes([60, 1]) + b"\0" * 14
                                     + bytes([44, 0]) + b"\0" * 6 + bytes([6, 0, 0, 1]) + b"\0" * 4 + tcp(10, 20)),
                               ethertype=0x86DD)),
    "radiotap_qos_data": (127, struct.pack("<BBHI", 0, 0, 8, 0) + bytes([0x88, 0x01]) + b"\0" * 22 + b"\0\0"
                          + b"\xaa\xaa\x03\0\0\0\x08\x00" + ipv4(17, udp(10, 20))),
    "ppi_80211_data": (192, struct.pack("<BBHI", 0, 0, 8, 105) + bytes([0x08, 0x02]) + b"\0" * 22
                       + b"\xaa\xaa\x03\0\0\0\x86\xdd" + ipv6(6, tcp(10, 20))),
    "pktap_ethernet": (258, struct.pack("<II", 12, 1) + b"\0" * 4 + eth(ipv4(6, tcp(10, 20)))),
    "nflog_tlvs": (239, bytes([2, 0, 0, 0]) + struct.pack("<HH", 6, 1) + b"\x08\x00\0\0"
                   + struct.pack("<HH", 4 + len(ipv4(17, udp(10, 20))), 9) + ipv4(17, udp(10, 20))),
    "juniper_ether_ext": (178, b"MGC\x80" + struct.pack("!H", 4) + b"\x01\x02\x00\x00" + eth(ipv4(6, tcp(10, 20)))),
    "arcnet_rfc1201": (129, bytes([0xBE, 0x50, 0, 0, 0xD4, 0, 0, 1]) + ipv4(17, udp(10, 20))),
    "ipv4_options": (1, eth(ipv4(17, udp(10, 20), ihl=8))),
    "ipv4_first_fragment": (1, eth(ipv4(6, tcp(10, 20), mf=True))),
}
SKIP_CASES = {
    "arp": (1, eth(b"\0" * 28, ethertype=0x0806), "non_ip"),
    "icmp": (1, eth(ipv4(1, b"\x08\0" + b"\0" * 6)), "not_tcp_udp"),
    "ipv4_later_fragment": (1, eth(ipv4(17, b"x" * 16, frag=1480)), "fragment"),
    "ipv6_later_fragment": (1, eth(ipv6(44, bytes([17, 0]) + struct.pack("!H", 185 << 3) + b"\0" * 4 + b"x" * 8),
                                   ethertype=0x86DD), "fragment"),
    "cut_before_ports": (1, eth(ipv4(6, tcp(10, 20)))[:14 + 20 + 2], "truncated"),
    "bad_version_nibble": (228, ipv4(6, tcp(10, 20), version=6), "bad_ip_header"),
    "ihl_below_5": (1, eth(ipv4(6, tcp(10, 20))[:0] + bytes([0x44]) + ipv4(6, tcp(10, 20))[1:]), "bad_ip_header"),
    "total_below_ihl": (1, eth(ipv4(6, tcp(10, 20), total=11)), "bad_ip_header"),
    "unknown_linktype": (147, b"\0" * 40, "unknown_linktype"),
    "wlan_protected": (105, bytes([0x08, 0x41]) + b"\0" * 22 + b"\0" * 40, "non_ip"),
    "arcnet_later_piece": (129, bytes([0xBE, 0x50, 0, 0, 0xD4, 2, 0, 1]) + b"\0" * 30, "fragment"),
    "pw_control_word": (1, eth(struct.pack("!I", (16 << 12) | 0x140) + b"\0" * 4 + eth(ipv4(6, tcp())),
                               ethertype=0x8847), "non_ip"),
}


@pytest.mark.parametrize("reader", READERS)
def test_link_layers_give_the_5_tuple(tmp_path, reader):
    names = list(LINK_CASES)
    data = shb() + b"".join(idb(lt) for lt, _ in LINK_CASES.values())
    data += b"".join(epb(i, 1000 + i, pkt) for i, (_, pkt) in enumerate(LINK_CASES.values()))
    t = make_reader(reader).read(write(tmp_path, "links.pcapng", data))
    assert t.records == len(names)
    assert len(t) == len(names), t.skipped
    assert t.sport.tolist() == [10] * len(names) and t.dport.tolist() == [20] * len(names)
    v6 = {"pppoe", "sll2", "raw101", "ipv6_229", "null_be_inet6_freebsd", "null_le_inet6_openbsd",
          "loop_inet6_darwin", "c_hdlc", "ipv6_ext_headers", "ppi_80211_data"}
    assert t.ip_version.tolist() == [6 if n in v6 else 4 for n in names]


@pytest.mark.parametrize("reader", READERS)
def test_packets_without_a_5_tuple_are_counted_by_reason(tmp_path, reader):
    data = shb() + b"".join(idb(lt) for lt, _, _ in SKIP_CASES.values())
    data += b"".join(epb(i, 1000 + i, pkt) for i, (_, pkt, _) in enumerate(SKIP_CASES.values()))
    t = make_reader(reader).read(write(tmp_path, "skips.pcapng", data))
    assert len(t) == 0
    expect: dict[str, int] = {}
    for _, _, why in SKIP_CASES.values():
        expect[why] = expect.get(why, 0) + 1
    assert t.skipped == expect


@pytest.mark.parametrize("reader", READERS)
def test_tcp_header_cut_after_ports_keeps_packet_without_flags(tmp_path, reader):
    pkt = eth(ipv4(6, tcp(10, 20, flags=0x18)))
    data = pcap_bytes([(pkt[:14 + 20 + 8], T0, len(pkt)), (pkt, T0)])
    t = make_reader(reader).read(write(tmp_path, "cut.pcap", data))
    assert len(t) == 2 and t.tcp_flags.tolist() == [0, 0x18]
    assert t.wire_len.tolist() == [len(pkt), len(pkt)]  # original length, not caplen


# -- sources -----------------------------------------------------------------------------------
def demo_like_pcap(n=50):
    recs = [(eth(ipv4(17 if i % 3 else 6, udp(i, 53) if i % 3 else tcp(i, 80))), T0 + i * 1000) for i in range(n)]
    return pcap_bytes(recs)


@pytest.mark.parametrize("reader", READERS)
def test_gzip_file_object_and_stdin(tmp_path, reader):
    raw = demo_like_pcap()
    plain = make_reader(reader).read(write(tmp_path, "p.pcap", raw))
    gz = make_reader(reader).read(write(tmp_path, "p.bin", gzip.compress(raw)))
    assert gz.format == "pcap+gzip"
    fobj = make_reader(reader).read(io.BytesIO(raw))
    for other in (gz, fobj):
        assert other.ts_ns.tolist() == plain.ts_ns.tolist() and other.sport.tolist() == plain.sport.tolist()
    code = (f"import sys; from netml_core.registry import get_registry; "
            f"t = get_registry().create('reader', '{reader}').read('-'); print(len(t), t.source)")
    out = subprocess.run([sys.executable, "-c", code], input=raw, capture_output=True, check=True)
    assert out.stdout.decode().split() == ["50", "<stdin>"]


def test_records_straddling_chunks_and_bounded_batches(tmp_path):
    raw = demo_like_pcap(400)
    p = write(tmp_path, "p.pcap", raw)
    whole = NativeReader().read(p)
    small = NativeReader(chunk_mib=1 / 64).read(p)  # 16 KiB chunks: records straddle chunk ends
    assert small.ts_ns.tolist() == whole.ts_ns.tolist()
    batches = list(NativeReader(chunk_mib=1 / 64).iter_batches(p, max_packets=64))
    assert [len(b) for b in batches] == [64] * 6 + [16]
    assert PacketTable.concat(batches).records == 400 == whole.records


@pytest.mark.parametrize("reader", READERS)
def test_not_a_capture_is_one_line_error(tmp_path, reader):
    p = write(tmp_path, "notes.pcap", b"hello, this is text\n")
    with pytest.raises(CaptureError, match=r"notes.pcap: not a pcap or pcapng capture \(starts with 68 65 6c 6c\)"):
        make_reader(reader).read(p)
    with pytest.raises(CaptureError, match="empty file"):
        make_reader(reader).read(write(tmp_path, "empty.pcap", b""))
    with pytest.raises(CaptureError, match="no such file"):
        make_reader(reader).read(tmp_path / "missing.pcap")
    with pytest.raises(CaptureError, match="gzip-compressed"):
        make_reader(reader).read(write(tmp_path, "t.gz", gzip.compress(b"plain text")))


# -- damage ------------------------------------------------------------------------------------
def _read_with_log(reader, path, caplog):
    with caplog.at_level(logging.WARNING, logger="netml.readers"):
        t = make_reader(reader).read(path)
    lines = [r for r in caplog.records if r.name == "netml.readers"]
    return t, lines


@pytest.mark.parametrize("reader", READERS)
def test_record_cut_at_end_keeps_good_packets(tmp_path, reader, caplog):
    raw = demo_like_pcap(10)
    t, lines = _read_with_log(reader, write(tmp_path, "cut.pcap", raw[:-7]), caplog)
    assert len(t) == 9 and t.records == 9
    assert t.skipped["cut_record"] == 1
    assert len(lines) == 1 and "file ends inside a record" in lines[0].getMessage()


@pytest.mark.parametrize("reader", READERS)
def test_absurd_caplen_stops_reading(tmp_path, reader, caplog):
    raw = demo_like_pcap(3)
    bad = raw + struct.pack("<IIII", 1, 0, 200_000_000, 60) + b"\0" * 64
    t, lines = _read_with_log(reader, write(tmp_path, "absurd.pcap", bad), caplog)
    assert len(t) == 3 and t.skipped["absurd_caplen"] == 1
    assert len(lines) == 1 and "200000000 captured bytes" in lines[0].getMessage()


@pytest.mark.parametrize("reader", READERS)
def test_bad_header_versions_read_nothing(tmp_path, reader):
    t = make_reader(reader).read(write(tmp_path, "v1.pcap", pcap_bytes([(eth(ipv4(6, tcp())), T0)], version=(1, 4))))
    assert t.records == 0 and t.damage == ["unsupported pcap version 1.4: no record read"]
    ng = shb(major=2) + idb(1) + epb(0, 5, eth(ipv4(6, tcp())))
    t = make_reader(reader).read(write(tmp_path, "v2.pcapng", ng))
    assert t.records == 0 and len(t.damage) == 1


@pytest.mark.parametrize("reader", READERS)
def test_out_of_range_fraction_is_kept_and_reported(tmp_path, reader):
    pkt = eth(ipv4(6, tcp()))
    raw = pcap_bytes([(pkt, T0)])
    raw += struct.pack("<IIII", 100, 1_500_000, len(pkt), len(pkt)) + pkt
    t = make_reader(reader).read(write(tmp_path, "frac.pcap", raw))
    assert len(t) == 2 and t.ts_ns[1] == 101_500_000_000
    assert any("out of range" in d for d in t.damage)


@pytest.mark.parametrize("reader", READERS)
def test_pcapng_block_damage(tmp_path, reader):
    good = epb(0, 5, eth(ipv4(6, tcp())))
    lying = bytearray(epb(0, 6, eth(ipv4(6, tcp()))))
    struct.pack_into("<I", lying, 20, 5000)  # caplen beyond the block
    data = shb() + idb(1) + good + bytes(lying) + epb(3, 7, eth(ipv4(6, tcp()))) + good
    t = make_reader(reader).read(write(tmp_path, "lying.pcapng", data))
    assert len(t) == 2 and t.skipped["bad_block"] == 1
    if reader != "scapy":  # scapy drops blocks naming unknown interfaces itself, silently
        assert t.skipped["no_interface"] == 1
    cut = make_reader(reader).read(write(tmp_path, "cut.pcapng", shb() + idb(1) + good + good[:-10]))
    assert len(cut) == 1 and cut.skipped["cut_record"] == 1
