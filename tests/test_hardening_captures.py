"""Issue 12, captures: damaged or hostile captures end in packets and one warning, fast.

Every reader (native, dpkt, scapy) runs on every file; they must agree with each other, and with
the exact arithmetic where there is one (``pcapng.tick_ns`` for timestamps).
"""

from __future__ import annotations

import gzip
import logging
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_readers_formats import READERS, epb, eth, idb, ipv4, ipv6, make_reader, shb, tcp, udp

from netml_core.packets import COLUMNS
from netml_core.readers.pcapng import LIMIT_NS, MISSING_NOTE, SEC_NS_NOTE, resolution, tick_ns

T0 = 1_600_000_000_000_000  # microseconds


def read_all(path, **params):
    return {r: make_reader(r, **params.get(r, {})).read(path) for r in READERS}


def same_tables(tables: dict, *, ignore: tuple = ()):
    ref = tables["native"]
    for name, t in tables.items():
        assert t.records == ref.records and t.skipped == ref.skipped, (name, t.records, t.skipped, ref.skipped)
        for col in COLUMNS:
            if col not in ignore:
                assert np.array_equal(getattr(t, col), getattr(ref, col)), (name, col)
    return ref


def pcap_header(linktype=1, snaplen=65535):
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def record(data: bytes, sec=1_600_000_000, usec=0, wire=None):
    return struct.pack("<IIII", sec, usec, len(data), len(data) if wire is None else wire) + data


# -- pcapng timestamps -----------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [10**12, -(10**12), 2**63 - 1, -(2**63), 10**9, -(10**9)])
def test_if_tsoffset_of_any_size_keeps_the_packets(tmp_path, offset):
    """±10^12 and ±2^63 s raised OverflowError (native, dpkt); now the packets are kept, their time
    exact when int64 nanoseconds hold it, else the packet before's, and a note says so."""
    pkts = [epb(0, T0 + i, eth(ipv4(17, udp(1000 + i, 53)))) for i in range(3)]
    path = tmp_path / "off.pcapng"
    path.write_bytes(shb() + idb(1, tsoffset=offset) + b"".join(pkts))
    t = same_tables(read_all(path))
    assert t.records == len(t) == 3
    want = [tick_ns(T0 + i, 10**6, offset) for i in range(3)]
    if want[0][1] == 0:
        assert t.ts_ns.tolist() == [w[0] for w in want] and not t.damage
    else:
        assert MISSING_NOTE in t.damage


def test_seconds_and_nanoseconds_in_the_two_words_are_read_so(tmp_path):
    """A writer put seconds in the high word and nanoseconds in the low one (as in the corpus's
    nfstream__dhcp_little_endian.pcapng): as microsecond ticks that is the year 151,000."""
    ticks = [(1102274184 << 32) | 317453000, (1102274184 << 32) | 387798000]
    path = tmp_path / "secns.pcapng"
    path.write_bytes(shb() + idb(1) + b"".join(epb(0, k, eth(ipv4(17, udp(68, 67)))) for k in ticks))
    t = same_tables(read_all(path))
    assert t.ts_ns.tolist() == [1102274184_317453000, 1102274184_387798000]
    assert SEC_NS_NOTE in t.damage


def test_corpus_files_with_unrepresentable_times_keep_their_packets(shared_dir):
    files = shared_dir / "data" / "corpus" / "files"
    t = make_reader("native").read(files / "nfstream__dhcp_little_endian.pcapng")
    assert len(t) == 4 and t.ts_ns.min() // 10**9 == 1102274184  # 2004-12-05, Wireshark's dhcp.pcap
    assert (t.ts_ns.max() - t.ts_ns.min()) == 70_345_000  # 70 ms (tshark says 70 s, reading microseconds)
    t = make_reader("native").read(files / "PcapPlusPlus__pcapng-example.pcapng")
    assert len(t) == 159 and "bad_timestamp" not in t.skipped and MISSING_NOTE in t.damage


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tsresol=st.sampled_from([0, 3, 6, 9, 12, 0x80, 0x80 | 20, 0x80 | 40, 19]),
       offset=st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(10**10), 10**10)),
       ticks=st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 2**40), min_size=1, max_size=4))
def test_any_resolution_offset_and_ticks_agree_across_readers(tmp_path, tsresol, offset, ticks):
    path = tmp_path / "p.pcapng"
    path.write_bytes(shb() + idb(1, tsresol=tsresol, tsoffset=offset)
                     + b"".join(epb(0, k, eth(ipv4(6, tcp(80, 1000 + i)))) for i, k in enumerate(ticks)))
    t = same_tables(read_all(path))
    assert len(t) == len(ticks)
    exact = [tick_ns(k, resolution(tsresol), offset) for k in ticks]
    for got, (ns, status) in zip(t.ts_ns.tolist(), exact):
        if status != 2:
            assert got == ns
        assert -LIMIT_NS <= got <= LIMIT_NS


