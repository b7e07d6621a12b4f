"""Packets/s and peak RSS of each reader reading a >= 1,000,000-packet capture into a PacketTable.

Builds (or reuses) ``bench-data/big.pcap`` and ``big.pcapng`` with ``make_capture.py`` (the demo's
packets repeated with shifted timestamps), then times each case in a fresh process, best of
``--runs``, and prints records/s, peak RSS (ru_maxrss) and RSS / file size. Reference points measured
in the same way: scapy's own raw iteration (no decoding) and, on a slice, scapy dissection and a
dpkt decode loop (what the original netml and typical scripts do).

    python benchmarks/bench_readers.py [--packets 1000000] [--runs 3] [--only native]

Timings depend on the machine being otherwise idle: run it alone. ``rec/cpu-s`` (records per
second of process CPU time) is what each (single-threaded) case reaches on an idle core.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_capture import make_captures  # noqa: E402

CHILD = r"""
import json, resource, sys, time
kind, path, arg = sys.argv[1], sys.argv[2], sys.argv[3]
from netml_core.registry import get_registry  # imports are not timed
if kind == "read":
    reader = get_registry().create("reader", arg)
    if arg == "scapy":
        import scapy.utils  # noqa: F401  (the plugin imports it on first read)
elif kind == "dpkt_epb":  # untimed: the pcapng's Enhanced Packet Blocks as separate bytes, in memory
    import struct
    import dpkt.pcapng
    data = open(path, "rb").read()
    blocks, off = [], 0
    while off + 8 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if btype == dpkt.pcapng.PCAPNG_BT_EPB:
            blocks.append(data[off:off + blen])
        off += blen
    del data
t0 = time.perf_counter()
c0 = time.process_time()
if kind == "read":
    t = reader.read(path)
    n, kept = t.records, len(t)
elif kind == "batches":  # bounded memory: count, keep nothing
    n = kept = 0
    for b in get_registry().create("reader", "native").iter_batches(path, int(arg)):
        n += b.records; kept += len(b)
elif kind == "scapy_raw":  # scapy's own fastest iteration: framing only
    from scapy.utils import RawPcapReader  # returns a RawPcapNgReader for pcapng
    n = kept = 0
    limit = int(arg)
    for data, meta in RawPcapReader(path):
        n += 1
        if n >= limit: break
elif kind == "scapy_dissect":  # what the original netml did per packet
    from scapy.utils import PcapReader
    n = kept = 0
    for p in PcapReader(path):
        n += 1
        if n >= int(arg): break
elif kind == "dpkt_iter":  # dpkt's own Reader iteration: framing only, no decoding
    import dpkt
    n = kept = 0
    with open(path, "rb") as f:
        for ts, buf in (dpkt.pcapng.Reader(f) if path.endswith("ng") else dpkt.pcap.Reader(f)):
            n += 1
elif kind == "dpkt_epb":  # dpkt's parse of each EPB and nothing else: a ceiling for any dpkt pcapng framing
    EPB = dpkt.pcapng.EnhancedPacketBlockLE
    for b in blocks:
        EPB(b)
    n = kept = len(blocks)
elif kind == "dpkt_loop":  # a typical dpkt decode loop
    import dpkt
    n = kept = 0
    with open(path, "rb") as f:
        for ts, buf in dpkt.pcap.Reader(f):
            e = dpkt.ethernet.Ethernet(buf)
            ip = e.data
            if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                kept += 1
                (ip.src, ip.dst, ip.data.sport, ip.data.dport)
            n += 1
            if n >= int(arg): break
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"records": n, "kept": kept, "seconds": dt, "cpu": cpu, "rss": rss}))
"""


def run(kind: str, path: Path, arg: str, runs: int) -> dict:
    best = None
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), arg], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"{kind} {arg} failed:\n{out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or r["seconds"] < best["seconds"]:
            best = r
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out-dir", default=str(HERE.parent / "bench-data"))
    ap.add_argument("--only", default="", help="comma list of readers to time (default all)")
    a = ap.parse_args()
    paths = make_captures(a.out_dir, a.packets)
    only = {x for x in a.only.split(",") if x}
    cases = []
    for reader in ("native", "dpkt", "scapy"):
        if only and reader not in only:
            continue
        for fmt in ("pcap", "pcapng"):
            cases.append((f"{reader} {fmt} -> PacketTable", "read", paths[fmt], reader, 1 if reader == "scapy" else a.runs))
    if not only or "native" in only:
        cases.append(("native pcap iter_batches(100000)", "batches", paths["pcap"], "100000", a.runs))
    if not only:
        cases.append(("scapy RawPcapReader, framing only", "scapy_raw", paths["pcap"], str(a.packets * 2), 1))
        cases.append(("scapy RawPcapNgReader, framing only", "scapy_raw", paths["pcapng"], str(a.packets * 2), 1))
        cases.append(("scapy dissection (20,000 packets)", "scapy_dissect", paths["pcap"], "20000", 1))
    if not only or "dpkt" in only:  # what dpkt itself reaches: the plugin's ceiling
        cases.append(("dpkt pcap.Reader, framing only", "dpkt_iter", paths["pcap"], "0", a.runs))
        cases.append(("dpkt pcapng.Reader, framing only", "dpkt_iter", paths["pcapng"], "0", a.runs))
        cases.append(("dpkt EPB parse only (pcapng, in memory)", "dpkt_epb", paths["pcapng"], "0", a.runs))
    if not only:
        cases.append(("dpkt decode loop (200,000 packets)", "dpkt_loop", paths["pcap"], "200000", 1))
    print(f"{'case':40} {'records':>9} {'seconds':>8} {'records/s':>11} {'cpu s':>6} {'rec/cpu-s':>10} "
          f"{'peak RSS':>9} {'RSS/file':>8}")
    for label, kind, path, arg, runs in cases:
        r = run(kind, path, arg, runs)
        size = path.stat().st_size
        print(f"{label:40} {r['records']:>9} {r['seconds']:>8.2f} {r['records'] / r['seconds']:>11,.0f} "
              f"{r['cpu']:>6.2f} {r['records'] / r['cpu']:>10,.0f} {r['rss'] / 2**20:>7.0f}MB {r['rss'] / size:>8.2f}")
    print(f"files: pcap {paths['pcap'].stat().st_size / 1e6:.0f} MB, pcapng {paths['pcapng'].stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
