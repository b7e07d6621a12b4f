"""Helpers test modules share: guards for ../shared data and an in-process ``netml`` runner."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo"


def need(path: Path) -> Path:
    """``path`` under ../shared; fails (never skips) when it is missing."""
    if not path.exists():
        pytest.fail(f"shared data missing: {path}", pytrace=False)
    return path


def demo_data() -> Path:
    """The original's demo folder; fails (never skips) when ../shared is missing."""
    if not (DEMO / "demo.pcap").is_file():
        pytest.fail(f"shared demo data missing at {DEMO} (../shared must sit beside the repo)", pytrace=False)
    return DEMO


def cli(*argv) -> tuple[int, str, str]:
    """Run ``netml`` in-process: (exit code, stdout, stderr)."""
    from netml_core import cli as netml_cli

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = netml_cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def packet_table(rows, wire_len=60):
    """A PacketTable from rows of ``(t_s, src, sport, dst, dport, proto[, tcp_flags])``; every packet
    ``wire_len`` bytes (a number, or one per row)."""
    import numpy as np

    from netml_core.packets import PacketTable, ip_to_words

    n = len(rows)
    return PacketTable(
        ts_ns=np.array([round(r[0] * 1e9) for r in rows], dtype=np.int64),
        wire_len=np.broadcast_to(np.asarray(wire_len), (n,)).copy(), ip_version=np.full(n, 4),
        proto=np.array([r[5] for r in rows]), src=ip_to_words([r[1] for r in rows]),
        dst=ip_to_words([r[3] for r in rows]), sport=np.array([r[2] for r in rows]),
        dport=np.array([r[4] for r in rows]), tcp_flags=np.array([r[6] if len(r) > 6 else 0 for r in rows]),
        ttl=np.full(n, 64))


def random_traffic(seed: int, n: int, gaps=(0.001, 0.5, 3.0, 12.0, 40.0), p=(0.4, 0.3, 0.2, 0.08, 0.02)):
    """Time-ordered random TCP/UDP traffic between 4 hosts on a few ports, with TCP flags (SYN, FIN,
    RST, ...) and packet gaps drawn from ``gaps``: flow-meter oracle and merge tests."""
    import numpy as np

    F, S, R, P, A = 0x01, 0x02, 0x04, 0x08, 0x10
    rng = np.random.default_rng(seed)
    hosts = [f"10.0.0.{k}" for k in range(4)]
    t = np.cumsum(rng.choice(list(gaps), size=n, p=list(p)))
    a, b = rng.integers(0, 4, n), rng.integers(0, 4, n)
    ports = rng.integers(0, 3, n)
    flip = rng.random(n) < 0.5
    proto = np.where(rng.random(n) < 0.7, 6, 17)
    flags = np.where(proto == 6, rng.choice([S, S | A, A, F | A, R, P | A], size=n,
                                             p=[0.1, 0.1, 0.5, 0.1, 0.05, 0.15]), 0)
    rows = []
    for k in range(n):
        e1, e2 = (hosts[a[k]], 1000 + ports[k]), (hosts[b[k]], 80)
        if flip[k]:
            e1, e2 = e2, e1
        rows.append((float(t[k]), e1[0], e1[1], e2[0], e2[1], int(proto[k]), int(flags[k])))
    return packet_table(rows, wire_len=np.arange(n) + 60)


def demo_repeated_pcap(path, n_packets: int, kind: str = "pcap"):
    """A classic pcap (or ``kind`` pcapng) of the demo packets repeated with shifted times
    (benchmarks/make_capture.py): big enough to cut in byte ranges, with flows that cross every cut."""
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        from make_capture import demo_records, write_capture
    finally:
        sys.path.remove(str(bench))
    demo_data()
    packets, ts, wire = demo_records(DEMO / "demo.pcap")
    return write_capture(Path(path), kind, packets, ts, wire, n_packets)
