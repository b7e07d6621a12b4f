"""Host context while streaming a busy link: classify time and the flows waiting for their context.

A flow's context is final once every flow that started before it has ended, so on a busy link
the flows that ended while the oldest open flow is still open wait (up to the splitter's active
plus idle timeout: 180 s by default). This writes a capture of ``--rate`` short UDP flows per second
(two packets each, 2,000 hosts) for ``--seconds``, plus one long TCP session with a packet every
second that stays open throughout, then times ``netml classify`` of a context model on it (the
model is trained on the first tenth) and prints the largest number of flows waiting at once.

    python benchmarks/bench_context_stream.py [--rate 1500] [--seconds 600] [--out bench-data]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

NS = 1_000_000_000


def write_busy_capture(path: Path, rate: int, seconds: int, seed: int = 1) -> int:
    """Short flows at ``rate`` per second plus one session open throughout; returns the packets."""
    from netml_core.pcapwriter import write_pcap_columns

    rng = np.random.default_rng(seed)
    n = rate * seconds
    start = np.sort(rng.integers(0, seconds * NS, n))
    hosts = 0x0A000000 + rng.integers(1, 2001, n)  # 10.0.x.y
    server = 0xC0A80000 + rng.integers(1, 50, n)  # 192.168.0.x
    sport = rng.integers(1024, 65535, n)
    reply = start + rng.integers(1_000_000, 50_000_000, n)  # answered within 1-50 ms
    long_t = np.arange(0, seconds * NS, NS)
    ts = np.concatenate([start, reply, long_t])
    src = np.concatenate([hosts, server, np.full(len(long_t), 0x0A0000FE)])
    dst = np.concatenate([server, hosts, np.full(len(long_t), 0xC0A800FE)])
    sp = np.concatenate([sport, np.full(n, 53), np.full(len(long_t), 40000)])
    dp = np.concatenate([np.full(n, 53), sport, np.full(len(long_t), 22)])
    proto = np.concatenate([np.full(2 * n, 17), np.full(len(long_t), 6)])
    flags = np.concatenate([np.zeros(2 * n, np.int64), np.full(len(long_t), 0x18)])
    order = np.argsort(ts, kind="stable")
    size = np.concatenate([np.full(n, 80), np.full(n, 160), np.full(len(long_t), 120)])
    write_pcap_columns(path, ts[order], src[order].astype(np.uint32), dst[order].astype(np.uint32),
                       sp[order], dp[order], proto[order], flags[order], np.full(len(ts), 64), size[order])
    return len(ts)


def _classify(model_path: str, path: str) -> tuple:
    """In a fresh process, so that its peak memory is the classify's own."""
    from netml_core.pipeline import Pipeline

    pipe, _ = Pipeline.load(model_path)
    stream = pipe.classify_stream(path)
    context = stream.extract.context
    most = flows = 0
    t0 = time.perf_counter()
    for result in stream:
        flows += len(result.scores)
        most = max(most, context.waiting_flows)
    return time.perf_counter() - t0, flows, most, _peak_mib()


def _peak_mib() -> float:
    """This process's peak RSS since it started (``ru_maxrss`` carries the parent's peak over exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _train(train: str, model_path: str) -> None:
    from netml_core.pipeline import Pipeline

    pipe = Pipeline(feature="context", detector="gmm")
    pipe.fit_detector(pipe.fit_extract([train]).X, fpr=0.01, random_state=1)
    pipe.save(model_path)


def main() -> None:
    import multiprocessing

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=1500, help="short flows per second")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--out", default=str(HERE.parent / "bench-data"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"busy-{args.rate}x{args.seconds}.pcap"
    n = write_busy_capture(path, args.rate, args.seconds)
    train = out / "busy-train.pcap"
    write_busy_capture(train, args.rate, max(1, args.seconds // 10), seed=2)
    model = out / "busy-context.netml"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        pool.apply(_train, (str(train), str(model)))
    with ctx.Pool(1) as pool:
        seconds, flows, most, rss = pool.apply(_classify, (str(model), str(path)))
    print(f"{n} packets, {flows} flows ({args.rate} new flows/s for {args.seconds} s, one session open "
          f"throughout): classify with host context {seconds:.2f} s ({n / seconds:,.0f} packets/s); "
          f"at most {most:,} flows waiting for their context; peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
