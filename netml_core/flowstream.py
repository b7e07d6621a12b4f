"""What every splitter's stream state shares: the packets of open flows carried across batches.

A stream state takes a time-ordered capture batch by batch. Each ``push`` joins the carried
packets to the new batch, lets the splitter decide which flows have ended (``_emit``, its own
rule), gives those and carries the packets of the rest; ``flush`` ends everything at the end of
input. Splitters subclass it (``FlowMeterStream``, ``NetmlStream``) and implement ``_emit``.
"""

from __future__ import annotations

import numpy as np

from .flowtable import FlowTable
from .packets import PacketTable


class FlowStream:
    """Open flows carried across batches; ``push`` gives the flows that ended, ``flush`` the rest."""

    def __init__(self, splitter):
        self.splitter = splitter
        self.carry: PacketTable | None = None
        self.carry_seq = np.zeros(0, np.int64)  # position in the input of each carried packet
        self._table_seq = self.carry_seq  # the same for the table being split now
        self.emitted_seq = np.zeros(0, np.int64)  # the same for the packets of the flows given last
        self.flows_out = 0
        self.packets_in = 0
        #: a packet came older than one before it: the flows may then differ from ``split`` on the
        #: whole input (which sorts by time first)
        self.disordered = False
        #: the newest packet time seen (ns): a splitter that ends flows on time reads it as "now"
        self.watermark: int | None = None

    @property
    def open_packets(self) -> int:
        return 0 if self.carry is None else len(self.carry)

    @property
    def complete_before_ns(self) -> int | None:
        """Every flow that started before this time (ns) has been given by ``push``: the earliest
        packet carried (the first of the oldest open flow), else the newest packet seen; None before
        any packet. A feature that looks at the flows around each flow (host context)
        waits for it."""
        if self.carry is not None and len(self.carry):
            return int(self.carry.ts_ns.min())
        return self.watermark

    def push(self, batch: PacketTable) -> FlowTable:
        seq = np.arange(self.packets_in, self.packets_in + len(batch), dtype=np.int64)
        self.packets_in += len(batch)
        if len(batch):
            ts = batch.ts_ns
            if (self.watermark is not None and int(ts[0]) < self.watermark) or bool(np.any(ts[1:] < ts[:-1])):
                self.disordered = True
            self.watermark = max(int(ts.max()), self.watermark if self.watermark is not None else int(ts[0]))
        table = batch if self.carry is None else PacketTable.concat([self.carry, batch])
        self._table_seq = seq if self.carry is None else np.concatenate([self.carry_seq, seq])
        return self._count(self._emit(table, final=False))

    def flush(self) -> FlowTable:
        self._table_seq = self.carry_seq
        return self._count(self._emit(self.carry if self.carry is not None else PacketTable.empty(), final=True))

    def expire(self, clock_ns: int) -> FlowTable | None:
        """Flows that have ended by ``clock_ns`` though no newer packet came (a live capture whose
        link went quiet); ``None`` when the splitter's flows do not end on time alone."""
        return None

    def _emit(self, table: PacketTable, final: bool) -> FlowTable:
        raise NotImplementedError

    def _carry_open(self, table: PacketTable, perm: np.ndarray, sizes: np.ndarray, is_open: np.ndarray) -> None:
        """Keep the packets of the open segments (``perm`` grouped by ``sizes``) for the next batch,
        in their original order."""
        rows = np.sort(perm[np.repeat(is_open, sizes)]) if len(sizes) else np.zeros(0, np.int64)
        self.carry = table.take(rows) if len(rows) else None
        self.carry_seq = self._table_seq[rows]

    def _count(self, flows: FlowTable) -> FlowTable:
        self.flows_out += len(flows)
        return flows
