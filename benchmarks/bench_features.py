"""Throughput of the flow splitters and every feature, in packets per second.

Two workloads of at least ``--packets`` packets (default 1,000,000):

- ``demo x N``: ``big.pcap`` from ``make_capture.py`` (the demo capture repeated with shifted
  timestamps: 188 long-lived 5-tuples), read with the native reader; also timed end to end, with
  netml 0.x's pipeline (read -> ``netml`` splitter fit + split -> IAT fit + transform) and with the
  default one (read -> ``meter`` splitter -> ``flowstats``, names from ``netml_core.defaults``);
- ``synthetic``: a PacketTable built in memory with ~100,000 distinct 5-tuples, bursty
  microsecond timing and mixed TCP/UDP, unsorted within 1 ms jitter (many short flows, the
  harder case for grouping).

For each workload: splitter ``fit`` + ``split`` (one grouping), ``split`` alone by a splitter
restored from its fitted state (what a new capture costs), then that ``split`` plus one feature's
``fit`` and ``transform`` (the figure the 2,000,000 packets/s target is about); then the same with
the default splitter and feature. Best of ``--repeat`` runs; each figure is packets of the table
divided by wall time.

    python benchmarks/bench_features.py [--packets N] [--repeat R] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from netml_core.defaults import DEFAULT_FEATURE, DEFAULT_SPLITTER  # noqa: E402
from netml_core.packets import PacketTable  # noqa: E402
from netml_core.readers.native import NativeReader  # noqa: E402
from netml_core.registry import get_registry  # noqa: E402
from netml_core.splitter import NetmlFlowSplitter  # noqa: E402

FEATURES = [
    ("iat", {}), ("iat_size", {}), ("size", {}), ("stats", {}), ("samp_num", {}), ("samp_size", {}),
    ("iat", {"fft": True}), ("iat", {"header": True}), ("flowstats", {}),
]


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def synthetic(n: int, n_keys: int = 100_000, seed: int = 0) -> PacketTable:
    rng = np.random.default_rng(seed)
    key = rng.zipf(1.3, n) % n_keys
    gaps_us = rng.choice([0, 5, 200, 20_000, 2_000_000], size=n, p=[0.2, 0.4, 0.3, 0.09, 0.01])
    ts_us = 1_499_083_689_000_000 + np.cumsum(gaps_us) + rng.integers(0, 1000, n)  # jitter: not sorted
    src = np.zeros((n, 2), np.uint64)
    dst = np.zeros((n, 2), np.uint64)
    src[:, 1] = np.uint64(0xFFFF << 32) | (np.uint64(0x0A000000) + key.astype(np.uint64) // np.uint64(7))
    dst[:, 1] = np.uint64(0xFFFF << 32) | (np.uint64(0xC0A80000) + key.astype(np.uint64) % np.uint64(251))
    proto = np.where(key % 3 == 0, 17, 6)
    return PacketTable(
        ts_ns=ts_us * 1000, wire_len=rng.integers(54, 1514, n), ip_version=np.full(n, 4), proto=proto,
        src=src, dst=dst, sport=(1024 + key % 60000), dport=np.where(proto == 6, 443, 53),
        tcp_flags=np.where(proto == 6, rng.integers(0, 32, n), 0), ttl=rng.integers(32, 128, n),
    )


def report(label: str, n: int, seconds: float, extra: str = "") -> None:
    print(f"  {label:<40} {seconds * 1e3:9.1f} ms {n / seconds:14,.0f} packets/s {extra}")


def bench_table(title: str, packets: PacketTable, repeat: int) -> None:
    n = len(packets)
    reg = get_registry()
    print(f"\n{title}: {n:,} packets")
    splitter = NetmlFlowSplitter()
    t, _ = best_of(repeat, lambda: splitter.fit_split(packets))
    report("splitter fit + split", n, t, f"interval {splitter.interval_:.4f} s")
    # a splitter restored from its state has no grouping cached: the cost on a new capture
    fitted = NetmlFlowSplitter().set_state(splitter.get_state())
    t_split, flows = best_of(repeat, lambda: fitted.split(packets))
    report("splitter split (fitted, new table)", n, t_split,
           f"{len(flows):,} flows, {int(flows.n_pkts.sum()):,} packets kept")
    for name, params in FEATURES:
        label = name + "".join(f" {k}" for k in params)

        def run():
            f = reg.create("feature", name, dict(params))
            return f.fit(flows).transform(flows)

        t_feat, X = best_of(repeat, run)
        report(f"split + {label}", n, t_split + t_feat, f"(feature alone {n / t_feat:,.0f}/s, X {X.shape})")

    # the default pipeline's splitter (both directions, one-packet flows kept) and feature
    default = reg.create("flow_splitter", DEFAULT_SPLITTER, {})
    t_split, flows = best_of(repeat, lambda: default.fit(packets).split(packets))
    report(f"{DEFAULT_SPLITTER} split", n, t_split,
           f"{len(flows):,} flows, {int(np.count_nonzero(flows.n_pkts == 1)):,} of one packet")
    feat = reg.create("feature", DEFAULT_FEATURE, {})
    t_feat, X = best_of(repeat, lambda: feat.fit(flows).transform(flows))
    report(f"{DEFAULT_SPLITTER} split + {DEFAULT_FEATURE}", n, t_split + t_feat,
           f"(feature alone {t_feat * 1e3:.1f} ms, {n / t_feat:,.0f}/s, X {X.shape})")
    if reg.resolve_name("feature", "context") is not None:  # host context, when installed
        ctx = reg.create("feature", "context", {})
        t_ctx, X = best_of(repeat, lambda: ctx.fit(flows).transform(flows))
        report(f"{DEFAULT_SPLITTER} split + {DEFAULT_FEATURE} + context", n, t_split + t_ctx,
               f"(feature alone {t_ctx * 1e3:.1f} ms, {n / t_ctx:,.0f}/s, X {X.shape})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench-data"))
    args = ap.parse_args()

    from make_capture import make_captures

    pcap = make_captures(args.out, args.packets)["pcap"]
    reader = NativeReader()
    t_read, packets = best_of(args.repeat, lambda: reader.read(str(pcap)))
    print(f"capture {pcap} ({pcap.stat().st_size / 1e6:.0f} MB)")
    report("native read", len(packets), t_read)
    bench_table("demo x N (native reader)", packets, args.repeat)

    def end_to_end():
        p = reader.read(str(pcap))
        fl = NetmlFlowSplitter().fit_split(p)
        return get_registry().create("feature", "iat", {}).fit(fl).transform(fl), len(p)

    t, (X, n) = best_of(args.repeat, end_to_end)
    print()
    report("end to end: read -> split -> IAT", n, t, f"X {X.shape}")

    def end_to_end_default(feature=DEFAULT_FEATURE):
        p = reader.read(str(pcap))
        fl = get_registry().create("flow_splitter", DEFAULT_SPLITTER, {}).fit(p).split(p)
        return get_registry().create("feature", feature, {}).fit(fl).transform(fl), len(p)

    t, (X, n) = best_of(args.repeat, end_to_end_default)
    report(f"end to end: read -> {DEFAULT_SPLITTER} -> {DEFAULT_FEATURE}", n, t, f"X {X.shape}")
    if get_registry().resolve_name("feature", "context") is not None:  # host context, when installed
        t, (X, n) = best_of(args.repeat, lambda: end_to_end_default("context"))
        report(f"end to end: read -> {DEFAULT_SPLITTER} -> {DEFAULT_FEATURE} + context", n, t, f"X {X.shape}")

    bench_table("synthetic (many short flows, unsorted)", synthetic(args.packets), args.repeat)


if __name__ == "__main__":
    main()
