"""Damaged captures never crash a reader: bytes of real captures are flipped and files cut at random
(seeded) places; every reader either reads them (keeping no more records than the intact file) or
raises the one-line ``CaptureError``. Nothing else may escape."""

from __future__ import annotations

import numpy as np
import pytest

from netml_core.errors import CaptureError
from netml_core.registry import get_registry

SOURCES = [
    ("netml-demo/demo.pcap", 120_000),  # pcapng
    ("corpus/files/dpkt__http.pcap", None),  # classic pcap
    ("corpus/files/pcapng-test-generator__le_difficult_test202.pcapng", None),  # sections, SPB, BE
    ("corpus/files/PcapPlusPlus__four_ipv6_http_streams.pcap", None),  # raw IPv6
]


def _variants(data: bytes, seed: int):
    rng = np.random.default_rng(seed)
    arr = np.frombuffer(data, np.uint8).copy()
    flips = rng.integers(0, len(arr), size=1 + seed % 8)
    arr[flips] = rng.integers(0, 256, size=len(flips))
    cut = int(rng.integers(len(arr) // 2, len(arr) + 1))
    yield arr.tobytes()[:cut]
    yield arr.tobytes()


@pytest.mark.parametrize("reader", ["native", "dpkt", "scapy"])
@pytest.mark.parametrize("source,limit", SOURCES)
def test_damaged_bytes_never_crash(shared_dir, tmp_path, reader, source, limit):
    data = (shared_dir / "data" / source).read_bytes()
    if limit:
        data = data[:limit]
    r = get_registry().create("reader", reader)
    intact = r.read(_write(tmp_path, "intact", data))
    read = errors = 0
    for seed in range(40):
        for i, variant in enumerate(_variants(data, seed)):
            try:
                t = r.read(_write(tmp_path, f"v{seed}_{i}", variant))
            except CaptureError as exc:
                assert "\n" not in str(exc)
                errors += 1
                continue
            read += 1
            assert t.records <= intact.records + 2  # a flipped length may split one record in two
            assert len(t) <= t.records
            assert (t.ip_version[: len(t)] != 0).all()
    assert read >= 40  # most variants still start with a valid header


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("reader", ["native", "dpkt", "scapy"])
@pytest.mark.parametrize("magic", [b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"])
def test_random_bytes_after_a_magic_never_crash(tmp_path, reader, magic):
    rng = np.random.default_rng(7)
    r = get_registry().create("reader", reader)
    for i in range(30):
        body = rng.integers(0, 256, size=int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        if magic == b"\x0a\x0d\x0d\x0a" and i % 2:  # a valid little-endian SHB start, then garbage
            body = b"\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00" + body
        try:
            t = r.read(_write(tmp_path, f"r{i}", magic + body))
        except CaptureError:
            continue
        assert len(t) <= t.records
