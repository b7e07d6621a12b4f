"""The original netml's demo capture through every reader: exact counts, timestamps as scapy gives
them, and bounded batches."""

from __future__ import annotations

import numpy as np
import pytest

from netml_core.packets import COLUMNS, PacketTable
from netml_core.registry import get_registry

READERS = ["native", "dpkt", "scapy"]


@pytest.fixture(scope="module")
def demo(shared_dir):
    return shared_dir / "data" / "netml-demo" / "demo.pcap"


@pytest.fixture(scope="module")
def native_demo(demo):
    return get_registry().create("reader", "native").read(demo)


@pytest.mark.parametrize("reader", READERS)
def test_demo_counts_with_every_reader(demo, native_demo, reader):
    t = get_registry().create("reader", reader).read(demo)
    assert t.format == "pcapng" and t.link_types == {1: 6000} and t.records == 6000
    assert t.counts() == {"ipv4_tcp": 3386, "ipv4_udp": 2598, "ipv6_tcp": 0, "ipv6_udp": 0}
    assert t.skipped == {"not_tcp_udp": 16} and t.damage == []
    for col in COLUMNS:
        assert np.array_equal(getattr(t, col), getattr(native_demo, col)), col


def test_demo_timestamps_are_scapys_floats(demo, native_demo):
    """``PacketTable.ts`` equals ``float(pkt.time)`` of scapy (the original netml's timestamps)."""
    from scapy.utils import PcapNgReader

    with PcapNgReader(str(demo)) as r:
        times = [float(p.time) for p in r]
    assert len(times) == 6000
    reader = get_registry().create("reader", "native")
    every = PacketTable.concat(list(reader.iter_batches(demo, 6000)))
    # rows are only the TCP/UDP packets: match them through the scapy packets that are TCP/UDP
    from scapy.layers.inet import IP, TCP, UDP

    with PcapNgReader(str(demo)) as r:
        keep = [(TCP in p or UDP in p) and IP in p and p[IP].frag == 0 for p in r]
    scapy_ts = np.array([t for t, k in zip(times, keep) if k])
    assert len(scapy_ts) == len(native_demo) == 5984
    assert native_demo.ts.tolist() == scapy_ts.tolist()  # exact float equality, every packet
    assert every.ts.tolist() == scapy_ts.tolist()
    assert native_demo.ts_ns[0] == 1499083689_815552_000  # microsecond capture: exact integer ns
    assert not (native_demo.ts_ns % 1000).any()


def test_demo_in_bounded_batches(demo, native_demo):
    batches = list(get_registry().create("reader", "native").iter_batches(demo, max_packets=1000))
    assert [len(b) for b in batches] == [1000] * 5 + [984]
    joined = PacketTable.concat(batches)
    assert joined.records == 6000 and joined.skipped == {"not_tcp_udp": 16}
    for col in COLUMNS:
        assert np.array_equal(getattr(joined, col), getattr(native_demo, col)), col
