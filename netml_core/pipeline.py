"""``Pipeline``: reader -> flow splitter -> feature -> scaler -> detector, fitted and saved whole.

Every component is looked up by name through the plugin registry, so a pipeline is fully described
by five (name, params) pairs plus each component's fitted state; that is exactly what a model file
holds, and why ``netml classify`` rebuilds the training feature space (same sub-flow interval,
same feature width, same scaler, same threshold) instead of re-learning it per capture.

Each stage is a pure function of its input and the fitted state (no globals, no I/O besides the
reader), so a capture, or a time slice of one, can later be shipped to a Dask worker and the
per-flow rows concatenated.

Fitting follows the original netml where it matters for identical numbers: the splitter's interval
is learned on all packets of the training captures; with labels, flows that no label matches are
dropped *before* the feature learns its width (the original's width comes from the labelled
flows); without labels every flow is used.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .defaults import DEFAULT_ALGORITHM, DEFAULT_FEATURE, DEFAULT_READER, DEFAULT_SPLITTER
from .errors import NetmlError, NotFittedError, ParameterError
from .flowtable import FlowKeys, FlowTable
from .model_file import ComponentRecord, ModelContents, read_model, write_model
from .packets import PacketTable

log = logging.getLogger("netml.pipeline")

#: packets per batch when classifying as a stream: small enough that a flow's verdict comes soon
#: after it ends on a live capture, large enough that numpy's per-call cost stays negligible
STREAM_BATCH_PACKETS = 65_536

#: the plugin-provided roles, in data-flow order, with their registry kind
PLUGIN_ROLES = ("reader", "flow_splitter", "feature", "detector")
ROLES = ("reader", "flow_splitter", "feature", "scaler", "detector")
FRONT_ROLES = ("reader", "flow_splitter", "feature")


@dataclass
class Extracted:
    """Flows of one or more captures and their feature rows (row i describes flow i).

    ``y`` is int64 (0 normal, 1 anomalous) when labels were given, else ``None``. ``capture`` holds
    each flow's index into the list of sources. ``counts`` says what was dropped and why.
    """

    flows: FlowTable
    X: np.ndarray
    y: np.ndarray | None = None
    capture: np.ndarray | None = None
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Classified:
    """Per-flow verdicts of ``Pipeline.classify``: scores (higher = more anomalous) and 0/1 flags."""

    flows: FlowTable
    scores: np.ndarray
    anomalous: np.ndarray
    threshold: float
    X: np.ndarray | None = None  # the feature rows that were scored (unscaled)


class ClassifyStream:
    """The iterator ``Pipeline.classify_stream`` returns: ``ExtractStream``'s final flows and rows,
    scored, one ``Classified`` per batch; ``finish()`` flushes the open flows (Ctrl-C)."""

    def __init__(self, pipe: "Pipeline", state, source, max_packets: int, stats: dict | None,
                 wall_clock: bool = True, on_batch=None):
        self.pipe = pipe
        self.stats = stats if stats is not None else {}
        self.extract = ExtractStream(pipe, source, max_packets, on_batch, state=state, wall_clock=wall_clock)

    @property
    def state(self):
        """The splitter's stream state (the extract stream's)."""
        return self.extract.state

    @property
    def finished(self) -> bool:
        return self.extract.finished

    def __iter__(self) -> Iterator[Classified]:
        for _batch, _ended, flows, X in self.extract:
            yield self._score(flows, X)

    def finish(self) -> Classified:
        """Score the flows still open (end of input, or the reader was interrupted)."""
        _batch, _ended, flows, X = self.extract.finish()
        return self._score(flows, X)

    def _score(self, flows, X) -> Classified:
        result = self.pipe._score_flows(flows, X)
        self.stats.update(packets=self.state.packets_in, evicted=getattr(self.state, "evicted", 0),
                          disordered=getattr(self.state, "disordered", False))
        return result


def _match(given: FlowKeys, wanted: FlowKeys) -> np.ndarray:
    """Index into ``given`` of each flow of ``wanted`` (the same flows; a flow is its 5-tuple and
    first packet time)."""
    def order(k):
        cols = [k.first_ts, k.proto, k.dport, k.sport, *k.dst.T, *k.src.T]
        return np.lexsort(cols[::-1])

    g, w = order(given), order(wanted)
    out = np.empty(len(wanted), dtype=np.int64)
    out[w] = g
    return out


def _ended_keys(flows: FlowTable, seq: np.ndarray, labels) -> tuple:
    """Keys, labels (zeros without labels), first packet time and input position of ended flows
    (``seq``: input position of each row of ``flows.packets``): what streamed training keeps of them."""
    y = np.asarray(labels.labels_for(flows), dtype=np.int64) if labels is not None else np.zeros(len(flows), np.int64)
    heads = flows.order[flows.offsets[:-1]]
    return FlowKeys.of(flows), y, flows.packets.ts_ns[heads], seq[heads]


class ExtractStream:
    """The one loop of every streamed pipeline (``extract_stream``, ``classify_stream``, streamed
    ``fit_extract``): per packet batch read, ``(batch, ended, flows, X)``: ``ended`` the flows the
    splitter ended (packets included), ``flows`` and ``X`` the flows whose rows are final and those
    rows (``ended`` itself for a per-flow feature; with host context, the ``FlowKeys`` of flows whose
    neighbours have all ended). The last item, with ``batch`` None, gives the flows open at the end
    of input (``finish()`` gives it early). Afterwards ``state.disordered`` says the capture was not
    in time order (its flows may then differ from ``extract``'s).

    ``state``: the splitter's stream state (a new one if None). ``wall_clock``: on a live source that
    goes silent (the reader yields empty batches, ticks), flows are ended on an estimate of the
    capture clock, the newest packet's time plus the wall time since it arrived, so that a quiet
    link's last flows end when their idle timeout passes rather than when the next packet comes.
    ``fit``: training; the feature (which learns nothing from flows) is fitted on the first flows
    that end, and ``X`` is None until then.
    """

    def __init__(self, pipe: "Pipeline", source, batch_packets: int, on_batch=None, *, state=None,
                 wall_clock: bool = False, fit: bool = False):
        self.pipe, self.source, self.batch_packets, self.on_batch = pipe, source, batch_packets, on_batch
        self.state = pipe.flow_splitter.stream() if state is None else state
        self.wall_clock = wall_clock
        self.fitted = not fit
        self.context = _context_stream(pipe) if self.fitted else None
        self.finished = False
        self.format = "?"  # the capture's format, once a batch was read
        self._arrived = 0.0  # when the stream's newest packet (``state.watermark``) arrived (monotonic s)

    def __iter__(self) -> Iterator[tuple]:
        state = self.state
        for batch in self.pipe.reader.iter_batches(self.source, self.batch_packets):
            if self.finished:
                return
            self.format = batch.format or self.format
            if self.on_batch is not None:
                self.on_batch(batch)
            if len(batch):
                if state.watermark is None or int(batch.ts_ns.max()) >= state.watermark:
                    self._arrived = time.monotonic()  # a packet as new as any: the clock starts again
                ended = state.push(batch)
                before = state.complete_before_ns
            elif self.wall_clock and state.watermark is not None:  # a tick: the source is silent
                clock = state.watermark + int((time.monotonic() - self._arrived) * 1e9)
                ended = state.expire(clock)
                if ended is None and self.context is not None and self.context.waiting_flows:
                    ended = self.context.no_flows()  # nothing ended, but waiting context may now be final
                if ended is None:
                    continue
                # with no flow open, every flow started before the wall-clock estimate
                before = state.complete_before_ns
                if state.open_packets == 0:
                    before = clock if before is None else max(before, clock)
            else:
                continue
            item = (batch, ended, *self._final(ended, before))
            del ended  # the flows' packets are not held while the next batch is read (nor the item, once taken)
            yield item
            del item
        if not self.finished:
            yield self.finish()

    def finish(self) -> tuple:
        """The flows still open (end of input, or the reader was interrupted), as the last item."""
        self.finished = True
        ended = self.state.flush()
        return (None, ended, *self._final(ended, None, last=True))

    def _final(self, ended, before: int | None, last: bool = False) -> tuple:
        if not self.fitted:
            if not len(ended):
                return ended, None
            self.pipe.feature.fit(ended)  # learns nothing from the flows (``learns_from_flows``)
            self.fitted = True
            self.context = _context_stream(self.pipe)
        if self.context is None:
            return ended, self.pipe.rows(ended)
        return self.context.finish(ended) if last else self.context.push(ended, before)


def _context_stream(pipe: "Pipeline"):
    """The stream state of a feature that looks at the flows around each flow (host context), else None."""
    if not getattr(pipe.feature, "per_flow", False) and hasattr(pipe.feature, "stream"):
        return pipe.feature.stream(pipe.flow_splitter)
    return None


def _rereadable(source) -> bool:
    """A path (not stdin): a capture found out of time order while streamed can be read again whole."""
    import os

    return isinstance(source, (str, os.PathLike)) and str(source) != "-"


def _rows_in_order(blocks: list, order: np.ndarray) -> np.ndarray:
    """``concatenate(blocks)[order]``, emptying ``blocks`` as it goes: each block is written to its
    rows of the result and freed, so memory holds about one copy of the rows, not two."""
    if len(blocks) == 1 and bool(np.all(order == np.arange(len(order)))):
        return blocks.pop()
    dest = np.empty(len(order), dtype=np.int64)
    dest[order] = np.arange(len(order))
    out = np.empty((len(order), blocks[0].shape[1]), dtype=np.float64)  # pages are taken as rows land
    at = 0
    while blocks:
        b = blocks.pop(0)
        out[dest[at:at + len(b)]] = b
        at += len(b)
    return out


def _concat_parts(parts: list):
    return FlowKeys.concat(parts) if isinstance(parts[0], FlowKeys) else np.concatenate(parts)


def _registry():
    from .registry import get_registry

    return get_registry()


class Pipeline:
    """A reader, flow splitter, feature, scaler and detector, each given by name and parameters.

    ``detector=None`` builds the front half only (``netml learn extract``). The scaler defaults to
    the detector class's ``default_scaler``.
    """

    def __init__(
        self,
        *,
        reader: str = DEFAULT_READER,
        reader_params: dict | None = None,
        flow_splitter: str = DEFAULT_SPLITTER,
        flow_splitter_params: dict | None = None,
        feature: str = DEFAULT_FEATURE,
        feature_params: dict | None = None,
        scaler: str | None = None,
        detector: str | None = DEFAULT_ALGORITHM,
        detector_params: dict | None = None,
    ) -> None:
        reg = _registry()
        self.names: dict[str, str | None] = {}
        self.components: dict[str, Any] = {}
        for role, name, params in (
            ("reader", reader, reader_params),
            ("flow_splitter", flow_splitter, flow_splitter_params),
            ("feature", feature, feature_params),
            ("detector", detector, detector_params),
        ):
            if name is None:
                self.names[role], self.components[role] = None, None
                continue
            info = reg.get(role, name)  # unknown name -> one line listing the installed ones
            self.names[role] = info.name
            self.components[role] = reg.create(role, info.name, params)
        if scaler is None and self.names["detector"] is not None:
            scaler = default_scaler(self.names["detector"])
        self.names["scaler"] = scaler
        self.components["scaler"] = _make_scaler(scaler) if scaler is not None else None
        self.front_fitted = False
        #: a ``netml_core.distributed.DaskRunner`` (``--workers``/``--scheduler``): extraction on Dask
        self.dask = None

    # -- accessors -----------------------------------------------------------------------------
    @property
    def reader(self):
        return self.components["reader"]

    @property
    def flow_splitter(self):
        return self.components["flow_splitter"]

    @property
    def feature(self):
        return self.components["feature"]

    @property
    def scaler(self):
        return self.components["scaler"]

    @property
    def detector(self):
        return self.components["detector"]

    def describe(self) -> str:
        """``reader=native splitter=netml feature=iat scaler=standard detector=ocsvm``."""
        return " ".join(f"{r.replace('flow_', '')}={self.names.get(r) or '-'}" for r in ROLES)

    # -- front half: capture -> flows -> X ------------------------------------------------------
    def read(self, source) -> PacketTable:
        """Packets of one capture (path, ``-`` for stdin, or a binary file object)."""
        t0 = time.perf_counter()
        packets = self.reader.read(source)
        log.info("read %s: %d packets (%s) in %.3f s", _label(source), len(packets),
                 packets.format or "?", time.perf_counter() - t0)
        if packets.skipped:
            log.debug("skipped packets: %s", packets.skipped)
        return packets

    def fit_extract(self, sources: Sequence, labels: Sequence | None = None, *, stream: bool = False,
                    on_batch=None, batch_packets: int = STREAM_BATCH_PACKETS) -> Extracted:
        """Fit splitter and feature on the training captures and return their feature rows.

        ``labels`` (one label source per capture, each with ``labels_for(flows)``) or ``None``.
        With labels, unmatched flows (-1) are dropped before the feature is fitted.
        ``stream=True`` reads the captures batch by batch when ``can_stream_fit()`` (memory: a batch,
        the open flows and the rows; the result is the same), else it is ignored. ``on_batch`` is
        called with each packet batch read then (progress).
        """
        if getattr(self, "dask", None) is not None:  # --workers / --scheduler: netml_core.distributed
            from .distributed import fit_extract

            return fit_extract(self, sources, labels)
        check_sources(sources, labels)
        if stream and self.can_stream_fit() and all(_rereadable(s) for s in sources):
            return self._fit_extract_streamed(sources, labels, on_batch, batch_packets)
        t0 = time.perf_counter()
        packet_tables = [self.read(s) for s in sources]
        self.flow_splitter.fit(PacketTable.concat(packet_tables) if len(packet_tables) > 1 else packet_tables[0])
        if getattr(self.flow_splitter, "interval_", None) == 0.0:
            # every later packet gap exceeds 0 s: the model would find no flow in any other capture
            log.warning("warning: the learned sub-flow interval is 0 s: the training flows have no duration "
                        "(packets without timestamps, e.g. pcapng simple packet blocks?); other captures "
                        "will give no flows with this model")
        per_capture = [self.flow_splitter.split(p) for p in packet_tables]
        counts = {"packets": int(sum(len(p) for p in packet_tables))}
        flows, y, capture, keep = self.labelled_flows(sources, labels, per_capture, counts)
        self.feature.fit(flows)
        if getattr(self.feature, "per_flow", False):
            X = np.asarray(self.feature.transform(flows), dtype=np.float64)
        else:
            # rows that depend on the other flows (host context) see every flow of their own capture,
            # labelled or not, as they will in classify
            X = np.vstack([np.asarray(self.feature.transform(ft), dtype=np.float64).reshape(len(ft), -1)
                           for ft in per_capture if len(ft)])
            X = X if keep is None else X[keep]
        self.front_fitted = True
        log.info("feature %s: %d flows x %d values", self.names["feature"], X.shape[0], X.shape[1])
        return Extracted(flows=flows, X=X, y=y, capture=capture, counts=counts,
                         seconds=time.perf_counter() - t0)

    def labelled_flows(self, sources, labels, per_capture: list, counts: dict):
        """The training flows of all captures (with labels: the matched ones only) with their
        labels, capture indexes and the mask of kept flows (``None``: all); one-line errors when
        none is left (``_check_flows``). ``counts`` gets ``flows`` (and ``unlabelled_dropped``)."""
        flows = FlowTable.concat(per_capture)
        counts["flows"] = len(flows)
        y = None
        if labels is not None:
            y = np.concatenate([np.asarray(lab.labels_for(ft), dtype=np.int64)
                                for lab, ft in zip(labels, per_capture)]) if len(flows) else np.zeros(0, np.int64)
        keep = self._check_flows(sources, labels, [len(f) for f in per_capture], y, counts)
        capture = np.repeat(np.arange(len(per_capture)), [len(f) for f in per_capture])
        if keep is not None:
            flows, y, capture = flows.subset(keep), y[keep], capture[keep]
        return flows, y, capture, keep

    def can_stream_fit(self) -> bool:
        """True when training can read captures batch by batch with the same result: the splitter
        streams and learns nothing from packets, the feature is per flow and learns nothing from
        flows (the default ``meter`` + ``flowstats``). netml's splitter learns its interval from all
        packets and the series features their width from all flows: they read whole captures."""
        return (self.can_stream() and not getattr(self.flow_splitter, "learns_from_packets", True)
                and not getattr(self.feature, "learns_from_flows", True))

    def _fit_extract_streamed(self, sources: Sequence, labels: Sequence | None, on_batch,
                              batch_packets: int) -> Extracted:
        """``fit_extract`` batch by batch: each flow's row is computed when the flow ends and only
        its key, row and label are kept; rows are then put in the whole-capture order (by first
        packet time, then position in the capture)."""
        t0 = time.perf_counter()
        self.flow_splitter.fit(PacketTable.empty())
        fitted = False  # the feature, on the first flows that end (of any capture)
        parts: list[tuple] = []  # (FlowKeys, y) of each capture with flows, in the whole-capture order
        rows: list[np.ndarray] = []  # their feature rows (kept apart so that they can be freed one by one)
        n_per: list[int] = []
        n_packets = 0
        for source, lab in zip(sources, labels if labels is not None else [None] * len(sources)):
            t_read = time.perf_counter()
            stream = ExtractStream(self, source, batch_packets, on_batch, fit=not fitted)
            meta: list[tuple] = []  # (FlowKeys, y, first time, first position) of each set of ended flows
            blocks: list[np.ndarray] = []  # rows: of those flows, or with host context as they become final
            final: list[FlowKeys] = []  # with host context, the flows of those rows
            for _batch, ended, flows, X in stream:
                if len(ended):
                    meta.append(_ended_keys(ended, stream.state.emitted_seq, lab))
                if X is not None and len(X):
                    blocks.append(X)
                    if stream.context is not None:  # keys only (per-flow rows are in the order of ``meta``)
                        final.append(flows)
                del _batch, ended, flows  # not held while the next batch is read
            fitted = stream.fitted
            state = stream.state
            n_packets += state.packets_in
            log.info("read %s: %d packets (%s) in %.3f s, split as it was read", _label(source), state.packets_in,
                     stream.format, time.perf_counter() - t_read)
            if state.disordered:  # the stream's flows are not the whole capture's: split it whole
                log.info("%s is not in time order: read whole to split it", _label(source))
                packets = self.read(source)
                whole = self.flow_splitter.split(packets)
                meta, blocks = [], []
                if len(whole):
                    if not fitted:
                        self.feature.fit(whole)
                        fitted = True
                    meta, blocks = [_ended_keys(whole, np.arange(len(packets)), lab)], [self.rows(whole)]
            elif stream.context is not None and meta:  # host context: rows in the order the flows ended
                blocks = [np.vstack(blocks)[_match(FlowKeys.concat(final), _concat_parts([m[0] for m in meta]))]]
            n_per.append(sum(len(b) for b in blocks))
            if blocks:
                keys, y, first_t, first_pos = (_concat_parts([m[i] for m in meta]) for i in range(4))
                order = np.lexsort((first_pos, first_t))
                parts.append((keys.subset(order), y[order]))
                rows.append(_rows_in_order(blocks, order))
        counts = {"packets": n_packets, "flows": sum(n_per)}
        y = np.concatenate([p[1] for p in parts]) if labels is not None and parts else np.zeros(0, np.int64)
        keep = self._check_flows(sources, labels, n_per, y if labels is not None else None, counts)
        flows = FlowKeys.concat([p[0] for p in parts])  # parts is not empty: _check_flows raised
        X = _rows_in_order(rows, np.arange(len(flows)))
        y = y if labels is not None else None
        capture = np.repeat(np.arange(len(n_per)), n_per)
        if keep is not None:
            flows, X, y, capture = flows.subset(keep), X[keep], y[keep], capture[keep]
        self.front_fitted = True
        log.info("feature %s: %d flows x %d values (streamed)", self.names["feature"], X.shape[0], X.shape[1])
        return Extracted(flows=flows, X=X, y=y, capture=capture, counts=counts, seconds=time.perf_counter() - t0)

    def _check_flows(self, sources, labels, n_per_capture: list[int], y, counts: dict) -> np.ndarray | None:
        """Which flows have a label (None without labels), after the checks that stop training:
        labels that match nothing, fewer than 2 labelled flows, no flow at all."""
        for src, n in zip(sources, n_per_capture):
            log.info("%s: %d flows", _label(src), n)
        keep = None
        n_flows = sum(n_per_capture)
        if labels is not None:
            keep = y >= 0
            counts["unlabelled_dropped"] = int(np.count_nonzero(~keep))
            if counts["unlabelled_dropped"]:
                log.info("dropped %d flows that no label matches", counts["unlabelled_dropped"])
            _warn_unlabelled(sources, labels, n_per_capture, keep)
            n_flows = int(np.count_nonzero(keep))
        if labels is not None and n_flows == 0 and counts["flows"]:
            raise NetmlError(f"no flow of {', '.join(_label(s) for s in sources)} matches a row of "
                             f"{', '.join(_label_source(lab) for lab in labels)}: is it the label file of this capture?")
        if labels is not None and 0 < n_flows < 2:
            raise NetmlError(f"only {n_flows} labelled flow in {', '.join(_label(s) for s in sources)} "
                             f"(labels: {', '.join(_label_source(lab) for lab in labels)}): a detector needs at "
                             "least 2; check that the label file describes this capture")
        if n_flows == 0:
            names = ", ".join(_label(s) for s in sources)
            if counts["packets"] == 0:
                raise NetmlError(f"no flows in {names}: no TCP/UDP packets")
            what = "no labelled flows" if labels is not None else "no flows"
            least = getattr(self.flow_splitter, "min_packets", None)
            why = f"no flow has at least {least} packets" if isinstance(least, int) and least > 1 else \
                f"after splitting with {self.names['flow_splitter']!r}"
            raise NetmlError(f"{what} in {names}: {why} ({counts['packets']} TCP/UDP packets)")
        return keep

    def extract(self, source) -> Extracted:
        """Flows and feature rows of a new capture with the fitted splitter and feature."""
        self._check_front_fitted()
        if getattr(self, "dask", None) is not None:
            from .distributed import extract

            return extract(self, source)
        t0 = time.perf_counter()
        packets = self.read(source)
        return self.extract_packets(packets, seconds_before=time.perf_counter() - t0, t0=t0)

    def extract_packets(self, packets: PacketTable, *, seconds_before: float = 0.0, t0: float | None = None) -> Extracted:
        """As ``extract`` for packets already read (a batch, a time slice on a worker)."""
        t0 = time.perf_counter() if t0 is None else t0
        flows = self.flow_splitter.split(packets)
        if len(flows) == 0:
            X = np.zeros((0, len(self.feature.feature_names())), dtype=np.float64)
        else:
            X = np.asarray(self.feature.transform(flows), dtype=np.float64)
        return Extracted(flows=flows, X=X, counts={"packets": len(packets), "flows": len(flows)},
                         seconds=time.perf_counter() - t0)

    def _check_front_fitted(self) -> None:
        if not self.front_fitted:
            raise NotFittedError("pipeline is not fitted yet: run fit_extract first")

    # -- back half: X -> scores -----------------------------------------------------------------
    def fit_detector(self, X: np.ndarray, *, fpr: float | None = None,
                     calibration_size: float | None = None, random_state: int | None = None) -> "Pipeline":
        """Fit the scaler, then the detector on the scaled rows; with ``fpr``, calibrate its threshold.

        ``fpr`` (a target false-positive rate) holds out ``calibration_size`` of the rows (all normal
        flows), fits scaler and detector on the rest and sets the threshold to the conformal
        ``(1 - fpr)`` quantile of the held-out scores: on new normal traffic like the training
        traffic at most ``fpr`` of the flows score above it. Scores of the rows a detector was fitted
        on are optimistic (an OCSVM or a KDE fits them tightly), so a threshold taken from them flags
        far more new normal flows than intended. Without ``fpr`` the detector's own
        ``contamination`` quantile of its training scores is kept (netml 0.x). What was done is in
        ``self.calibration_``.
        """
        if self.detector is None:
            raise ParameterError("this pipeline has no detector")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ParameterError(f"no training flows to fit the {self.names['detector']} detector on")
        if fpr is None:
            self._fit_rows(X)
            self.calibration_ = {"method": "contamination", "n_fit": int(len(X))}
            return self
        from .calibration import calibrate_threshold, split_calibration

        fit_idx, cal_idx = split_calibration(len(X), calibration_size, random_state)
        self._fit_rows(X[fit_idx])
        cal_rows = X[cal_idx] if len(cal_idx) else X[fit_idx]
        self.calibration_ = calibrate_threshold(self.score(cal_rows), fpr, held_out=bool(len(cal_idx)))
        self.calibration_["n_fit"] = int(len(fit_idx))
        self.detector.threshold_ = self.calibration_["threshold"]
        return self

    def _fit_rows(self, X: np.ndarray) -> None:
        if self.scaler is not None:
            self.scaler.fit(X)
        self.detector.fit(self._scale(X))

    def warm_up(self, X: np.ndarray, rows: int = 16) -> None:
        """Fit a throwaway copy of the detector on a few rows, so that the libraries it imports
        lazily (scikit-learn, torch: seconds when cold) are loaded before ``fit_detector`` is timed.
        The pipeline's own components are not touched; any failure is ignored, and the throwaway fit
        stays silent (its log lines, e.g. the autoencoder's loss per epoch at ``-v 2``, and its
        warnings would read as if they came from the real fit)."""
        import copy
        import warnings

        if self.detector is None or len(X) == 0:
            return
        previous = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sample = np.asarray(X[:rows], dtype=np.float64)
                scaler = copy.deepcopy(self.scaler)
                if scaler is not None:
                    sample = scaler.fit(sample).transform(sample)
                copy.deepcopy(self.detector).fit(sample)
        except Exception as exc:  # noqa: BLE001 - only a warm-up
            logging.disable(previous)
            log.debug("warm-up fit skipped: %s", exc)
        finally:
            logging.disable(previous)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return np.asarray(self.scaler.transform(X), dtype=np.float64) if self.scaler is not None else X

    def score(self, X: np.ndarray) -> np.ndarray:
        """Anomaly scores, higher = more anomalous."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.detector.score(self._scale(X)), dtype=np.float64)

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 for flows scored above the fitted threshold, else 0."""
        return (self.score(X) > self.threshold).astype(np.int64)

    def classify(self, source) -> Classified:
        """Score every flow of a new capture exactly as at training time."""
        ex = self.extract(source)
        scores = self.score(ex.X)
        return Classified(flows=ex.flows, scores=scores, anomalous=(scores > self.threshold).astype(np.int64),
                          threshold=self.threshold, X=ex.X)

    def can_stream(self) -> bool:
        """True when flows can be scored batch by batch as they end: a splitter with a ``stream()``
        state and a feature whose rows depend on each flow's own packets only, or one with a
        ``stream(splitter)`` state of its own for this splitter (host context on two-way flows)."""
        if not hasattr(self.flow_splitter, "stream"):
            return False
        if getattr(self.feature, "per_flow", False):
            return True
        streams_with = getattr(self.feature, "streams_with", None)
        return bool(streams_with is not None and streams_with(self.flow_splitter))

    def classify_stream(self, source, max_packets: int = STREAM_BATCH_PACKETS,
                        stats: dict | None = None, max_open_flows: int | None = None,
                        wall_clock: bool = True, on_batch=None) -> "ClassifyStream":
        """Score a capture batch by batch: iterating gives one ``Classified`` per batch with the
        flows that ended by then (the last one those still open at the end of input). Memory holds
        one batch plus the packets of open flows; on a time-ordered capture the flows and scores are
        those of ``classify``, in the order the flows ended. ``finish()`` ends it early (Ctrl-C):
        the open flows are scored as they are. ``wall_clock``: see ``ClassifyStream``."""
        self._check_front_fitted()
        if max_open_flows is None:
            state = self.flow_splitter.stream()
        else:
            try:
                state = self.flow_splitter.stream(max_open_flows=max_open_flows)
            except TypeError:
                raise ParameterError(f"splitter {self.names['flow_splitter']!r} cannot cap its open flows "
                                     "(--max-open-flows)") from None
        return ClassifyStream(self, state, source, max_packets, stats, wall_clock=wall_clock, on_batch=on_batch)

    def extract_stream(self, source, batch_packets: int = STREAM_BATCH_PACKETS, on_batch=None) -> ExtractStream:
        """Flows and feature rows of a capture batch by batch as the flows end (``can_stream()``);
        memory holds a batch, the open flows and what the caller keeps. See ``ExtractStream``."""
        self._check_front_fitted()
        if not self.can_stream():  # rows of a feature that needs the whole capture would differ
            raise ParameterError(f"feature {self.names['feature']!r} with splitter {self.names['flow_splitter']!r} "
                                 "cannot be extracted batch by batch")
        return ExtractStream(self, source, batch_packets, on_batch)

    def rows(self, flows: FlowTable) -> np.ndarray:
        """Feature rows of ``flows`` (a per-flow feature, or one capture's flows), ``(0, width)`` for none."""
        if len(flows) == 0:
            return np.zeros((0, len(self.feature.feature_names())), dtype=np.float64)
        return np.asarray(self.feature.transform(flows), dtype=np.float64)

    def _score_flows(self, flows: FlowTable, X: np.ndarray | None = None) -> Classified:
        if len(flows) == 0 or X is None:
            X = self.rows(flows)
        scores = self.score(X)
        return Classified(flows=flows, scores=scores, anomalous=(scores > self.threshold).astype(np.int64),
                          threshold=self.threshold, X=X)

    def host_alerts(self, result: Classified, by: str = "host") -> list[dict]:
        """Anomalous flows of ``result`` summarised per host (``by``: ``host``, ``src`` or ``dst``; see
        ``netml_core.alerts.host_alerts``)."""
        from .alerts import host_alerts

        names = None
        try:
            names = list(self.feature.feature_names())
        except (NotImplementedError, NetmlError):
            pass
        Z = self._scale(result.X) if result.X is not None and len(result.X) else None
        return host_alerts(result.flows, result.scores, result.anomalous, Z, names, by=by)

    # -- persistence ------------------------------------------------------------------------------
    def records(self, roles: Iterable[str] = ROLES) -> dict[str, ComponentRecord]:
        """Name, params, fitted state and provenance of each component, for a model file."""
        reg = _registry()
        out = {}
        for role in roles:
            comp, name = self.components.get(role), self.names.get(role)
            if comp is None or name is None:
                continue
            if role == "scaler":
                out[role] = ComponentRecord(kind="scaler", name=name, params={}, state=_state_of(comp),
                                            plugin="core", distribution="netml", version=_netml_version())
                continue
            plugin = reg.plugin_of(role, name)
            out[role] = ComponentRecord(kind=role, name=name, params=_jsonable_params(comp.get_params()),
                                        state=_state_of(comp), plugin=plugin.name,
                                        distribution=plugin.distribution, version=plugin.version)
        return out

    @classmethod
    def from_records(cls, records: dict[str, ComponentRecord]) -> "Pipeline":
        """Rebuild a fitted pipeline (checks each plugin is installed and accepts the params)."""
        missing = [r for r in FRONT_ROLES if r not in records]
        if missing:
            raise NetmlError(f"saved pipeline lacks its {missing[0].replace('_', ' ')}")
        kw: dict[str, Any] = {}
        for role in PLUGIN_ROLES:
            rec = records.get(role)
            kw[role] = rec.name if rec is not None else None
            kw[f"{role}_params"] = rec.params if rec is not None else None
        kw["scaler"] = records["scaler"].name if "scaler" in records else ("none" if "detector" in records else None)
        pipe = cls(**kw)
        for role, rec in records.items():
            comp = pipe.components.get(role)
            if comp is not None:
                try:
                    _restore_state(comp, rec.state)
                except NetmlError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a damaged or hand-edited state
                    from .errors import ModelFileError

                    raise ModelFileError(f"saved state of the {role.replace('_', ' ')} {rec.name!r} is damaged: "
                                         f"{type(exc).__name__}: {exc}") from None
        pipe.front_fitted = True
        return pipe

    def save(self, path, info: dict | None = None):
        """Write the whole fitted pipeline as a model file (atomically)."""
        if self.detector is None or getattr(self.detector, "threshold_", None) is None:
            raise NotFittedError("cannot save a pipeline whose detector is not fitted")
        info = dict(info or {})
        try:
            info.setdefault("feature_names", list(self.feature.feature_names()))
        except (NotImplementedError, NetmlError):
            pass
        return write_model(path, self.records(), info)

    @classmethod
    def load(cls, path) -> tuple["Pipeline", ModelContents]:
        """Read a model file and rebuild its pipeline; one-line ``ModelFileError`` on any problem."""
        contents = read_model(path)
        if "detector" not in contents.components:
            from .errors import ModelFileError

            raise ModelFileError(f"{path} holds no trained detector")
        return cls.from_records(contents.components), contents


# -- helpers ------------------------------------------------------------------------------------
def check_sources(sources: Sequence, labels: Sequence | None) -> None:
    if not sources:
        raise ParameterError("no capture given")
    if labels is not None and len(labels) != len(sources):
        raise ParameterError(f"{len(labels)} label sources for {len(sources)} captures")


def default_scaler(detector_name: str) -> str:
    """The detector class's ``default_scaler`` (see ``netml_core.scaling``)."""
    from .scaling import default_scaler_for

    return default_scaler_for(detector_name)


def _make_scaler(name: str):
    from .scaling import make_scaler

    return make_scaler(name)


def _state_of(comp) -> dict:
    if hasattr(comp, "get_state"):
        return dict(comp.get_state())
    return {k: v for k, v in vars(comp).items() if k.endswith("_") and not k.startswith("_")}


def _restore_state(comp, state: dict) -> None:
    if hasattr(comp, "set_state"):
        comp.set_state(state)
    else:
        for k, v in state.items():
            setattr(comp, k, v)


def _jsonable_params(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, (np.generic,)):
            v = v.item()
        out[k] = v
    return out


def _netml_version() -> str:
    from . import __version__

    return __version__


def _label_source(labels) -> str:
    path = getattr(labels, "path", None)
    return str(path) if path is not None else repr(labels)


def _warn_unlabelled(sources, labels, n_per_capture, keep) -> None:
    """A label file that matches under 10% of a capture's flows is probably the wrong file: say so
    (when it matches no flow of any capture the run stops with an error that says it instead)."""
    at = 0
    for src, lab, n in zip(sources, labels, n_per_capture):
        missing = int(np.count_nonzero(~keep[at:at + n]))
        at += n
        if n and missing >= 0.9 * n and keep.any():
            log.warning("warning: %d of %d flows of %s match no row of %s and are dropped; is it the label "
                        "file of this capture?", missing, n, _label(src), _label_source(lab))


def _label(source) -> str:
    if source == "-" or source is None:
        return "<stdin>"
    return str(getattr(source, "name", source))


# the metric functions moved to netml_core.metrics; kept importable from here for scripts
from .metrics import (  # noqa: E402,F401
    average_precision, precision_recall_at, roc_auc, roc_curve, train_test_split_indices,
)
