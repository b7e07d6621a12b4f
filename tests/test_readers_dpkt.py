"""dpkt plugin, classic pcap: dpkt's Reader frames in-memory chunks, numpy reads the record headers.

Records straddle chunk boundaries and batch boundaries, and a capture can end at any byte: with
tiny chunks and batches the plugin must still give the native reader's table (same records,
columns, skipped counts), including the cut record at the end and the absurd caplen.
"""

from __future__ import annotations

import netml_readers_dpkt.reader as dpkt_reader
import numpy as np
import pytest

from netml_core.errors import CaptureError
from netml_core.packets import COLUMNS
from netml_core.registry import get_registry

FILES = [
    "dpkt__http.pcap",  # 43 records, microseconds, little endian
    "PcapPlusPlus__nanosecs_big_endian.pcap",  # nanoseconds, big endian
    "tcpdump__timestamp_invalid_nano.pcap",  # out-of-range nanosecond fields
    "dpkt__truncated_dns_2.pcap",  # the only record is cut short by the end of the file
    "PcapPlusPlus__fuzzregr_crash-eec28dafde1f1ac2299674a75a914ae16d4046fa",  # absurd caplen
]


def _read(name, data_or_path, **params):
    return get_registry().create("reader", name, params).read(data_or_path)


def _same(a, b, what):
    assert a.records == b.records, what
    assert a.skipped == b.skipped, what
    assert a.format == b.format, what
    assert len(a) == len(b), what
    for col in COLUMNS:
        assert np.array_equal(getattr(a, col), getattr(b, col)), f"{what}: column {col}"


@pytest.mark.parametrize("chunk_bytes, batch_records", [(61, 1), (500, 3), (4096, 7), (1 << 20, 65536)])
def test_chunk_and_batch_boundaries_change_nothing(shared_dir, monkeypatch, chunk_bytes, batch_records):
    files = shared_dir / "data" / "corpus" / "files"
    monkeypatch.setattr(dpkt_reader, "CHUNK_BYTES", chunk_bytes)
    for name in FILES:
        native = _read("native", files / name)
        mine = _read("dpkt", files / name, batch_records=batch_records)
        _same(mine, native, f"{name} chunk={chunk_bytes} batch={batch_records}")
        assert mine.damage == _read("dpkt", files / name).damage, name
    http = _read("dpkt", files / "dpkt__http.pcap", batch_records=batch_records)
    assert http.records == 43 and http.counts()["ipv4_tcp"] == 41 and http.counts()["ipv4_udp"] == 2


def test_every_cut_of_a_capture_keeps_the_complete_records(shared_dir, monkeypatch, tmp_path):
    data = (shared_dir / "data" / "corpus" / "files" / "dpkt__http.pcap").read_bytes()[:3000]
    monkeypatch.setattr(dpkt_reader, "CHUNK_BYTES", 700)
    path = tmp_path / "cut.pcap"
    seen_records = set()
    for end in range(24, len(data) + 1, 7):
        path.write_bytes(data[:end])
        native = _read("native", path)
        mine = _read("dpkt", path, batch_records=2)
        _same(mine, native, f"cut at {end}")
        if mine.skipped.get("cut_record"):
            assert any("file ends inside a record" in d for d in mine.damage), end
        seen_records.add(mine.records)
    assert len(seen_records) >= 5  # the cuts fall before, inside and after several records


def test_absurd_caplen_stops_reading_with_the_record_before_kept(shared_dir):
    path = shared_dir / "data" / "corpus" / "files" / FILES[-1]
    t = _read("dpkt", path)
    # the one complete record is read (its IP header is garbage), the next claims 2**32 - 1 bytes
    assert t.records == 1 and t.skipped == {"absurd_caplen": 1, "bad_ip_header": 1}
    assert "record at byte 111 claims 4294967295 captured bytes (more than 262144): reading stopped there" in t.damage


PCAPNG_FILES = [
    "PcapPlusPlus__many_interfaces-1.pcapng",  # 11 interfaces, IDBs between packets
    "PcapPlusPlus__pcapng-example.pcapng",  # 100 timestamps past 2262: kept, the time before them
    "nDPI__nano.pcapng",  # if_tsresol 9
    "chrissanders-packets__synscan.pcapng",  # 2011 EPBs
    "nDPI__http_asymmetric.pcapng",  # 2 interfaces
]


@pytest.mark.parametrize("chunk_bytes, batch_records", [(13, 1), (300, 5), (5000, 64), (1 << 20, 65536)])
def test_pcapng_chunk_and_batch_boundaries_change_nothing(shared_dir, monkeypatch, chunk_bytes, batch_records):
    files = shared_dir / "data" / "corpus" / "files"
    monkeypatch.setattr(dpkt_reader, "CHUNK_BYTES", chunk_bytes)
    for name in PCAPNG_FILES:
        _same(_read("dpkt", files / name, batch_records=batch_records), _read("native", files / name),
              f"{name} chunk={chunk_bytes} batch={batch_records}")
    # three sections (LE, BE, LE), five interfaces of link types 0 and 1 (native: {0: 2, 1: 6} with the
    # SPBs); dpkt has no SPB class: its 2 SPBs are reported, not read
    t = _read("dpkt", files / "pcapng-test-generator__le_difficult_test202.pcapng", batch_records=batch_records)
    assert t.records == 6 and t.skipped == {"spb_unsupported": 2} and t.link_types == {0: 2, 1: 4}
    assert t.counts()["ipv4_udp"] == 6
    demo = _read("dpkt", shared_dir / "data" / "netml-demo" / "demo.pcap", batch_records=batch_records)
    assert demo.records == 6000 and len(demo) == 3386 + 2598
    assert int((demo.proto == 6).sum()) == 3386 and int((demo.proto == 17).sum()) == 2598


def test_every_cut_of_a_pcapng_keeps_the_complete_blocks(shared_dir, monkeypatch, tmp_path):
    data = (shared_dir / "data" / "corpus" / "files" / "PcapPlusPlus__many_interfaces-1.pcapng").read_bytes()
    monkeypatch.setattr(dpkt_reader, "CHUNK_BYTES", 1000)
    path = tmp_path / "cut.pcapng"
    seen_records = set()
    for end in range(0, min(len(data), 6000) + 1, 11):
        path.write_bytes(data[:end])
        try:
            native = _read("native", path)
        except CaptureError as exc:  # too short to be sniffed as a capture: both readers refuse it alike
            with pytest.raises(CaptureError, match=str(exc)):
                _read("dpkt", path)
            continue
        mine = _read("dpkt", path, batch_records=3)
        _same(mine, native, f"cut at {end}")
        seen_records.add(mine.records)
    assert len(seen_records) >= 10


def test_iter_batches_frees_each_chunk(shared_dir, monkeypatch, tmp_path):
    """Memory stays bounded by the chunk, not the file (dpkt's Reader is a reference cycle)."""
    import tracemalloc

    data = (shared_dir / "data" / "corpus" / "files" / "dpkt__http.pcap").read_bytes()
    path = tmp_path / "long.pcap"
    path.write_bytes(data[:24] + data[24:] * 80)  # 3,440 records, about 2.1 MB
    monkeypatch.setattr(dpkt_reader, "CHUNK_BYTES", 64 << 10)
    reader = get_registry().create("reader", "dpkt", {"batch_records": 500})
    tracemalloc.start()
    try:
        records = peak = 0
        for batch in reader.iter_batches(path, 500):
            records += batch.records
            peak = max(peak, tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert records == 43 * 80
    assert peak < path.stat().st_size / 4, f"{peak} bytes held while iterating"