# -- gzip ----------------------------------------------------------------------------------------
def small_pcapng(n=8):
    return shb() + idb(1) + b"".join(epb(0, T0 + i * 1000, eth(ipv4(17, udp(1000 + i, 53, b"x" * 40))))
                                     for i in range(n))


def test_damage_near_the_end_of_a_small_gzip_keeps_what_decompresses(tmp_path):
    """7 whole packet blocks decompress before the damage: every reader keeps them (native and
    dpkt kept 0: GzipFile decompressed the whole small file in one call and lost it to the error)."""
    data = small_pcapng(8)
    cut = len(data) - 60  # inside the 8th block
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = z.compress(data[:cut]) + z.flush(zlib.Z_FULL_FLUSH)
    broken = body + b"\xff\xff\xff" + z.compress(data[cut:]) + z.flush()  # an invalid block type
    path = tmp_path / "flip.pcapng.gz"
    path.write_bytes(broken)
    for name, t in read_all(path).items():
        assert t.records == len(t) == 7, name
        assert any(d.startswith("gzip stream damaged (") for d in t.damage), (name, t.damage)


def test_gzip_members_padding_and_trailing_bytes(tmp_path):
    data = small_pcapng(6)
    two = gzip.compress(data[:200]) + gzip.compress(data[200:]) + b"\0" * 100
    path = tmp_path / "two.pcapng.gz"
    path.write_bytes(two)
    t = same_tables(read_all(path))
    assert len(t) == 6 and not t.damage
    path.write_bytes(gzip.compress(data) + b"garbage!")
    t = make_reader("native").read(path)
    assert len(t) == 6 and any("not gzip" in d for d in t.damage)
    path.write_bytes(gzip.compress(data)[:-6])  # the trailer cut
    t = make_reader("native").read(path)
    assert len(t) == 6 and any("ends before the end" in d for d in t.damage)


