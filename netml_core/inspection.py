"""What ``netml inspect`` reports of a capture, counted batch by batch.

Peak memory is one packet batch plus the distinct directional 5-tuples seen so far (five uint64
words each): packet counts, link types, skipped reasons, damage and times are sums or extremes
over batches, and the 5-tuples are merged into one unique array as batches come (``RowSet``).
``describe_tables`` takes any sequence of PacketTables, so the streamed description and the one of
the whole capture read at once (``reader.read``) come from the same code and can be compared.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .packets import PacketTable
from .segments import RowSet, unique_keys

#: packets per batch: a few MiB of columns; the merged 5-tuples dominate memory beyond that
INSPECT_BATCH_PACKETS = 65_536


def flow_keys(t: PacketTable) -> np.ndarray:
    """One row per distinct directional 5-tuple: proto and ports in one word, src, dst (2 words each)."""
    keys = np.empty((len(t), 5), np.uint64)
    keys[:, 0] = (t.proto.astype(np.uint64) << np.uint64(32)) | (t.sport.astype(np.uint64) << np.uint64(16)) | t.dport
    keys[:, 1:3] = t.src
    keys[:, 3:5] = t.dst
    return unique_keys([keys])


def conversations(keys: np.ndarray) -> int:
    """Distinct 5-tuples with the two endpoints unordered (tshark's "conversations")."""
    if not len(keys):
        return 0
    proto = keys[:, 0] >> np.uint64(32)
    sport = (keys[:, 0] >> np.uint64(16)) & np.uint64(0xFFFF)
    dport = keys[:, 0] & np.uint64(0xFFFF)
    a = np.column_stack([keys[:, 1], keys[:, 2], sport])
    b = np.column_stack([keys[:, 3], keys[:, 4], dport])
    a_first = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (
        (a[:, 1] < b[:, 1]) | ((a[:, 1] == b[:, 1]) & (a[:, 2] <= b[:, 2]))))
    lo = np.where(a_first[:, None], a, b)
    hi = np.where(a_first[:, None], b, a)
    return int(len(unique_keys([np.column_stack([proto, lo, hi])])))


def describe(reader, source, reader_name: str = "", batch_packets: int = INSPECT_BATCH_PACKETS,
             on_batch=None) -> dict:
    """The ``netml inspect --json`` object for ``source`` read by ``reader`` batch by batch."""
    return describe_tables(reader.iter_batches(source, batch_packets), reader_name, on_batch)


def describe_tables(tables: Iterable[PacketTable], reader_name: str = "", on_batch=None) -> dict:
    """The ``--json`` object of the packet batches ``tables`` of one capture (in reading order)."""
    counts = {"ipv4_tcp": 0, "ipv4_udp": 0, "ipv6_tcp": 0, "ipv6_udp": 0}
    link_types: dict[int, int] = {}
    skipped: dict[str, int] = {}
    damage: list[str] = []
    records = kept = 0
    first = last = None
    keys = RowSet(5)
    fmt = src = ""
    for t in tables:
        if on_batch is not None:
            on_batch(t)
        fmt, src = t.format or fmt, t.source or src
        records += t.records
        kept += len(t)
        for k, v in t.counts().items():
            counts[k] += v
        for k, v in t.link_types.items():
            link_types[k] = link_types.get(k, 0) + v
        for k, v in t.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
        damage.extend(d for d in t.damage if d not in damage)
        if len(t):
            lo, hi = int(t.ts_ns.min()), int(t.ts_ns.max())
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
            keys.add(flow_keys(t))
    all_keys = keys.unique()
    return {
        "source": src,
        "reader": reader_name,
        "format": fmt,
        "link_types": {str(k): v for k, v in sorted(link_types.items())},
        "packets": records,
        "kept": kept,
        **counts,
        "skipped": dict(sorted(skipped.items())),
        "damage": damage,
        "first_ts": None if first is None else seconds(first),
        "last_ts": None if last is None else seconds(last),
        "first_ts_ns": first,
        "last_ts_ns": last,
        "duration": None if first is None else (last - first) / 1e9,
        "flows": int(len(all_keys)),
        "conversations": conversations(all_keys),
    }


def seconds(ns: int) -> float:
    """Epoch nanoseconds -> the same float64 seconds ``PacketTable.ts`` gives."""
    sec, frac = divmod(ns, 1_000_000_000)
    return float(np.float64(sec) + np.float64(frac) / 1e9)
