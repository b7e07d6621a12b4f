"""Host context over flows that arrive as they end (``netml classify`` on a live or large capture).

A flow's context counts the flows of its hosts that started up to its own start, with their packets,
bytes and whether they were answered: known only once those flows have ended. So a flow waits until
every flow that started before it has ended; the splitter's stream says when that is (the earliest
start among its open flows). Then its row is the one the whole capture gives: the same windows over
the same flows, in the same order (start, then 5-tuple).

Past flows are kept as summaries (``Summary``), not packets: those that started within the longest
window of the oldest flow still to come, plus the last ``max_gaps`` flows of every host pair seen
within ``max_gap`` (the beacon gaps look that far back). Their "new pair / new port" flags are kept as
computed, since the flows before them that decided those flags may be gone. Memory: the flows of
the last window plus ``max_gaps`` summaries per host pair of the last ``max_gap`` seconds, and the
ended flows still waiting.
"""

from __future__ import annotations

import numpy as np

from netml_core import segments as seg
from netml_core.flowtable import FlowKeys, FlowTable

from .windows import NS, Summary, canonical_order, context_rows

#: waiting chunks (one per push, and leftovers) above which they are joined into one
MAX_CHUNKS = 64


class ContextStream:
    """``push(flows, complete_before_ns)`` takes flows that ended and gives ``(flows, rows)`` of those
    whose context is now final; ``finish(flows)`` takes the last ones and gives all that wait."""

    def __init__(self, feature):
        self.feature = feature
        self.base = feature._fitted_base()
        self.windows = feature._windows()
        self.max_window_ns = int(round(max(self.windows) * NS))
        self.max_gaps = int(feature.max_gaps)
        self.max_gap_s = float(feature.max_gap)
        self.history: Summary | None = None
        self.history_new: dict = {}
        # ended flows whose context is not final, in chunks as they came: (keys, rows, summaries,
        # earliest start); a release copies only the chunks it takes flows from
        self.waiting: list[tuple[FlowKeys, np.ndarray, Summary, int]] = []

    def push(self, flows: FlowTable, complete_before_ns: int | None) -> tuple[FlowKeys, np.ndarray]:
        """``complete_before_ns``: every flow that started before it has been pushed (None: not known
        yet). Flows come back as ``FlowKeys`` (keys and times): their packets are not kept waiting."""
        if len(flows):
            X = np.asarray(self.base.transform(flows), dtype=np.float64).reshape(len(flows), -1)
            self._wait(FlowKeys.of(flows), X, Summary.of(flows))
        if complete_before_ns is None:
            return self._none()
        return self._release(complete_before_ns)

    def finish(self, flows: FlowTable) -> tuple[FlowKeys, np.ndarray]:
        """The last flows (end of input): every flow's context is final."""
        self.push(flows, None)
        return self._release(None)

    @property
    def waiting_flows(self) -> int:
        return sum(len(w[0]) for w in self.waiting)

    def no_flows(self) -> FlowKeys:
        """No flows, to push when none ended but waiting ones may now be final."""
        return FlowKeys.empty()

    def _none(self) -> tuple[FlowKeys, np.ndarray]:
        return FlowKeys.empty(), np.zeros((0, int(self.feature.n_features_)))

    def _wait(self, flows: FlowKeys, X: np.ndarray, summary: Summary) -> None:
        self.waiting.append((flows, X, summary, int(summary.start.min())))

    def _release(self, before: int | None) -> tuple[FlowKeys, np.ndarray]:
        """The waiting flows that started before ``before`` (all if None), with their rows; the
        others keep waiting, in their order."""
        chunks, self.waiting = self.waiting, []
        parts = []
        for flows, X, summary, first in chunks:
            if before is not None and first >= before:
                self.waiting.append((flows, X, summary, first))  # none final: kept as it is, not copied
                continue
            final = np.ones(len(summary), dtype=bool) if before is None else summary.start < before
            if final.all():
                parts.append((flows, X, summary))
                continue
            take, rest = np.flatnonzero(final), np.flatnonzero(~final)
            parts.append((flows.subset(take), X[take], summary.take(take)))
            self._wait(flows.subset(rest), X[rest], summary.take(rest))
        if len(self.waiting) > MAX_CHUNKS:  # many small leftovers: one chunk again
            flows, X, summary, _ = zip(*self.waiting)
            self.waiting = []
            self._wait(FlowKeys.concat(list(flows)), np.vstack(X), Summary.concat(list(summary)))
        if not parts:
            return self._none()
        flows = FlowKeys.concat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        X = np.vstack([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        done = Summary.concat([p[2] for p in parts]) if len(parts) > 1 else parts[0][2]
        n_old = 0 if self.history is None else len(self.history)
        table = done if self.history is None else Summary.concat([self.history, done])
        known = None
        if n_old:
            rows = np.zeros(len(table), dtype=bool)
            rows[:n_old] = True
            known = {"rows": rows, **self.history_new}  # the past flows' flags, as first computed
        # rows of the released flows only; the past ones are their context
        C, flags = context_rows(table, self.windows, self.max_gaps, log=self.feature.log, known_new=known,
                                max_gap=self.max_gap_s, want=np.arange(n_old, len(table)))
        out = (flows, np.ascontiguousarray(np.hstack([X, C])))
        keep = self._keep(table, before)
        self.history = table.take(keep)
        self.history_new = {w: (d[keep], p[keep]) for w, (d, p) in flags.items()}
        return out

    def _keep(self, table: Summary, before: int | None) -> np.ndarray:
        """Past flows a later flow's context can still use: those within the longest window of the
        earliest start to come, and the last ``max_gaps`` of each host pair whose newest flow is
        within ``max_gap`` of it (an older one ends the pair's series of beacon gaps anyway)."""
        if before is None:
            return np.zeros(len(table), dtype=bool)
        keep = table.start > before - self.max_window_ns
        perm, offsets = seg.group_rows([table.src, table.dst], order=canonical_order(table))
        sizes = np.diff(offsets)
        rank_from_end = np.repeat(offsets[1:], sizes) - np.arange(len(perm))  # 1 for a pair's newest
        newest = np.repeat(table.start[perm[offsets[1:] - 1]], sizes)
        recent_pair = newest >= before - int(round(self.max_gap_s * NS))
        keep[perm[(rank_from_end <= self.max_gaps) & recent_pair]] = True
        return keep

