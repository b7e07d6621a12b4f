"""``FlowTable``: flows as CSR slices of a time-sorted packet order.

Flow ``i`` is ``packets.take(order[offsets[i]:offsets[i+1]])``; every per-flow quantity is computed
with segment reductions over ``order`` (``np.add.reduceat``, ``np.diff`` ...), never a Python loop
over packets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .packets import PacketTable


@dataclass
class FlowTable:
    """Flow keys (one row per flow) plus CSR offsets into ``order``.

    Keys follow the splitter's direction: for ``uni`` they are the directional 5-tuple of the
    packets; for ``bi`` the endpoint that sent the first packet is ``src``. ``direction`` (same
    length as ``order``, only for ``bi``) is 0 for packets sent by ``src`` and 1 for the reverse.
    """

    packets: PacketTable
    order: np.ndarray  # int64 packet indices, grouped by flow, time-sorted within a flow
    offsets: np.ndarray  # int64, len n_flows + 1
    src: np.ndarray  # (n_flows, 2) uint64
    dst: np.ndarray
    sport: np.ndarray  # uint16
    dport: np.ndarray
    proto: np.ndarray  # uint8
    ip_version: np.ndarray  # uint8
    direction: np.ndarray | None = None
    meta: dict = field(default_factory=dict)  # e.g. {"interval": 5.77, "dropped_tails": 12}

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_pkts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def two_way(self) -> bool:
        """Each flow holds both directions (a ``bi`` splitter): labels match either direction."""
        return self.direction is not None

    def column(self, name: str) -> np.ndarray:
        """A packet column in flow order (``order`` applied), ready for segment reductions."""
        if name == "ts":
            return self.packets.ts[self.order]
        return getattr(self.packets, name)[self.order]

    @property
    def first_ts(self) -> np.ndarray:
        ts = self.column("ts")
        return ts[self.offsets[:-1]] if len(self) else np.zeros(0)

    @property
    def last_ts(self) -> np.ndarray:
        ts = self.column("ts")
        return ts[self.offsets[1:] - 1] if len(self) else np.zeros(0)

    def subset(self, index) -> "FlowTable":
        """Flows ``index`` (bool mask or integer array, in the given order), packets shared."""
        idx = np.arange(len(self))[index]
        starts, stops = self.offsets[idx], self.offsets[idx + 1]
        lengths = stops - starts
        new_offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        # gather positions of each kept segment without a Python loop
        pos = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
        direction = None if self.direction is None else self.direction[pos]
        return FlowTable(
            packets=self.packets,
            order=self.order[pos],
            offsets=new_offsets,
            src=self.src[idx],
            dst=self.dst[idx],
            sport=self.sport[idx],
            dport=self.dport[idx],
            proto=self.proto[idx],
            ip_version=self.ip_version[idx],
            direction=direction,
            meta=dict(self.meta),
        )

    @classmethod
    def concat(cls, tables: Sequence["FlowTable"]) -> "FlowTable":
        """Join the FlowTables of several captures into one (packets concatenated, offsets shifted)."""
        if len(tables) == 1:
            return tables[0]
        packets = PacketTable.concat([t.packets for t in tables])
        pkt_base = np.cumsum([0] + [len(t.packets) for t in tables[:-1]])
        ord_base = np.cumsum([0] + [len(t.order) for t in tables[:-1]])
        order = np.concatenate([t.order + b for t, b in zip(tables, pkt_base)]).astype(np.int64)
        offsets = np.concatenate([[0]] + [t.offsets[1:] + b for t, b in zip(tables, ord_base)]).astype(np.int64)
        direction = None
        if all(t.direction is not None for t in tables):
            direction = np.concatenate([t.direction for t in tables])
        meta: dict[str, Any] = {}
        for t in tables:
            for k, v in t.meta.items():
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and isinstance(meta.get(k, 0), (int, np.integer)):
                    meta[k] = meta.get(k, 0) + int(v)
                else:
                    meta.setdefault(k, v)
        return cls(
            packets=packets, order=order, offsets=offsets,
            src=np.concatenate([t.src for t in tables]), dst=np.concatenate([t.dst for t in tables]),
            sport=np.concatenate([t.sport for t in tables]), dport=np.concatenate([t.dport for t in tables]),
            proto=np.concatenate([t.proto for t in tables]),
            ip_version=np.concatenate([t.ip_version for t in tables]),
            direction=direction, meta=meta,
        )


class FlowKeys:
    """Key arrays and times of flows whose packets are no longer held (streamed extraction, flows
    waiting for their host context): what the features file, the report, training and classify's
    output need of a ``FlowTable``. ``two_way`` is the ``FlowTable``'s (label sources need it)."""

    FIELDS = ("src", "dst", "sport", "dport", "proto", "first_ts", "last_ts", "n_pkts")

    def __init__(self, two_way: bool = False, **arrays):
        self.two_way = bool(two_way)
        for k in self.FIELDS:
            setattr(self, k, arrays[k])

    @classmethod
    def of(cls, flows: FlowTable) -> "FlowKeys":
        return cls(two_way=flows.two_way, **{k: getattr(flows, k) for k in cls.FIELDS})

    @classmethod
    def empty(cls) -> "FlowKeys":
        z = np.zeros(0, dtype=np.int64)
        return cls(src=np.zeros((0, 2), np.uint64), dst=np.zeros((0, 2), np.uint64), sport=z.astype(np.uint16),
                   dport=z.astype(np.uint16), proto=z.astype(np.uint8), first_ts=np.zeros(0), last_ts=np.zeros(0),
                   n_pkts=z)

    @classmethod
    def concat(cls, parts: Sequence["FlowKeys"]) -> "FlowKeys":
        return cls(two_way=any(p.two_way for p in parts),
                   **{k: np.concatenate([getattr(p, k) for p in parts]) for k in cls.FIELDS})

    def subset(self, index) -> "FlowKeys":
        return FlowKeys(two_way=self.two_way, **{k: getattr(self, k)[index] for k in self.FIELDS})

    def __len__(self) -> int:
        return len(self.sport)

    def __getitem__(self, name: str) -> np.ndarray:
        return getattr(self, name)
