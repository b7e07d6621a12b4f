"""Scale-out on Dask (``--workers N``, ``--scheduler ADDRESS``): captures and byte ranges of big
captures go to workers; the result is the single-process one, flow for flow and bit for bit.

Why this shape:

- **Tasks.** One per capture; a big uncompressed pcap or pcapng file is also cut in byte ranges
  (``readers.ranges``), each framed from a verified record boundary. A worker reads its range and
  splits it into a mergeable state (``flowmerge``): flows certainly whole stay on the worker, the
  pending head/tail packets (a few percent) come back and are stitched here with the splitter's own
  rule. Ranges that do not chain exactly, are damaged or are not time-ordered make that capture one
  task instead, so exactness never depends on a guess.
- **Fitting.** The feature is fitted here. One that learns nothing from the flows
  (``Feature.learns_from_flows`` false, e.g. flowstats) is fitted before extraction and the
  workers transform their flows in the same task, so only feature rows and one summary per flow
  (first and last packet: keys, times, direction) travel. Any other is fitted on the training flows
  in single-process order, their packets shipped, and the workers then transform their own flows
  with it (shipped as its record). The detector is fitted here too.
- **Plugins.** Components travel as (name, params, state) records and are rebuilt on the worker
  through its own registry, so a worker needs the plugins of this pipeline only, and a missing one
  is the model file's one-line "needs the ... from ..., which is not installed" naming the worker.
- **Failures.** Results stay on the workers as futures until used; a lost worker's tasks are
  recomputed by Dask from the same inputs, so the result does not change.

The netml 0.x splitter learns its interval from every training packet, so ``learn`` with it runs
in this process (a note on stderr says so); ``classify`` with a fitted one splits whole captures on the
workers (no byte ranges: its sub-flows are not cut by certain starts).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from .errors import NetmlError, ParameterError
from .flowmerge import SliceState, chain_ordered, mergeable, order_keys, resolve, slice_state
from .flowtable import FlowTable
from .packets import COLUMNS, PacketTable
from .readers.source import _is_terminal

log = logging.getLogger("netml.distributed")

EXTRA_HINT = "pip install 'netml[dask]'"
#: a capture is cut in byte ranges of at least this size (smaller ones are one task)
MIN_SLICE_BYTES = 32 << 20
#: ranges per worker thread for one big capture: some slack so a slow worker does not hold all
TASKS_PER_WORKER = 2
#: seconds to wait for a scheduler or a LocalCluster's workers
CONNECT_TIMEOUT = 10
_ADDRESS = re.compile(r"^(?:(tcp|tls|ws|wss|inproc|ucx)://)?[\w.\-\[\]:]+(?::\d+)?$")


def requested(workers: int | None, scheduler: str | None) -> bool:
    """Check ``--workers``/``--scheduler`` without importing Dask; True when Dask is asked for."""
    if workers is None and scheduler is None:
        return False
    if workers is not None and scheduler is not None:
        raise ParameterError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"--workers must be a positive number of worker processes, got {workers!r}")
    if scheduler is not None and not _ADDRESS.match(str(scheduler)):
        raise ParameterError(f"--scheduler {scheduler!r} is not a scheduler address (e.g. tcp://10.0.0.5:8786)")
    return True


def _distributed():
    try:
        import distributed
    except ImportError:
        raise NetmlError(f"--workers/--scheduler need Dask, which is not installed: {EXTRA_HINT}") from None
    return distributed


class DaskRunner:
    """The Dask client of one command: a LocalCluster of ``workers`` processes or ``scheduler``.

    ``client`` reuses a client (tests share one cluster). ``slice_bytes`` overrides the byte-range
    size; ``full_flows`` ships whole flows back instead of summaries (``classify --group``).
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None, *, client=None,
                 slice_bytes: int | None = None, full_flows: bool = False, progress: bool | None = None):
        self.workers, self.scheduler, self.client = workers, scheduler, client
        self.slice_bytes, self.full_flows = slice_bytes, full_flows
        self.progress = _is_terminal(sys.stderr) if progress is None else progress
        self.ahead: dict = {}  # capture path -> tasks sent ahead (``submit_ahead``)
        self._owned: list = []

    def __enter__(self) -> "DaskRunner":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "DaskRunner":
        if self.client is not None:
            return self
        distributed = _distributed()
        try:
            if self.scheduler is not None:
                self.client = distributed.Client(self.scheduler, timeout=CONNECT_TIMEOUT)
                self._owned.append(self.client)
                try:
                    self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
                except TimeoutError:
                    raise NetmlError(f"the Dask scheduler at {self.scheduler} has no workers (start some with "
                                     f"'dask worker {self.scheduler}')") from None
            else:
                import dask

                # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in workers to return memory early; it also
                # stops glibc from raising its mmap threshold, so every large numpy temporary is a
                # fresh mmap: splitting and decoding ran twice as slow (measured). Unset here.
                with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                    cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=":0", silence_logs=logging.CRITICAL)
                self._owned.append(cluster)
                # results come straight from the workers, not relayed by the scheduler (one hop less)
                self.client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT, direct_to_workers=True)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            where = f"the Dask scheduler at {self.scheduler}" if self.scheduler else "a local Dask cluster"
            raise NetmlError(f"cannot reach {where}: {_first_line(exc)}") from None
        except BaseException:  # e.g. no workers: never leave a client behind to reconnect at exit
            self.close()
            raise
        if self.client not in self._owned:
            self._owned.insert(0, self.client)
        log.info("dask: %d workers (%s)", self.n_threads(), self.scheduler or "local cluster")
        return self

    def close(self) -> None:
        for thing in self._owned:
            try:
                thing.close()
            except Exception:  # noqa: BLE001 - closing after an error
                pass
        self._owned = []

    def n_threads(self) -> int:
        info = self.client.scheduler_info(n_workers=-1) if _takes_n_workers(self.client) else self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    # -- running tasks ---------------------------------------------------------------------------
    def map(self, fn, *iterables, **kw) -> list:
        return self.client.map(fn, *iterables, pure=False, **kw)

    def gather(self, futures: list, what: str = "") -> list:
        """Results of ``futures`` (in order), with a progress line on a terminal's stderr."""
        if self.progress and what and futures:
            from distributed import as_completed

            done, threads = 0, self.n_threads()
            for _ in as_completed(futures):
                done += 1
                sys.stderr.write(f"\rnetml: {what}: {done}/{len(futures)} tasks on {threads} workers")
                sys.stderr.flush()
            sys.stderr.write("\n")
        return self.client.gather(futures)

    def jobs(self, sources: Sequence, sliceable: bool) -> list[tuple]:
        """``(capture, source, start, stop, size)`` per task; ``start`` ``None``: the whole capture."""
        from .readers.ranges import layout, plan

        layouts = [layout(src) if sliceable else None for src in sources]
        total = sum(x.size for x in layouts if x is not None)
        # ranges only as small as needed to give each worker TASKS_PER_WORKER tasks in all: many
        # captures are split whole, and fewer ranges leave fewer pending packets to stitch
        threads = self.n_threads()
        target = self.slice_bytes or max(MIN_SLICE_BYTES, -(-total // (TASKS_PER_WORKER * threads)))
        out = []
        for cap, (src, lay) in enumerate(zip(sources, layouts)):
            if lay is None or lay.size - lay.first <= target or (threads == 1 and not self.slice_bytes):  # one worker: ranges only cost
                out.append((cap, _path(src), None, None, None))
            else:
                out += [(cap, _path(src), a, b, lay.size) for a, b in plan(lay.size, target, lay.first)]
        return out


# -- worker side ------------------------------------------------------------------------------------
@dataclass
class Part:
    """What one task made: its flows (complete ones for a range) and, for a range, the pending state."""

    cap: int
    flows: FlowTable
    state: SliceState | None
    start: int | None
    end: int | None
    exact: bool
    n_packets: int
    damage: list
    X: np.ndarray | None = None
    warnings: list = field(default_factory=list)  # (logger, level, message) to log on the client


def _front(records: dict):
    """The pipeline's front half rebuilt on this worker from records (name, params, state)."""
    from .model_file import check_plugins_installed
    from .pipeline import Pipeline, _restore_state

    check_plugins_installed(records, _worker_name(), what="Dask worker")
    kw = {"feature": None}  # not sent when this task does not transform
    for role, rec in records.items():
        kw[role], kw[f"{role}_params"] = rec.name, rec.params
    pipe = Pipeline(**kw, detector=None)
    for role, rec in records.items():
        if rec.state:  # an unfitted feature (the first pass of learn) has none yet
            _restore_state(pipe.components[role], rec.state)
    return pipe


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "(local)"


class _Warnings(logging.Handler):
    """The ``netml`` warnings of this task's thread, to be shown by the client (once, in its format)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.thread, self.lines = threading.get_ident(), []

    def emit(self, record):
        if record.thread == self.thread:
            self.lines.append((record.name, record.levelno, record.getMessage()))


def split_task(records: dict, job: tuple, transform: bool, light: bool = False) -> Part:
    """Read and split one capture or byte range (and, with a fitted feature, transform its flows);
    ``light``: return the flows as summaries at once (nothing else will need their packets)."""
    from .errors import CaptureError

    logger, caught = logging.getLogger("netml"), _Warnings()
    logger.addHandler(caught)
    try:
        part = _split(records, job, transform)
    except CaptureError as exc:  # e.g. a path that exists on the client but not on this worker
        raise CaptureError(f"{exc} (on Dask worker {_worker_name()})") from None
    finally:
        logger.removeHandler(caught)
    part.warnings = caught.lines
    return light_task(part, False) if light else part


def _split(records: dict, job: tuple, transform: bool) -> Part:
    pipe = _front(records)
    cap, source, start, stop, size = job
    if start is None:
        packets = pipe.read(source)
        part = Part(cap, pipe.flow_splitter.split(packets), None, None, None, True, len(packets), list(packets.damage))
    else:
        from .readers.ranges import read_range

        r = read_range(source, start, stop, size)
        state = slice_state(pipe.flow_splitter, r.packets)
        flows, state.complete = state.complete, None
        part = Part(cap, flows, state, r.start, r.end, r.exact, len(r.packets), list(r.packets.damage))
    if transform:
        part.X = rows_of(pipe.feature, part.flows)
    return part


def transform_task(part: Part, feature_record: dict) -> np.ndarray:
    return rows_of(_front_feature(feature_record), part.flows)


def light_task(part: Part, full: bool) -> Part:
    """The part without the packets of its flows (a summary per flow), unless ``full``."""
    return part if full else replace(part, flows=summarize(part.flows))


def flows_task(part: Part) -> FlowTable:
    return part.flows


def _front_feature(feature_record: dict):
    from .model_file import check_plugins_installed
    from .pipeline import _restore_state
    from .registry import get_registry

    check_plugins_installed({"feature": feature_record}, _worker_name(), what="Dask worker")
    feature = get_registry().create("feature", feature_record.name, feature_record.params)
    _restore_state(feature, feature_record.state)
    return feature


def rows_of(feature, flows: FlowTable) -> np.ndarray:
    if len(flows) == 0:
        return np.zeros((0, len(feature.feature_names())), dtype=np.float64)
    return np.asarray(feature.transform(flows), dtype=np.float64)


def summarize(ft: FlowTable) -> FlowTable:
    """Each flow cut to its first and last packet: its keys, times and direction, for labels and
    reports, without the packets in between (``n_pkts`` of a summary is 1 or 2)."""
    first, last = ft.offsets[:-1], ft.offsets[1:] - 1
    two = last > first
    offsets = np.zeros(len(ft) + 1, dtype=np.int64)
    np.cumsum(1 + two, out=offsets[1:])
    pos = np.empty(int(offsets[-1]), dtype=np.int64)
    pos[offsets[:-1]] = first
    pos[offsets[1:][two] - 1] = last[two]
    return FlowTable(packets=ft.packets.take(ft.order[pos]), order=np.arange(len(pos), dtype=np.int64),
                     offsets=offsets, src=ft.src, dst=ft.dst, sport=ft.sport, dport=ft.dport, proto=ft.proto,
                     ip_version=ft.ip_version, direction=None if ft.direction is None else ft.direction[pos],
                     meta=dict(ft.meta, summary=True))


# -- client side --------------------------------------------------------------------------------------
@dataclass
class _Capture:
    """One capture's parts, stitched: tables (parts then resolved flows) and their final order."""

    parts: list
    futures: list
    resolved: FlowTable | None
    order: np.ndarray | None  # None: a whole capture's one part, already in order (no copy)

    def flows(self, tables: list) -> FlowTable:
        joined = FlowTable.concat(tables) if len(tables) > 1 else tables[0]
        return joined if self.order is None else joined.subset(self.order)

    def rows(self, X_parts: list, X_resolved) -> np.ndarray:
        blocks = X_parts + ([X_resolved] if X_resolved is not None else [])
        joined = np.vstack(blocks) if len(blocks) > 1 else blocks[0]
        return joined if self.order is None else joined[self.order]


def _submit(pipe, sources: Sequence, transform: bool) -> tuple:
    """Send the tasks of ``sources``: (records, jobs, split futures, futures of their light parts)."""
    runner = pipe.dask
    sliceable = mergeable(pipe.flow_splitter) and pipe.names["reader"] == "native"
    records = pipe.records(("reader", "flow_splitter", "feature") if transform else ("reader", "flow_splitter"))
    jobs = runner.jobs(sources, sliceable)
    if transform and not runner.full_flows:  # rows made: the flows' packets are never needed again
        futures = runner.map(split_task, [records] * len(jobs), jobs, [True] * len(jobs), [True] * len(jobs))
        return records, jobs, futures, futures
    futures = runner.map(split_task, [records] * len(jobs), jobs, [transform] * len(jobs))
    return records, jobs, futures, runner.map(light_task, futures, [runner.full_flows] * len(futures))


def submit_ahead(pipe, sources: Sequence) -> None:
    """``classify`` of several captures: send every capture's tasks now, so that the workers go
    through all of them while the client stitches and prints one capture at a time."""
    if pipe.dask is None or len(sources) < 2:
        return
    records, jobs, futures, light = _submit(pipe, sources, bool(getattr(pipe.feature, "per_flow", False)))
    for cap, src in enumerate(sources):
        mine = [i for i, job in enumerate(jobs) if job[0] == cap]
        pipe.dask.ahead[_path(src)] = (records, [(0, *jobs[i][1:]) for i in mine], [futures[i] for i in mine],
                                       [light[i] for i in mine])


def _run_split(pipe, sources: Sequence, transform: bool) -> tuple[list[_Capture], int]:
    """Split every capture on the workers; returns the stitched captures and the packet count."""
    runner = pipe.dask
    ahead = runner.ahead.pop(_path(sources[0]), None) if len(sources) == 1 else None
    records, jobs, futures, light = ahead or _submit(pipe, sources, transform)
    parts = runner.gather(light, what="extract" if transform else "split")
    log.debug("dask: %d tasks done, %d pending packets to stitch", len(parts),
              sum(len(p.state.pending) for p in parts if p.state is not None))
    by_cap: dict[int, list] = {}
    for job, fut, part in zip(jobs, futures, parts):
        by_cap.setdefault(job[0], []).append((job, fut, part))
    captures = []
    for cap in range(len(sources)):
        items = by_cap[cap]
        if len(items) > 1 and not _chains(items):
            log.info("%s: its byte ranges do not chain exactly (damage or timestamps out of order): "
                     "read as one piece", sources[cap])
            job = (cap, _path(sources[cap]), None, None, None)
            fut = runner.map(split_task, [records], [job], [transform])
            part = runner.gather(runner.map(light_task, fut, [runner.full_flows]))[0]
            items = [(job, fut[0], part)]
        captures.append(_stitch(pipe.flow_splitter, [i[1] for i in items], [i[2] for i in items]))
        for name, level, message in dict.fromkeys(w for i in items for w in i[2].warnings):
            logging.getLogger(name).log(level, "%s", message)
    return captures, sum(p.n_packets for c in captures for p in c.parts)


def _chains(items: list) -> bool:
    parts = [i[2] for i in items]
    ok = all(p.exact and not p.damage for p in parts)
    ok = ok and all(a.end == b.start for a, b in zip(parts[:-1], parts[1:]))
    return ok and chain_ordered([p.state for p in parts])


def _stitch(sp, futures: list, parts: list) -> _Capture:
    if parts[0].state is None:
        return _Capture(parts, futures, None, None)
    states = [p.state for p in parts]
    resolved, resolved_rows = resolve(sp, states)
    base = np.concatenate([[0], np.cumsum([p.n_packets for p in parts])[:-1]]).astype(np.int64)
    firsts = [s.first_row + b for s, b in zip(states, base)] + [resolved_rows]
    order = order_keys([p.flows for p in parts] + [resolved], firsts)
    return _Capture(parts, futures, resolved, order)


def _tables(c: _Capture, full: bool, runner) -> list:
    """The flow tables of a capture's parts (their packets shipped if ``full``), then its resolved flows."""
    tables = runner.gather(runner.map(flows_task, c.futures)) if full else [p.flows for p in c.parts]
    return tables + ([c.resolved] if c.resolved is not None else [])


def fit_extract(pipe, sources: Sequence, labels: Sequence | None = None):
    """``Pipeline.fit_extract`` on Dask: same flows (as summaries), same rows, same fitted feature."""
    from .pipeline import Extracted, check_sources

    check_sources(sources, labels)
    if not mergeable(pipe.flow_splitter):
        log.warning("note: splitter %r learns its interval from all training packets at once: training "
                    "extraction runs in this process, not on the Dask workers", pipe.names["flow_splitter"])
        runner, pipe.dask = pipe.dask, None
        try:
            return pipe.fit_extract(sources, labels)
        finally:
            pipe.dask = runner
    t0 = time.perf_counter()
    runner = pipe.dask
    feature = pipe.feature
    per_flow = bool(getattr(feature, "per_flow", False))
    early = per_flow and not getattr(feature, "learns_from_flows", True)
    if early:  # the fitted state is the same whatever the flows: fit now, transform on the workers at once
        feature.fit(_one_flow())
    captures, n_packets = _run_split(pipe, sources, transform=early)
    log.debug("dask: split and stitched in %.3f s", time.perf_counter() - t0)
    counts = {"packets": n_packets}
    flows, y, capture, keep = pipe.labelled_flows(sources, labels, [c.flows(_tables(c, False, runner)) for c in captures],
                                                  counts)
    if early:
        X = np.vstack([_rows(c, [p.X for p in c.parts], feature) for c in captures])
    else:
        per_capture = [c.flows(_tables(c, True, runner)) for c in captures]
        full = FlowTable.concat(per_capture)
        feature.fit(full.subset(keep) if keep is not None else full)
        log.debug("dask: feature fitted at %.3f s", time.perf_counter() - t0)
        if per_flow:
            record = pipe.records(("feature",))["feature"]
            futures = [f for c in captures for f in c.futures]
            X_parts = iter(runner.gather(runner.map(transform_task, futures, [record] * len(futures)), what="transform"))
            X = np.vstack([_rows(c, [next(X_parts) for _ in c.futures], feature) for c in captures])
        else:
            # host context: each capture's rows over all its flows, labelled or not (Pipeline.fit_extract)
            X = np.vstack([rows_of(feature, ft) for ft in per_capture if len(ft)])
    X = X[keep] if keep is not None else X
    pipe.front_fitted = True
    log.info("feature %s: %d flows x %d values", pipe.names["feature"], X.shape[0], X.shape[1])
    return Extracted(flows=flows, X=X, y=y, capture=capture, counts=counts, seconds=time.perf_counter() - t0)


def _rows(c: _Capture, X_parts: list, feature) -> np.ndarray:
    """A capture's rows in flow order: its parts' (from the workers), then its resolved flows'."""
    return c.rows(X_parts, rows_of(feature, c.resolved) if c.resolved is not None else None)


def _one_flow() -> FlowTable:
    """A one-packet flow, to fit a feature that learns nothing from flows."""
    one = PacketTable(**{name: np.zeros((1, *shape), dtype) for name, (dtype, shape) in COLUMNS.items()})
    one.ip_version[:], one.proto[:] = 4, 17
    z = np.zeros(1, np.int64)
    return FlowTable(packets=one, order=z, offsets=np.array([0, 1], np.int64), src=one.src, dst=one.dst,
                     sport=one.sport, dport=one.dport, proto=one.proto, ip_version=one.ip_version,
                     direction=np.zeros(1, np.uint8))


def extract(pipe, source):
    """``Pipeline.extract`` on Dask (a fitted front half): workers split and transform."""
    from .pipeline import Extracted

    t0 = time.perf_counter()
    runner = pipe.dask
    per_flow = bool(getattr(pipe.feature, "per_flow", False))
    (c,), n_packets = _run_split(pipe, [source], transform=per_flow)
    if per_flow:
        flows = c.flows(_tables(c, False, runner))
        X = _rows(c, [p.X for p in c.parts], pipe.feature)
    else:
        flows = c.flows(_tables(c, True, runner))
        X = rows_of(pipe.feature, flows)
    return Extracted(flows=flows, X=X, counts={"packets": n_packets, "flows": len(flows)},
                     seconds=time.perf_counter() - t0)


# -- helpers ------------------------------------------------------------------------------------------
def _path(source):
    import os

    if isinstance(source, (str, os.PathLike)) and str(source) != "-":
        return os.path.abspath(source)
    raise ParameterError("--workers/--scheduler read captures by path (workers cannot read this process's "
                         "standard input or open files)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _takes_n_workers(client) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False
