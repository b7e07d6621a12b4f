"""Streaming at scale: `netml classify` and `netml learn extract` on a 10M-packet capture.

Builds, under ``bench-data/`` (git-ignored), the demo's packets repeated with shifted timestamps:
a 1M-packet and a 10M-packet classic pcap (``--big`` packets, about 3.4 GB). Trains a default model
on the 1M capture, then runs each command in a fresh process and prints wall time, packets/s and
the child's peak RSS:

- on the 1M capture, streamed (what the CLI does) and in memory (the same CLI with streaming
  switched off in the child process: the whole capture read first), the reference throughput;
- on the 10M capture, streamed.

    python benchmarks/bench_stream.py [--big 10000000] [--runs 1] [--delete]

``--delete`` removes the big capture afterwards (check ``df -h`` first: it needs ~3.5 GB).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_capture import demo_records, write_capture  # noqa: E402

#: runs ``netml`` in this process, optionally with the whole-capture path forced
CHILD = """
import sys
from netml_core import cli, pipeline
if sys.argv[1] == "memory":
    pipeline.Pipeline.can_stream = lambda self: False
    pipeline.Pipeline.can_stream_fit = lambda self: False
sys.exit(cli.main(sys.argv[2:]))
"""
#: a small fresh process that runs CHILD and prints its peak RSS (KiB): a child forked from this
#: benchmark would inherit the benchmark's own high-water mark (Linux keeps it across exec)
WRAPPER = """
import resource, subprocess, sys
rc = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


def capture(out_dir: Path, n_packets: int) -> Path:
    path = out_dir / f"stream-{n_packets}" / "big.pcap"
    stamp = path.with_suffix(".done")
    if not stamp.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        packets, ts, wire = demo_records()
        write_capture(path, "pcap", packets, ts, wire, n_packets)
        stamp.write_text("")
    return path


def count(path: Path) -> int:
    from netml_core.readers.native import NativeReader

    return sum(len(b) for b in NativeReader().iter_batches(str(path), 1_000_000))


def run(mode: str, argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``netml argv`` in a fresh process."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAPPER, CHILD, mode, *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if out.returncode:
        sys.exit(f"bench_stream: netml {' '.join(argv)} failed: {out.stderr.strip()}")
    return wall, int(out.stderr.split()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out-dir", default=str(HERE.parent / "bench-data"))
    ap.add_argument("--delete", action="store_true", help="remove the big capture afterwards")
    args = ap.parse_args()
    out_dir = Path(args.out_dir)
    free = shutil.disk_usage(out_dir.parent if not out_dir.exists() else out_dir).free / 1e9
    print(f"free disk: {free:.0f} GB")
    small, big = capture(out_dir, args.small), capture(out_dir, args.big)
    sizes = {small: count(small), big: count(big)}
    for p, n in sizes.items():
        print(f"capture: {p} ({p.stat().st_size / 2**20:,.0f} MiB, {n:,} TCP/UDP packets)")
    print(f"{'command':<52} {'wall s':>7} {'packets/s':>11} {'peak RSS MiB':>13}")
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "m.netml"
        run("stream", ["learn", "-p", str(small), "-o", str(model)])
        for what, argv in (
            ("classify --format jsonl", lambda c: ["classify", "-q", "-m", str(model), "-p", str(c),
                                                   "--format", "jsonl", "--report-all"]),
            ("learn extract", lambda c: ["learn", "extract", "-q", "-p", str(c), "--feature-file",
                                         str(Path(tmp) / "f.npz")]),
        ):
            for mode, cap in (("memory", small), ("stream", small), ("stream", big)):
                wall, rss = min((run(mode, argv(cap)) for _ in range(args.runs)), key=lambda r: r[0])
                rate = sizes[cap] / wall
                rates[(what, mode, cap)] = rate
                label = f"{what} {'in memory' if mode == 'memory' else 'streamed'} {sizes[cap] / 1e6:.0f}M"
                print(f"{label:<52} {wall:7.2f} {rate:11,.0f} {rss:13.0f}", flush=True)
            ratio = rates[(what, "stream", big)] / rates[(what, "memory", small)]
            print(f"  {what}: streamed {sizes[big] / 1e6:.0f}M / in memory {sizes[small] / 1e6:.0f}M "
                  f"throughput = {ratio:.2f}")
    if args.delete:
        big.unlink()
        big.with_suffix(".done").unlink()


if __name__ == "__main__":
    main()
