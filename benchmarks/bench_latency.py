"""Streaming latency: packets replayed into `netml classify` through a pipe at a fixed rate.

The demo's packets are written to the stdin of `netml classify --report-all --format jsonl` at
``--rate`` packets/s (default 50,000), each stamped with the time it is written (so the capture
clock is the replay clock). A flow's idle timeout expires at its last packet's time plus the model's
``idle_timeout`` (the model is trained with ``--splitter-param '{idle_timeout: 5}'`` so that flows
end during the run). For every flow printed before the input ends, latency = (wall time its line
was read) - (wall time its idle timeout expired). Negative values are flows that ended before their
idle timeout (a new TCP connection on the same 5-tuple, the active timeout). Also printed: how far
the writer fell behind its schedule (the pipe was full: classify did not keep up) and how long
classify took to finish after the input closed.

    python benchmarks/bench_latency.py [--rate 50000] [--packets 1000000] [--idle 5]
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_capture import DEMO, _template, demo_records  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=50_000, help="packets per second")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--idle", type=float, default=5.0, help="the model's idle timeout (seconds)")
    ap.add_argument("--slice", type=int, default=500, help="packets per write")
    args = ap.parse_args()

    packets, _ts, wire = demo_records()
    tmpl, ts_pos = _template(packets, wire, "pcap")
    rec_start = np.append(ts_pos, len(tmpl))  # pcap: a record starts with its timestamp
    n_t = len(packets)
    # IPv4 over Ethernet: the repetition number goes into octets 2-3 of both addresses, so that
    # each repetition's flows are new 5-tuples that end by their idle timeout (the demo's own
    # 5-tuples would recur every 6000 packets and only end by the active timeout)
    data = ts_pos + 16
    ipv4 = (tmpl[data + 12] == 0x08) & (tmpl[data + 13] == 0x00)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "m.netml"
        subprocess.run([sys.executable, "-m", "netml_core.cli", "learn", "-q", "-p", str(DEMO), "-o", str(model),
                        "--splitter-param", f"{{idle_timeout: {args.idle}, active_timeout: {args.idle * 6}}}"],
                       check=True, stdout=subprocess.DEVNULL)
        proc = subprocess.Popen([sys.executable, "-m", "netml_core.cli", "classify", "-q", "-m", str(model),
                                 "--report-all", "--format", "jsonl"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen: list[tuple[float, bytes]] = []

        def reader():
            for line in proc.stdout:
                seen.append((time.time(), line))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        time.sleep(2.0)  # let classify start up (imports, model) before the clock starts
        out = proc.stdin
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        t0 = time.time()
        lag = 0.0
        for lo in range(0, args.packets, args.slice):
            hi = min(lo + args.slice, args.packets)
            idx = np.arange(lo, hi)
            # the same demo records in turn, each stamped with its replay time
            when = t0 + idx / args.rate
            due = when[0]
            now = time.time()
            if due > now:
                time.sleep(due - now)
            else:
                lag = max(lag, now - due)
            us = np.round(when * 1e6).astype(np.int64)
            k = idx % n_t
            off = 0
            for a, b in _runs(k):
                piece = tmpl[rec_start[a]:rec_start[b]].copy()
                pos = ts_pos[a:b] - rec_start[a]
                t = us[off:off + (b - a)]
                off += b - a
                fields = np.stack([t // 1_000_000, t % 1_000_000], axis=1).astype("<u4")
                piece[pos[:, None] + np.arange(8)] = fields.view(np.uint8).reshape(-1, 8)
                rep = int(idx[off - 1]) // n_t
                v4 = pos[ipv4[a:b]] + 16
                for octet, value in ((27, rep >> 8), (28, rep & 0xFF), (31, rep >> 8), (32, rep & 0xFF)):
                    piece[v4 + octet] = value
                out.write(piece.tobytes())
            out.flush()
        end_wall = time.time()
        out.close()
        proc.wait()
        done_wall = time.time()
        th.join()
        err = proc.stderr.read().decode().strip()
    lat = []
    for arrived, line in seen:
        row = json.loads(line)
        expire = row["end"] + args.idle  # replay time == wall time of writing
        if expire < end_wall and arrived < end_wall and "." in row["src"]:  # IPv4: renumbered flows
            lat.append(arrived - expire)
    lat = np.asarray(lat)
    print(f"replayed {args.packets:,} packets at {args.rate:,}/s in {end_wall - t0:.2f} s "
          f"(schedule {args.packets / args.rate:.2f} s; writer at most {lag:.3f} s behind it)")
    print(f"classify: {len(seen):,} flow lines; finished {done_wall - end_wall:.2f} s after the input closed; {err}")
    print(f"latency after the idle timeout ({len(lat):,} IPv4 flows that ended before the input did): "
          f"p50 {np.percentile(lat, 50):.3f} s  p99 {np.percentile(lat, 99):.3f} s  max {lat.max():.3f} s  "
          f"(ended before their idle timeout, e.g. by a new SYN, < 0: {int((lat < 0).sum()):,})")


def _runs(k: np.ndarray):
    """Consecutive runs of template indices ``k`` as (start, end) pairs (wrapping at the end)."""
    breaks = np.flatnonzero(np.diff(k) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(k)]])
    return [(int(k[s]), int(k[e - 1]) + 1) for s, e in zip(starts, ends)]


if __name__ == "__main__":
    main()