def bomb(path, mib: int, linktype: int = 1) -> None:
    """A pcap header then ``mib`` MiB of zeros (records of caplen 0), gzipped in memory (~1 KB/MiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    parts = [z.compress(pcap_header(linktype))] + [z.compress(zeros) for _ in range(mib)] + [z.flush()]
    path.write_bytes(b"".join(parts))


def test_gzip_bomb_of_empty_records_is_read_fast(tmp_path):
    """256 MiB of zeros took native 7.6 s, dpkt 47 s, scapy 133 s; now about 1 s each. Here 64 MiB."""
    path = tmp_path / "bomb.pcap.gz"
    bomb(path, 64)
    for name in READERS:
        t0 = time.perf_counter()
        t = make_reader(name).read(path)
        took = time.perf_counter() - t0
        assert t.records == (64 << 20) // 16 and t.skipped == {"truncated": (64 << 20) // 16}, name
        assert took < 5, f"{name}: {took:.1f} s"


SEGMENTS = st.lists(st.one_of(st.tuples(st.just("pkt"), st.integers(0, 3)),
                              st.tuples(st.just("empty"), st.integers(1, 300))), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=SEGMENTS, batch=st.sampled_from([1, 7, 65536]), tail=st.integers(0, 15),
       frac=st.sampled_from([0, 999_999, 1_000_001]))
def test_runs_of_empty_records_count_exactly_as_one_by_one(tmp_path, segments, batch, tail, frac):
    """Empty records are counted in bulk, with every other record kept exactly: the same records,
    skipped counts and packets as decoding each one, whatever the runs, batches and file end."""
    body, n_pkts, n_empty = [], 0, 0
    for kind, k in segments:
        if kind == "pkt":
            body.append(record(eth(ipv4(17, udp(2000 + n_pkts, 53, b"y" * k))), usec=n_pkts))
            n_pkts += 1
        else:
            body.append(struct.pack("<IIII", 0, frac, 0, 0) * k)
            n_empty += k
    path = tmp_path / "runs.pcap"
    path.write_bytes(pcap_header() + b"".join(body) + b"\0" * tail)
    tables = read_all(path, dpkt={"batch_records": batch}, scapy={"batch_records": batch},
                      native={"chunk_mib": 1 / 16})
    t = same_tables(tables)
    assert t.records == n_pkts + n_empty and len(t) == n_pkts
    assert t.skipped.get("truncated", 0) == n_empty
    assert t.skipped.get("cut_record", 0) == (1 if tail else 0)
    assert any("out of range" in d for d in t.damage) == (frac > 999_999 and n_empty > 0)


def test_empty_runs_across_chunk_boundaries(tmp_path, monkeypatch):
    """Runs that straddle the native reader's 64 KiB chunks and dpkt's chunks count once."""
    from netml_readers_dpkt import reader as dpkt_reader

    monkeypatch.setattr(dpkt_reader, "CHUNK_BYTES", 5000)
    recs = []
    for i in range(40):
        recs.append(record(eth(ipv4(6, tcp(80, 3000 + i))), usec=i))
        recs.append(b"\0" * 16 * (i * 97 % 700))
    path = tmp_path / "chunks.pcap"
    path.write_bytes(pcap_header() + b"".join(recs))
    t = same_tables(read_all(path, native={"chunk_mib": 1 / 16}))
    assert len(t) == 40 and t.records == 40 + sum(i * 97 % 700 for i in range(40))


# -- link types -----------------------------------------------------------------------------------
def test_ip_over_infiniband_is_decoded(tmp_path):
    """Link type 242 (IPOIB): 40 bytes of addresses, the ethertype, 2 reserved, then IP."""
    hdr = lambda et: b"\x80" * 40 + struct.pack("!HH", et, 0)  # noqa: E731
    frames = [hdr(0x0800) + ipv4(6, tcp(22, 40000, 0x18)), hdr(0x86DD) + ipv6(17, udp(546, 547)),
              hdr(0x0806) + b"\0" * 28]
    path = tmp_path / "ipoib.pcap"
    path.write_bytes(pcap_header(242) + b"".join(record(f, usec=i) for i, f in enumerate(frames)))
    t = same_tables(read_all(path))
    assert t.link_types == {242: 3} and len(t) == 2 and t.skipped == {"non_ip": 1}
    assert t.sport.tolist() == [22, 546] and t.ip_version.tolist() == [4, 6]


def test_unknown_link_type_is_one_warning_with_number_and_name(tmp_path, caplog):
    path = tmp_path / "user0.pcap"
    path.write_bytes(pcap_header(147) + record(b"\x01" * 30) + record(b"\x02" * 30))
    with caplog.at_level(logging.WARNING, logger="netml.readers"):
        t = make_reader("native").read(path)
    assert t.skipped == {"unknown_linktype": 2}
    lines = [r.getMessage() for r in caplog.records if "link type" in r.getMessage()]
    assert lines == [f"{path}: link type 147 (USER0) not supported by netml: 2 records skipped (unknown_linktype)"]


def test_cli_names_the_unknown_link_type(tmp_path, run_cli):
    path = tmp_path / "can.pcap"
    path.write_bytes(pcap_header(227) + record(b"\x01" * 16))
    res = run_cli("inspect", path)
    assert res.exit_code == 0 and "227 (CAN_SOCKETCAN)" in res.stderr and "227 (CAN_SOCKETCAN): 1" in res.stdout


# -- IPv6 extension header chains ----------------------------------------------------------------
def chain(n: int, last: int, payload: bytes, frag_offset: int | None = None) -> tuple[int, bytes]:
    """``n`` destination-options headers (8 bytes each), a fragment header if ``frag_offset`` is
    given, then ``payload`` whose protocol is ``last``: (first next-header value, bytes)."""
    kinds = [60] * n + ([44] if frag_offset is not None else [])
    out = b""
    for kind, nh in zip(kinds, kinds[1:] + [last]):
        if kind == 60:
            out += struct.pack("!BB6s", nh, 0, b"\x01\x04\0\0\0\0")
        else:
            out += struct.pack("!BBHI", nh, 0, frag_offset << 3, 7)
    return (kinds[0] if kinds else last), out + payload


@pytest.mark.parametrize("n", [0, 11, 12, 13, 100, 1000])
def test_long_extension_header_chains_reach_the_transport(tmp_path, n):
    """A chain of 100 extension headers was counted not_tcp_udp (the walk stopped at 12)."""
    first, body = chain(n, 6, tcp(443, 50000 + n, 0x02))
    nh2, body2 = chain(n, 17, udp(53, 1053), frag_offset=0)  # ... then a first fragment: ports known
    nh3, body3 = chain(n, 17, udp(53, 1054), frag_offset=5)  # a later fragment: ports unknown
    nh4, body4 = chain(n, 6, b"")  # the chain runs to the end of the capture: truncated
    frames = [eth(ipv6(first, body), ethertype=0x86DD), eth(ipv6(nh2, body2), ethertype=0x86DD),
              eth(ipv6(nh3, body3), ethertype=0x86DD), eth(ipv6(nh4, body4[:-3]), ethertype=0x86DD)]
    path = tmp_path / "chain.pcap"
    path.write_bytes(pcap_header() + b"".join(record(f, usec=i) for i, f in enumerate(frames)))
    t = same_tables(read_all(path))
    assert t.sport.tolist() == [443, 53] and t.proto.tolist() == [6, 17]
    assert t.skipped == {"fragment": 1, "truncated": 1}


def test_a_chain_filling_a_large_packet_is_walked_in_bounded_time(tmp_path):
    first, body = chain(8000, 6, tcp(80, 8080))  # 64 KB of extension headers
    frame = eth(ipv6(first, body), ethertype=0x86DD)
    path = tmp_path / "big.pcap"
    path.write_bytes(pcap_header(snaplen=262144) + record(frame) * 20)
    t0 = time.perf_counter()
    t = make_reader("native").read(path)
    assert len(t) == 20 and set(t.dport.tolist()) == {8080}
    assert time.perf_counter() - t0 < 2

