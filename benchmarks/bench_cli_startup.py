"""Wall time of `netml plugins list` with every installed plugin (target: under 0.5 s).

Runs the installed console script in fresh processes, as a user's shell would, and prints the
median and best of N runs in seconds, next to a bare `python -c pass` for scale. Also reports which
heavy libraries a listing imported (should be none).

    python benchmarks/bench_cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "scapy", "sklearn", "skops", "safetensors", "dpkt", "pandas", "matplotlib")


def wall(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()

    netml = shutil.which("netml", path=str(Path(sys.executable).parent)) or shutil.which("netml")
    if not netml:
        sys.exit("bench_cli_startup: the netml console script is not installed")
    rows = json.loads(subprocess.run([netml, "plugins", "list", "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    probe = ("import sys, io, contextlib\nfrom netml_core.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()): main(['plugins', 'list'])\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    heavy = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()

    print(f"plugins: {len(rows)} ({sum(r['status'] == 'ok' for r in rows)} ok), "
          f"components: {sum(len(r['provides']) for r in rows)}")
    print(f"heavy modules imported by the listing: {heavy or 'none'}")
    for label, argv in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("netml --version", [netml, "--version"]),
        ("netml plugins list", [netml, "plugins", "list"]),
        ("netml plugins list --json", [netml, "plugins", "list", "--json"]),
    ):
        t = wall(argv, args.runs)
        print(f"{label:28s} median {statistics.median(t):.3f} s   best {min(t):.3f} s   ({args.runs} runs)")


if __name__ == "__main__":
    main()
