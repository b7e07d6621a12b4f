"""Every reader over every capture of the shared corpus, checked against tshark's counts.

``../shared/data/corpus/MANIFEST.tsv`` holds tshark's IPv4/IPv6 x TCP/UDP packet counts. The native
reader must give exactly those, or the file is listed below with the counts it gives and why. The
dpkt and scapy readers must give the native reader's table column for column (same timestamps,
lengths, addresses, ports, flags), or the file is listed with what their library gets wrong.
Nothing may crash: a file that is not a capture is a ``CaptureError`` only where listed.
"""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pytest

from netml_core.errors import CaptureError
from netml_core.packets import COLUMNS
from netml_core.registry import get_registry

COUNT_KEYS = ("ipv4_tcp", "ipv4_udp", "ipv6_tcp", "ipv6_udp")

#: file -> (native counts, reason they differ from tshark's). None since issue 12: the packets of
#: nfstream__dhcp_little_endian.pcapng (seconds and nanoseconds in the two timestamp words) and the
#: 100 of PcapPlusPlus__pcapng-example.pcapng timed past 2262 are kept, their time repaired and reported
NATIVE_DIFFERS: dict[str, tuple] = {}

#: files that are no capture for netml: file -> message part
NOT_READABLE = {}
if importlib.util.find_spec("zstandard") is None:
    NOT_READABLE["PcapPlusPlus__pcapng-example.pcapng.zst"] = "zstd-compressed capture"

SPB = "dpkt has no Simple Packet Block class: its SPB packets are counted as spb_unsupported and reported"
#: reader -> file -> (counts, reason the library's framing differs from native)
LIBRARY_DIFFERS = {
    "dpkt": {
        "pcapng-test-generator__le_basic_test010.pcapng": ((0, 0, 0, 0), SPB),
        "pcapng-test-generator__le_basic_test012.pcapng": ((0, 2, 0, 0), SPB),
        "pcapng-test-generator__le_basic_test018.pcapng": ((0, 2, 0, 0), SPB),
        "pcapng-test-generator__le_difficult_test201.pcapng": ((0, 3, 0, 0), SPB),
        "pcapng-test-generator__le_difficult_test202.pcapng": ((0, 6, 0, 0), SPB),
    },
    "scapy": {},
}


def _manifest(shared_dir):
    path = shared_dir / "data" / "corpus" / "MANIFEST.tsv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) >= 100, f"{path}: expected about 100 captures, found {len(rows)}"
    return rows


def _read_all(reader_name, shared_dir):
    reader = get_registry().create("reader", reader_name)
    out = {}
    for row in _manifest(shared_dir):
        path = shared_dir / "data" / "corpus" / "files" / row["file"]
        try:
            out[row["file"]] = reader.read(path)
        except CaptureError as exc:
            out[row["file"]] = exc
    return out


@pytest.fixture(scope="module")
def native_tables(shared_dir):
    return _read_all("native", shared_dir)


def test_native_counts_equal_tshark_or_documented(shared_dir, native_tables):
    mismatches = []
    for row in _manifest(shared_dir):
        name = row["file"]
        got = native_tables[name]
        if name in NOT_READABLE:
            assert isinstance(got, CaptureError) and NOT_READABLE[name] in str(got), name
            continue
        assert not isinstance(got, CaptureError), f"{name}: {got}"
        counts = tuple(got.counts()[k] for k in COUNT_KEYS)
        tshark = tuple(int(row[f"tshark_v{k[3]}{k[5:]}"]) for k in COUNT_KEYS)
        expected = NATIVE_DIFFERS[name][0] if name in NATIVE_DIFFERS else tshark
        if counts != expected:
            mismatches.append(f"{name}: native {counts}, expected {expected} (tshark {tshark})")
        if name in NATIVE_DIFFERS:
            assert counts != tshark, f"{name} now agrees with tshark: drop it from NATIVE_DIFFERS"
    assert not mismatches, "\n".join(mismatches)


