"""End-to-end wall time and peak RSS of `netml learn` and `netml classify` on a large capture.

What a user sees on a multi-GB capture: the installed `netml` command run in a fresh process on the
>= 1,000,000-packet capture from ``make_capture.py`` (the demo's packets repeated with shifted
timestamps), per feature, best of ``--runs``. Prints packets/s over the whole command (start-up,
reading, splitting, features, detector, model file) and the child's peak RSS next to the file size.

    python benchmarks/bench_cli.py [--packets 1000000] [--runs 2] [--features flowstats,stats,iat]
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

from make_capture import make_captures  # noqa: E402

CHILD = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def run(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of ``argv`` alone (measured through a wrapper process)."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, *argv], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, int(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--features", default="flowstats,stats,iat")
    ap.add_argument("--out-dir", default=str(HERE.parent / "bench-data"))
    args = ap.parse_args()

    netml = shutil.which("netml", path=str(Path(sys.executable).parent)) or shutil.which("netml")
    if not netml:
        sys.exit("bench_cli: the netml console script is not installed")
    capture = make_captures(args.out_dir, args.packets)["pcap"]
    size_mb = capture.stat().st_size / 2**20
    # the capture's packet count, read once (not timed)
    from netml_core.readers.native import NativeReader

    n = len(NativeReader().read(capture))
    print(f"capture: {capture} ({size_mb:.0f} MiB, {n:,} TCP/UDP packets), best of {args.runs}")
    print(f"{'command':<44} {'wall s':>7} {'packets/s':>11} {'peak RSS MiB':>13} {'RSS/file':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for feature in args.features.split(","):
            model = Path(tmp) / f"{feature}.netml"
            cases = [
                (f"learn --feature {feature}", [netml, "learn", "-p", str(capture), "--feature", feature, "-o", str(model)]),
                (f"classify ({feature} model) --format jsonl", [netml, "classify", "-m", str(model), "-p", str(capture), "--format", "jsonl"]),
            ]
            for label, argv in cases:
                best = min((run(argv) for _ in range(args.runs)), key=lambda r: r[0])
                wall, rss_kib = best
                rss_mb = rss_kib / 1024
                print(f"{label:<44} {wall:7.2f} {n / wall:11,.0f} {rss_mb:13.0f} {rss_mb / size_mb:9.2f}")


if __name__ == "__main__":
    main()
