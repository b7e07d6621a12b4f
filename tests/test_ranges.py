"""Byte ranges of a capture file: wherever the cuts fall, the ranges that say they are exact frame
exactly the records of a whole read, and damage is flagged, never silently mis-framed."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from netml_core.packets import COLUMNS, PacketTable
from netml_core.readers.native import NativeReader
from netml_core.readers.ranges import layout, read_range

from helpers import DEMO, SHARED, demo_data, demo_repeated_pcap, need

CORPUS = SHARED / "data" / "corpus" / "files"


@pytest.fixture(scope="module", params=["pcap", "pcapng"])
def capture(request, tmp_path_factory):
    path = str(demo_repeated_pcap(tmp_path_factory.mktemp("ranges") / f"d2.{request.param}", 12_000,
                                  request.param))
    return path, NativeReader().read(path)


def _check(path, whole, cuts):
    lay = layout(path)
    bounds = [lay.first, *sorted(cuts), lay.size]
    ranges = [read_range(path, a, b, lay.size) for a, b in zip(bounds[:-1], bounds[1:])]
    chained = all(r.exact for r in ranges) and all(x.end == y.start for x, y in zip(ranges[:-1], ranges[1:]))
    if chained:
        joined = PacketTable.concat([r.packets for r in ranges])
        for name in COLUMNS:
            assert np.array_equal(getattr(joined, name), getattr(whole, name)), name
    return chained, ranges


def _even_cuts(path, n):
    lay = layout(path)
    return [lay.first + (lay.size - lay.first) * k // n for k in range(1, n)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
def test_any_cuts_of_a_sound_capture_chain_exactly(capture, fractions):
    path, whole = capture
    lay = layout(path)
    chained, _ = _check(path, whole, [lay.first + int(f * (lay.size - lay.first)) for f in fractions])
    assert chained


@pytest.mark.parametrize("name", ["PcapPlusPlus__many-protocols.pcap", "nfstream__ps_vue.pcap",
                                  "PcapPlusPlus__ip-frag.pcap", "nDPI__fuzz-2006-06-26-2594.pcap",
                                  "dpkt__truncated_dns_2.pcap",
                                  # pcapng: 64 interfaces, sound files, damaged ones, Simple Packet Blocks
                                  "PcapPlusPlus__many_interfaces-1.pcapng", "chrissanders-packets__synscan.pcapng",
                                  "nDPI__http_asymmetric.pcapng", "PcapPlusPlus__pcapng-example.pcapng",
                                  "nfstream__dhcp_little_endian.pcapng",
                                  "pcapng-test-generator__le_difficult_test202.pcapng"])
def test_real_and_damaged_captures_are_exact_or_flagged(name):
    path = str(need(CORPUS / name))
    whole = NativeReader().read(path)
    results = [_check(path, whole, _even_cuts(path, n))[0] for n in (2, 3, 7)]
    if whole.damage or "spb" in whole.format:  # an SPB takes the time of the packet before it, maybe in another range
        assert not any(results)  # damage anywhere makes its range inexact: the capture is read whole
    else:
        assert all(results)


def _pcapng_blocks(data: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(data):
        blen = struct.unpack_from("<I", data, off + 4)[0]
        out.append(data[off:off + blen])
        off += blen
    return out


@pytest.mark.parametrize("change", ["second section", "interface described late"])
def test_pcapng_whose_sections_or_interfaces_change_after_its_head_is_read_whole(tmp_path, change):
    """Ranges are framed with the file's head; a later section header or interface description
    would change what the next ranges mean, so any range that holds one is inexact."""
    demo_data()
    data = (DEMO / "demo.pcap").read_bytes()  # pcapng: SHB, IDB, then packet blocks
    blocks = _pcapng_blocks(data)
    assert struct.unpack_from("<I", blocks[1])[0] == 1 and len(blocks) > 1000
    half = len(blocks) // 2
    if change == "second section":
        out = data + data  # `cat a.pcapng b.pcapng`: a valid two-section file
    else:
        idb = blocks[1]
        out = b"".join(blocks[:half] + [idb] + blocks[half:])
    path = tmp_path / "changed.pcapng"
    path.write_bytes(out)
    whole = NativeReader().read(str(path))
    assert not whole.damage and len(whole) == (2 if change == "second section" else 1) * 5984
    assert layout(str(path)).first == len(blocks[0]) + len(blocks[1])
    for n in (2, 3, 5, 9):
        assert not _check(str(path), whole, _even_cuts(str(path), n))[0]


def test_only_uncompressed_files_are_cut(tmp_path):
    demo_data()
    assert layout(str(DEMO / "demo.pcap")).kind == "pcapng"
    assert layout(str(need(CORPUS / "PcapPlusPlus__pcapng-example.pcapng.zst"))) is None
    assert layout("-") is None and layout(str(tmp_path / "missing.pcap")) is None
    (tmp_path / "head-only.pcapng").write_bytes((DEMO / "demo.pcap").read_bytes()[:116])
    assert layout(str(tmp_path / "head-only.pcapng")) is None  # nothing after the head: nothing to cut


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["flip", "delete", "insert"]), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4), st.binary(min_size=1, max_size=40))
def test_a_damaged_pcapng_is_framed_exactly_or_read_whole(tmp_path_factory, change, where, cuts, junk):
    """Bytes flipped, deleted or inserted anywhere after the head: ranges that chain exactly
    give the whole read's packets; the others are flagged (never a silently different capture)."""
    demo_data()
    data = (DEMO / "demo.pcap").read_bytes()
    blocks = _pcapng_blocks(data)
    data = bytearray(b"".join(blocks[:1200]))  # ends on a block boundary
    head = len(blocks[0]) + len(blocks[1])
    for f in sorted(where, reverse=True):
        pos = head + int(f * (len(data) - head - 1))
        if change == "flip":
            data[pos] ^= junk[0] or 0xFF
        elif change == "delete":
            del data[pos:pos + len(junk)]
        else:
            data[pos:pos] = junk
    path = tmp_path_factory.mktemp("damaged") / "d.pcapng"
    path.write_bytes(bytes(data))
    lay = layout(str(path))
    if lay is not None:
        _check(str(path), NativeReader().read(str(path)), [lay.first + int(f * (lay.size - lay.first)) for f in cuts])