def test_native_skips_and_damage_on_known_files(native_tables):
    t = native_tables["PcapPlusPlus__ip-frag.pcap"]
    assert t.records == 3000 and t.skipped["fragment"] == 1550  # IP frag offset > 0 (scapy counts 1550 too)
    t = native_tables["dpkt__truncated_dns_2.pcap"]
    assert t.records == 1 and t.skipped["cut_record"] == 1 and "file ends inside a record" in t.damage[0]
    t = native_tables["PcapPlusPlus__fuzzregr_crash-eec28dafde1f1ac2299674a75a914ae16d4046fa"]
    assert t.records == 1 and t.skipped["absurd_caplen"] == 1 and "captured bytes" in " ".join(t.damage)
    t = native_tables["libpcap__pcap-invalid-version-1.pcap"]
    assert t.records == 0 and t.damage == ["unsupported pcap version 1.4: no record read"]
    t = native_tables["libpcap__shb-option-too-long.pcapng"]
    assert t.records == 0 and "option running past its end" in t.damage[0]
    t = native_tables["pcapng-test-generator__le_difficult_test202.pcapng"]
    assert t.link_types == {0: 2, 1: 6} and t.format == "pcapng+spb"
    t = native_tables["scapy__candump_gmlan_scanner.pcap"]
    assert t.skipped == {"unknown_linktype": 3819}
    t = native_tables["tcpdump__timestamp_invalid_nano.pcap"]
    assert len(t) == 3 and any("out of range" in d for d in t.damage)


@pytest.mark.parametrize("reader_name", ["dpkt", "scapy"])
def test_library_readers_agree_with_native(shared_dir, native_tables, reader_name):
    theirs = _read_all(reader_name, shared_dir)
    documented = LIBRARY_DIFFERS[reader_name]
    problems = []
    for name, mine in native_tables.items():
        other = theirs[name]
        if isinstance(mine, CaptureError):
            assert isinstance(other, CaptureError) and str(other) == str(mine), name
            continue
        assert not isinstance(other, CaptureError), f"{name}: {other}"
        counts = tuple(other.counts()[k] for k in COUNT_KEYS)
        if name in documented:
            if counts != documented[name][0]:
                problems.append(f"{name}: {reader_name} {counts}, documented {documented[name][0]}")
            continue
        if other.records != mine.records or other.skipped != mine.skipped:
            problems.append(f"{name}: records {other.records}/{mine.records}, skipped {other.skipped}/{mine.skipped}")
            continue
        for col in COLUMNS:
            if not np.array_equal(getattr(other, col), getattr(mine, col)):
                problems.append(f"{name}: column {col} differs")
                break
    assert not problems, "\n".join(problems)


def _raw_dpkt(path):
    import dpkt

    with open(path, "rb") as f:
        reader = dpkt.pcapng.Reader if f.read(4) == b"\n\r\r\n" else dpkt.pcap.Reader
        f.seek(0)
        try:
            return sum(1 for _ in reader(f))
        except dpkt.NeedData:
            return "NeedData"


def _raw_scapy(path):
    import logging

    from scapy.utils import RawPcapReader

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    return sum(1 for _ in RawPcapReader(str(path)))


#: file -> (records dpkt's Reader yields, records scapy's RawPcapReader yields, the plugins' records)
LIBRARY_BUGS = {
    # a cut record at the end: dpkt raises, or yields the cut bytes as a packet; scapy yields them too
    "dpkt__truncated_dns_2.pcap": ("NeedData", 1, 1),
    "PcapPlusPlus__fuzzregr_crash-81dba690a3f67ee41a41390a625db732fa1413a1": (12, 12, 11),
    # an absurd caplen: both read it as a packet
    "PcapPlusPlus__fuzzregr_igmplayer": (3, 3, 2),
    # pcap version 1.4 (libpcap and tshark refuse it): both read it
    "libpcap__pcap-invalid-version-1.pcap": (1, 1, 0),
    # an EPB claiming more bytes than it holds: both shorten it silently
    "PcapPlusPlus__fuzzregr_crash-pcapng-epb-unbounded-length": (1, 1, 0),
    # 3 sections with SPBs: dpkt reads the first section's EPBs only (the plugin: all EPBs, SPBs reported)
    "pcapng-test-generator__le_difficult_test202.pcapng": (3, 8, 8),
}


def test_library_readers_own_mistakes_are_worked_around(shared_dir):
    """What dpkt's and scapy's own readers do on these files, and what the plugins make of it."""
    for name, (dpkt_raw, scapy_raw, plugin) in LIBRARY_BUGS.items():
        path = shared_dir / "data" / "corpus" / "files" / name
        assert _raw_dpkt(path) == dpkt_raw, name
        assert _raw_scapy(path) == scapy_raw, name
        native = get_registry().create("reader", "native").read(path)
        assert native.records == plugin, name
        assert get_registry().create("reader", "scapy").read(path).records == plugin, name
        dpkt_records = get_registry().create("reader", "dpkt").read(path).records
        assert dpkt_records == (6 if name.startswith("pcapng-test-generator") else plugin), name
