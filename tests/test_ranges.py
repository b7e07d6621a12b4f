"""Byte ranges of a classic pcap file: wherever the cuts fall, the ranges that say they are exact
frame exactly the records of a whole read, and damage is flagged, never silently mis-framed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from netml_core.packets import COLUMNS, PacketTable
from netml_core.readers.native import NativeReader
from netml_core.readers.ranges import pcap_size, read_range

from helpers import SHARED, demo_repeated_pcap, need

CORPUS = SHARED / "data" / "corpus" / "files"


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = str(demo_repeated_pcap(tmp_path_factory.mktemp("ranges") / "d2.pcap", 12_000))
    return path, NativeReader().read(path)


def _check(path, whole, cuts):
    size = pcap_size(path)
    bounds = [24, *sorted(cuts), size]
    ranges = [read_range(path, a, b, size) for a, b in zip(bounds[:-1], bounds[1:])]
    chained = all(r.exact for r in ranges) and all(x.end == y.start for x, y in zip(ranges[:-1], ranges[1:]))
    if chained:
        joined = PacketTable.concat([r.packets for r in ranges])
        for name in COLUMNS:
            assert np.array_equal(getattr(joined, name), getattr(whole, name)), name
    return chained, ranges


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
def test_any_cuts_of_a_sound_capture_chain_exactly(capture, fractions):
    path, whole = capture
    size = pcap_size(path)
    chained, _ = _check(path, whole, [24 + int(f * (size - 24)) for f in fractions])
    assert chained


@pytest.mark.parametrize("name", ["PcapPlusPlus__many-protocols.pcap", "nfstream__ps_vue.pcap",
                                  "PcapPlusPlus__ip-frag.pcap", "nDPI__fuzz-2006-06-26-2594.pcap",
                                  "dpkt__truncated_dns_2.pcap"])
def test_real_and_damaged_captures_are_exact_or_flagged(name):
    path = str(need(CORPUS / name))
    whole = NativeReader().read(path)
    size = pcap_size(path)
    results = [_check(path, whole, [24 + (size - 24) * k // n for k in range(1, n)])[0] for n in (2, 3, 7)]
    if whole.damage:
        assert not any(results)  # damage anywhere makes its range inexact: the capture is read whole
    else:
        assert all(results)


def test_only_plain_classic_pcap_files_are_cut(tmp_path):
    assert pcap_size(str(need(SHARED / "data" / "netml-demo" / "demo.pcap"))) is None  # pcapng
    assert pcap_size("-") is None and pcap_size(str(tmp_path / "missing.pcap")) is None
