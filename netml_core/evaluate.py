"""Comparative evaluation: every feature x detector on labelled train/test scenarios (``netml evaluate``).

A scenario file (JSON, or YAML of the same structure) lists scenarios, each with training captures
(all normal traffic), test captures and a label for every test capture: ``normal``, ``attack`` or
``flows:PATH.tsv`` (per directional 5-tuple). ``load_scenarios`` reads and checks it as untrusted
input (bounded size, fixed structure, one-line ``NetmlError`` on anything wrong); ``run`` fits and
scores every scenario x feature x detector and returns one ``Result`` per run.

Why the units are not just "the scored flows": a flow splitter may drop packets (netml 0.x drops
flows of one packet and the tails of split flows), and a detector cannot flag a flow that was never
built. Scoring only the surviving flows would reward the splitter for throwing the hard cases away
(a port scan is a thousand one-packet flows). So every labelled directional 5-tuple that occurs in
a test capture's packets but in no scored flow becomes a *missed* unit: it keeps its label, gets
the lowest score (below every real score) and is never flagged. ``coverage`` says which share of
the labelled 5-tuples the flows kept at all.

Extraction is cached: one ``fit_extract`` per scenario x feature (every detector reuses its rows).
Captures are read batch by batch when the pipeline streams (``can_stream``: a per-flow feature, or
host context with the ``meter`` splitter), so memory is a batch, the open flows, the rows and the
5-tuples; a test capture is then read once per feature. Otherwise each test capture is read whole
once per scenario and split once per feature.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import unicodedata
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .defaults import DEFAULT_FPR, DEFAULT_READER, DEFAULT_SPLITTER
from .errors import NetmlError
from .labels import ConstantLabels, FlowTsvLabels, read_bounded_text
from .segments import RowSet, unique_keys

log = logging.getLogger("netml.evaluate")

#: a scenario file larger than this is refused (evalset-dev's is 5 KB)
MAX_SCENARIO_BYTES = 4 << 20
MAX_SCENARIOS = 1000
#: captures per train or test list
MAX_CAPTURES = 10000
#: characters of a path, a label value or a description
MAX_TEXT = 4096
MAX_NAME = 200
SCENARIO_KEYS = ("name", "description", "train", "test", "labels")
REQUIRED_KEYS = ("name", "train", "test")
#: seed of the detectors and of the calibration split (``netml learn``'s default too)
DEFAULT_SEED = 42
#: marks a results.json this module wrote (``--output`` overwrites only such folders)
RESULTS_FORMAT = "netml-evaluate"
RESULT_FILES = ("results.tsv", "results.json", "heatmap.png")


# -- scenarios ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelSpec:
    """How a capture is labelled: ``normal``/``attack`` (every flow) or ``flows`` (a TSV at ``path``)."""

    kind: str
    path: str | None = None

    def text(self) -> str:
        return f"flows:{self.path}" if self.kind == "flows" else self.kind


@dataclass
class Scenario:
    """One train/test split; capture paths are resolved, ``labels`` maps each test capture's path."""

    name: str
    train: list[str]
    test: list[str]
    labels: dict[str, LabelSpec]
    description: str = ""


def load_scenarios(path) -> list[Scenario]:
    """Read, check and resolve a scenario file; a missing capture or label file is an error now,
    before any capture is read."""
    path = os.fspath(path)
    data = _check_list(_parse(_read_scenario_file(path), path), f"scenario file {path}", "scenario",
                       MAX_SCENARIOS)
    folder = Path(path).resolve().parent
    scenarios: list[Scenario] = []
    for i, raw in enumerate(data):
        sc = _check_scenario(raw, i, folder)
        if any(s.name == sc.name for s in scenarios):
            raise NetmlError(f"scenario file {path}: two scenarios are named {sc.name!r}")
        scenarios.append(sc)
    return scenarios


def select_scenarios(scenarios: Sequence[Scenario], names: Sequence[str]) -> list[Scenario]:
    """The scenarios named (in the file's order), or all; an unknown name lists the known ones."""
    if not names:
        return list(scenarios)
    known = [s.name for s in scenarios]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise NetmlError(f"no scenario named {unknown[0]!r}; the file has: {', '.join(known)}")
    return [s for s in scenarios if s.name in set(names)]


def _read_scenario_file(path: str) -> str:
    """The file's text; refuses a non-regular file (a FIFO would block), a huge one, binary bytes."""
    if not os.path.exists(path):
        raise NetmlError(f"scenario file {path}: no such file")
    return read_bounded_text(path, path, what="scenario file", kind="JSON or YAML text", limit=MAX_SCENARIO_BYTES)


def _parse(text: str, path: str) -> Any:
    """JSON for ``.json`` files, YAML (bounded like ``--param``: plain data only) otherwise."""
    try:
        if path.lower().endswith(".json"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise NetmlError(f"scenario file {path} is not valid JSON at line {exc.lineno}, "
                                 f"column {exc.colno}: {exc.msg}") from None
        from .params import load_bounded

        # the --param loader: plain data only, and size and depth counted with anchors expanded
        return load_bounded(text, f"scenario file {path}", kind="YAML")
    except RecursionError:
        raise NetmlError(f"scenario file {path} is nested too deeply") from None


def _type(value: Any) -> str:
    """A value's type for messages: never its repr (a YAML alias bomb would print forever)."""
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}.get(type(value), type(value).__name__)


def _check_text(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise NetmlError(f"{what} must be a string, got {_type(value)}")
    if not value.strip():
        raise NetmlError(f"{what} is empty")
    if len(value) > limit:
        raise NetmlError(f"{what} is longer than {limit} characters")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise NetmlError(f"{what} holds a control character (tab, newline ...)")
    return value


def _check_scenario(raw: Any, index: int, folder: Path) -> Scenario:
    """One scenario entry -> ``Scenario`` with resolved paths; every rule of the format is here."""
    where = f"scenario #{index + 1}"
    if not isinstance(raw, dict):
        raise NetmlError(f"{where} must be a mapping with keys {', '.join(SCENARIO_KEYS)}, got {_type(raw)}")
    if "name" in raw and isinstance(raw["name"], str):
        where = f"scenario {raw['name'][:MAX_NAME]!r}"
    unknown = [k for k in raw if k not in SCENARIO_KEYS]
    if unknown:
        key = str(unknown[0])[:60] if isinstance(unknown[0], (str, int, float)) else _type(unknown[0])
        raise NetmlError(f"{where}: unknown key {key!r}; known: {', '.join(SCENARIO_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise NetmlError(f"{where}: missing key {missing[0]!r}")
    name = _check_text(raw["name"], f"{where}: name", MAX_NAME)
    description = raw.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_TEXT):
        raise NetmlError(f"{where}: description must be a string of at most {MAX_TEXT} characters, "
                         f"got {_type(description)}")
    description = " ".join((description or "").split())
    train = _check_captures(raw["train"], f"{where}: train", folder)
    test = _check_captures(raw["test"], f"{where}: test", folder)
    labels = _check_labels(raw.get("labels"), where, folder, train, test)
    return Scenario(name=name, train=train, test=test, labels=labels, description=description)


def _check_list(value: Any, what: str, noun: str, limit: int) -> list:
    """A non-empty list of at most ``limit`` items (each item is checked by the caller)."""
    if not isinstance(value, list):
        raise NetmlError(f"{what} must be a list of {noun}s, got {_type(value)}")
    if not value:
        raise NetmlError(f"{what} lists no {noun}")
    if len(value) > limit:
        raise NetmlError(f"{what} lists {len(value)} {noun}s (at most {limit})")
    return value


def _check_captures(value: Any, what: str, folder: Path) -> list[str]:
    out: list[str] = []
    for i, item in enumerate(_check_list(value, what, "capture", MAX_CAPTURES)):
        path = resolve_path(_check_text(item, f"{what}[{i}]"), folder, f"{what}[{i}]")
        if path in out:
            raise NetmlError(f"{what} lists {item} twice")
        out.append(path)
    return out


def resolve_path(text: str, folder: Path, what: str) -> str:
    """A scenario path: absolute as is, else beside the scenario file, else in its ``files/``;
    the first that exists. It must be a regular file (a FIFO or a device would hang the reader)."""
    given = Path(text.strip())
    candidates = [given] if given.is_absolute() else [folder / given, folder / "files" / given]
    for cand in candidates:
        if cand.exists():
            if not cand.is_file():
                raise NetmlError(f"{what}: {cand} is not a regular file")
            return str(cand.resolve())
    looked = "" if given.is_absolute() else f" (looked in {folder} and {folder / 'files'})"
    raise NetmlError(f"{what}: {text.strip()}: no such file{looked}")


def _check_labels(value: Any, where: str, folder: Path, train: list[str], test: list[str]) -> dict[str, LabelSpec]:
    """Label specs by resolved capture path. Every test capture needs one; training captures are
    normal by definition, so a label there may only say ``normal``."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise NetmlError(f"{where}: labels must be a mapping capture -> label, got {_type(value)}")
    specs: dict[str, LabelSpec] = {}
    for key, text in value.items():
        key = _check_text(key, f"{where}: labels key")
        what = f"{where}: labels[{key!r}]"
        capture = resolve_path(key, folder, what)
        if capture not in train and capture not in test:
            raise NetmlError(f"{what}: {key} is neither a train nor a test capture of this scenario")
        if capture in specs:
            raise NetmlError(f"{what}: {os.path.basename(capture)} is labelled twice")
        spec = _label_spec(_check_text(text, what), folder, what)
        if capture in train and spec.kind != "normal":
            raise NetmlError(f"{what}: training captures are all normal traffic, got {spec.text()!r}")
        specs[capture] = spec
    for capture in test:
        if capture not in specs:
            raise NetmlError(f"{where}: test capture {os.path.basename(capture)} has no label "
                             "(labels: {capture: normal | attack | flows:PATH.tsv})")
    return {c: specs[c] for c in test}


def _label_spec(text: str, folder: Path, what: str) -> LabelSpec:
    value = text.strip()
    if value.lower() in ("normal", "attack"):
        return LabelSpec(value.lower())
    if value.lower().startswith("flows:"):
        rel = value[len("flows:"):].strip()
        if not rel:
            raise NetmlError(f"{what}: 'flows:' names no TSV file")
        return LabelSpec("flows", resolve_path(rel, folder, what))
    raise NetmlError(f"{what}: label must be 'normal', 'attack' or 'flows:PATH.tsv', got {value[:60]!r}")


def label_sources(scenarios: Sequence[Scenario]) -> dict[LabelSpec, Any]:
    """Each distinct label spec's label source, loaded once (TSVs are read and checked here)."""
    out: dict[LabelSpec, Any] = {}
    for sc in scenarios:
        for spec in sc.labels.values():
            if spec not in out:
                out[spec] = (FlowTsvLabels(spec.path) if spec.kind == "flows"
                             else ConstantLabels(1 if spec.kind == "attack" else 0))
    return out


# -- units, coverage and metrics ------------------------------------------------------------------
def tuple_keys(src, dst, sport, dport, proto) -> np.ndarray:
    """Directional 5-tuples as ``(n, 5) uint64`` rows (addresses as two words each), for np.unique."""
    ports = (np.asarray(sport, dtype=np.uint64) << np.uint64(24)) | (np.asarray(dport, dtype=np.uint64) << np.uint64(8))
    return np.column_stack([np.asarray(src, dtype=np.uint64).reshape(-1, 2),
                            np.asarray(dst, dtype=np.uint64).reshape(-1, 2),
                            ports | np.asarray(proto, dtype=np.uint64)])


@dataclass
class TupleIndex:
    """The distinct directional 5-tuples of a capture's packets and their labels (-1 unknown).

    Independent of the feature and the splitter, so it is built once per test capture."""

    keys: np.ndarray  # (n_tuples, 5) uint64, sorted
    labels: np.ndarray  # int64

    @classmethod
    def of(cls, packets, label_source) -> "TupleIndex":
        return cls.of_keys(np.unique(packet_tuples(packets), axis=0), label_source)

    @classmethod
    def of_keys(cls, keys: np.ndarray, label_source) -> "TupleIndex":
        """From the sorted distinct 5-tuple rows ``keys`` (``tuple_keys``)."""
        labels = label_source.labels_for_keys(keys[:, 0:2], keys[:, 2:4], keys[:, 4] >> np.uint64(24),
                                              (keys[:, 4] >> np.uint64(8)) & np.uint64(0xFFFF),
                                              keys[:, 4] & np.uint64(0xFF))
        return cls(keys=keys, labels=np.asarray(labels, dtype=np.int64))


def packet_tuples(packets, rows=None) -> np.ndarray:
    """``tuple_keys`` of every packet of ``packets`` (or of the packets ``rows``), one row each."""
    cols = [packets.src, packets.dst, packets.sport, packets.dport, packets.proto]
    return tuple_keys(*(cols if rows is None else [c[rows] for c in cols]))


def held_tuples(flows) -> np.ndarray:
    """The distinct 5-tuples of the packets that ``flows`` (a FlowTable) hold, in no set order."""
    rows = np.asarray(flows.order, dtype=np.int64)
    return unique_keys([packet_tuples(flows.packets, rows)]) if len(rows) else np.zeros((0, 5), dtype=np.uint64)


def covered(index: TupleIndex, flows) -> np.ndarray:
    """Which of ``index``'s 5-tuples some flow of ``flows`` holds a packet of.

    Packet-based, so a bidirectional flow covers both directions it carries, and a 5-tuple whose
    packets a splitter dropped only in part is still covered by the part it kept."""
    return covered_by(index, held_tuples(flows))


def covered_by(index: TupleIndex, held: np.ndarray) -> np.ndarray:
    """Which of ``index``'s 5-tuples are among the distinct 5-tuple rows ``held``."""
    if len(index.keys) == 0:
        return np.zeros(0, dtype=bool)
    both, inverse = np.unique(np.concatenate([index.keys, held]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    in_flows = np.zeros(len(both), dtype=bool)
    in_flows[inverse[len(index.keys):]] = True
    return in_flows[inverse[:len(index.keys)]]


@dataclass
class EvalUnits:
    """What one feature made of the test captures: feature rows of the labelled flows, their
    labels, the labels of the missed 5-tuples, and the coverage counts."""

    X: np.ndarray
    y_flows: np.ndarray
    y_missed: np.ndarray
    n_tuples: int = 0
    n_covered: int = 0
    seconds: float = 0.0

    @classmethod
    def join(cls, parts: Sequence["EvalUnits"]) -> "EvalUnits":
        return cls(X=np.concatenate([p.X for p in parts]), y_flows=np.concatenate([p.y_flows for p in parts]),
                   y_missed=np.concatenate([p.y_missed for p in parts]),
                   n_tuples=sum(p.n_tuples for p in parts), n_covered=sum(p.n_covered for p in parts),
                   seconds=sum(p.seconds for p in parts))


def capture_units(extracted, index: TupleIndex, label_source) -> EvalUnits:
    """Units of one test capture: its labelled flows, plus one missed unit per labelled 5-tuple
    of its packets that no flow holds."""
    X, y = labelled_rows(extracted.flows, extracted.X, label_source)
    return _units(X, y, index, covered(index, extracted.flows), extracted.seconds)


def labelled_rows(flows, X: np.ndarray, label_source) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the flows ``label_source`` labels, and their labels."""
    y = np.asarray(label_source.labels_for(flows), dtype=np.int64)
    keep = y >= 0
    return X[keep], y[keep]


def _units(X: np.ndarray, y: np.ndarray, index: TupleIndex, hit: np.ndarray, seconds: float) -> EvalUnits:
    labelled = index.labels >= 0
    return EvalUnits(X=X, y_flows=y, y_missed=index.labels[labelled & ~hit],
                     n_tuples=int(np.count_nonzero(labelled)), n_covered=int(np.count_nonzero(labelled & hit)),
                     seconds=seconds)


def stream_units(front, capture, label_source, index: TupleIndex | None = None,
                 batch_packets: int | None = None) -> tuple[EvalUnits, TupleIndex] | None:
    """``capture_units`` of a test capture read batch by batch (``front.can_stream()``), with its
    ``TupleIndex`` (built on the way when not given). Memory: a batch, the open flows, the kept
    rows and the distinct 5-tuples. Coverage is counted on the flows as the splitter ends them,
    while they still hold their packets (host context hands its rows back later as keys only).
    The units are those of the whole capture, in another order (the metrics do not depend on it);
    None when the capture is not in time order (read it whole then)."""
    from .pipeline import STREAM_BATCH_PACKETS

    t0 = time.perf_counter()
    tuples = RowSet(5) if index is None else None
    held = RowSet(5)
    X: list[np.ndarray] = []
    y: list[np.ndarray] = []
    stream = front.extract_stream(capture, batch_packets or STREAM_BATCH_PACKETS)
    for batch, ended, flows, rows in stream:
        if tuples is not None and batch is not None:
            tuples.add(unique_keys([packet_tuples(batch)]))
        held.add(held_tuples(ended))
        if len(flows):
            Xk, yk = labelled_rows(flows, rows, label_source)
            X.append(Xk)
            y.append(yk)
    if stream.state.disordered:
        return None
    if index is None:
        index = TupleIndex.of_keys(np.unique(tuples.unique(), axis=0), label_source)
    width = len(front.feature.feature_names())
    units = _units(np.concatenate(X) if X else np.zeros((0, width)), np.concatenate(y) if y else np.zeros(0, np.int64),
                   index, covered_by(index, held.unique()), time.perf_counter() - t0)
    return units, index


def unit_metrics(scores: np.ndarray, y_flows: np.ndarray, y_missed: np.ndarray, threshold: float) -> dict:
    """ROC AUC, average precision, precision, recall and false-positive rate over every unit.

    Flows are flagged when their score exceeds ``threshold``; missed units never are. AUC and AP
    only depend on the order of the scores, so scores are replaced by their dense ranks (1, 2 ...)
    and missed units get rank 0: below every real score, tied with each other, whatever the
    detector's scale (even -inf scores)."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.concatenate([np.asarray(y_flows, dtype=np.int64), np.asarray(y_missed, dtype=np.int64)])
    ranks = np.unique(scores, return_inverse=True)[1].reshape(-1) + 1.0 if len(scores) else np.zeros(0)
    ranked = np.concatenate([ranks, np.zeros(len(y_missed))])
    flagged = np.concatenate([scores > threshold, np.zeros(len(y_missed), dtype=bool)])
    attack, normal = y == 1, y == 0
    tp, fp = int(np.count_nonzero(flagged & attack)), int(np.count_nonzero(flagged & normal))
    from .pipeline import average_precision, roc_auc

    return {
        "roc_auc": _none_if_nan(roc_auc(y, ranked)) if len(y) else None,
        "average_precision": _none_if_nan(average_precision(y, ranked)) if len(y) else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / int(attack.sum()) if attack.any() else None,
        "fpr": fp / int(normal.sum()) if normal.any() else None,
        "n_normal": int(normal.sum()), "n_attack": int(attack.sum()),
    }


def _none_if_nan(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


# -- runs -----------------------------------------------------------------------------------------
@dataclass
class Result:
    """One scenario x feature x detector run. Metrics are ``None`` when undefined (no attack unit,
    a failed run); ``error`` holds the one-line reason a run failed."""

    scenario: str
    feature: str
    detector: str
    roc_auc: float | None = None
    average_precision: float | None = None
    precision: float | None = None
    recall: float | None = None
    fpr: float | None = None
    threshold: float | None = None
    coverage: float | None = None
    n_normal: int = 0
    n_attack: int = 0
    n_flows: int = 0
    n_missed: int = 0
    n_tuples: int = 0
    n_covered: int = 0
    n_train: int = 0
    fit_seconds: float | None = None
    score_seconds: float | None = None
    extract_seconds: float | None = None
    calibration: str | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


RESULT_FIELDS = tuple(f.name for f in fields(Result))

Progress = Callable[[int, int, Result], None]


def run(scenarios: Sequence[Scenario], features: Sequence[str], detectors: Sequence[str], *,
        splitter: str = DEFAULT_SPLITTER, splitter_params: dict | None = None,
        feature_params: dict[str, dict] | None = None, detector_params: dict[str, dict] | None = None,
        reader: str = DEFAULT_READER, fpr: float = DEFAULT_FPR, seed: int = DEFAULT_SEED,
        progress: Progress | None = None, dask=None, stream: bool = True) -> list[Result]:
    """Every scenario x feature x detector, in that order; one ``Result`` each.

    ``feature_params`` / ``detector_params`` map a component name to its parameters (absent: the
    defaults); a detector with a ``random_state`` parameter gets ``seed`` unless given one. Names,
    parameters and label files are checked before any capture is read (``NetmlError``); a run that
    fails later (a capture without flows, a detector that rejects the rows) becomes a ``Result``
    with ``error`` set and the others go on. ``progress(done, total, result)`` follows each run.
    ``dask`` (a ``netml_core.distributed.DaskRunner``): training extraction runs on its workers.
    ``stream``: read captures batch by batch where the pipeline can (bounded memory, same results).
    """
    from .calibration import check_fpr

    fpr = check_fpr(fpr)
    (features, feature_params), (detectors, detector_params) = _check_components(
        reader, splitter, splitter_params, features, feature_params or {}, detectors, detector_params or {})
    sources = label_sources(scenarios)
    total, done, results = len(scenarios) * len(features) * len(detectors), 0, []

    def report(result: Result) -> None:
        nonlocal done
        done += 1
        results.append(result)
        if progress is not None:
            progress(done, total, result)

    for sc in scenarios:
        packets: dict[str, Any] = {}  # test packets, read once per scenario and kept for every feature
        indexes: dict[str, TupleIndex] = {}
        for feature in features:
            params = feature_params.get(feature) or {}
            try:
                front, X_train, units = _extract(sc, reader, splitter, splitter_params, feature, params,
                                                 sources, packets, indexes, dask, stream)
            except Exception as exc:  # noqa: BLE001 - one failing extraction fails its runs only
                log.debug("extraction failed", exc_info=True)
                for det in detectors:
                    report(Result(sc.name, feature, det, error=_one_line(exc)))
                continue
            for det in detectors:
                params_d = _seeded(detector_params.get(det) or {}, det, seed)
                report(_run_detector(sc.name, front, X_train, units, det, params_d, fpr, seed))
    return results


def _check_components(reader, splitter, splitter_params, features, feature_params, detectors,
                      detector_params) -> tuple[tuple[list, dict], tuple[list, dict]]:
    """(names, params by name) of the features and of the detectors, canonical (aliases resolved,
    duplicates dropped), once every component accepted its parameters: a typo is one line before
    the first capture is read, not a column of failed runs."""
    from .registry import KIND_LABELS, get_registry

    reg = get_registry()
    if not features:
        raise NetmlError("no feature to evaluate")
    if not detectors:
        raise NetmlError("no detector to evaluate")
    reg.create("reader", reader, None)
    reg.create("flow_splitter", splitter, splitter_params)
    out = []
    for kind, chosen, params in (("feature", features, feature_params), ("detector", detectors, detector_params)):
        canonical = list(dict.fromkeys(reg.get(kind, n).name for n in chosen))
        by_name = {}
        for name, given in params.items():
            key = reg.get(kind, name).name
            if key not in canonical:
                raise NetmlError(f"parameters given for {KIND_LABELS[kind]} {name!r}, which is not evaluated")
            by_name[key] = dict(given or {})
        for name in canonical:
            reg.create(kind, name, by_name.get(name))
        out.append((canonical, by_name))
    return out[0], out[1]


def _seeded(params: dict, detector: str, seed: int) -> dict:
    """The detector's parameters with ``random_state`` set to ``seed`` when it has one and none is given."""
    from .registry import get_registry

    cls = get_registry().component_class("detector", detector)
    params = dict(params)
    if "random_state" in cls.param_defaults() and "random_state" not in params:
        params["random_state"] = seed
    return params


def _extract(sc: Scenario, reader, splitter, splitter_params, feature, feature_params, sources,
             packets: dict, indexes: dict, dask=None, stream: bool = True):
    """Fit splitter and feature on the training captures, then the test units of this feature.

    ``stream``: both batch by batch when the pipeline can (``fit_extract(stream=True)``,
    ``stream_units``): each test capture is then read once per feature, keeping only its 5-tuples
    between features; otherwise it is read whole once per scenario and kept for every feature."""
    from .pipeline import Pipeline

    front = Pipeline(reader=reader, flow_splitter=splitter, flow_splitter_params=splitter_params,
                     feature=feature, feature_params=feature_params, detector=None)
    front.dask = dask
    train = front.fit_extract(sc.train, [ConstantLabels(0)] * len(sc.train), stream=stream)
    front.dask = None  # test captures are read here: their units need every packet
    parts = [units_of_test_capture(front, capture, sources[sc.labels[capture]], packets, indexes, stream)
             for capture in sc.test]
    units = EvalUnits.join(parts)
    units.seconds += train.seconds
    return front, train.X, units


def units_of_test_capture(front, capture: str, labels, packets: dict, indexes: dict,
                          stream: bool = True) -> EvalUnits:
    """One test capture's units: batch by batch when ``stream`` and the pipeline can (and it was not
    read whole already), else from its packets read whole and kept in ``packets`` for the next
    feature. ``indexes`` keeps each capture's ``TupleIndex`` (the same for every feature)."""
    got = stream_units(front, capture, labels, indexes.get(capture)) \
        if stream and front.can_stream() and capture not in packets else None
    if got is not None:
        indexes[capture] = got[1]
        return got[0]
    if capture not in packets:
        packets[capture] = front.read(capture)
        indexes[capture] = TupleIndex.of(packets[capture], labels)
    return capture_units(front.extract_packets(packets[capture]), indexes[capture], labels)


def _run_detector(scenario: str, front, X_train: np.ndarray, units: EvalUnits, detector: str,
                  params: dict, fpr: float, seed: int) -> Result:
    """Fit one detector on the cached training rows and score the cached test units."""
    from .pipeline import FRONT_ROLES, Pipeline

    result = Result(scenario, front.names["feature"], detector, n_train=int(len(X_train)),
                    n_flows=int(len(units.y_flows)), n_missed=int(len(units.y_missed)),
                    n_tuples=units.n_tuples, n_covered=units.n_covered, extract_seconds=units.seconds,
                    coverage=units.n_covered / units.n_tuples if units.n_tuples else None)
    try:
        pipe = Pipeline(reader=front.names["reader"], flow_splitter=front.names["flow_splitter"],
                        feature=front.names["feature"], detector=detector, detector_params=params)
        for role in FRONT_ROLES:
            pipe.components[role] = front.components[role]
        pipe.front_fitted = True
        pipe.warm_up(X_train)  # library imports are not fit time
        t0 = time.perf_counter()
        pipe.fit_detector(X_train, fpr=fpr, random_state=seed)
        result.fit_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = pipe.score(units.X)
        result.score_seconds = time.perf_counter() - t0
        result.threshold = pipe.threshold
        calibration = getattr(pipe, "calibration_", None) or {}
        result.calibration = calibration.get("method")
        if calibration.get("resolvable") is False and calibration.get("method", "").startswith("held-out"):
            result.calibration += f" (too few to reach fpr {fpr:g})"
        for key, value in unit_metrics(scores, units.y_flows, units.y_missed, pipe.threshold).items():
            setattr(result, key, value)
        if result.n_normal + result.n_attack == 0:
            result.error = "no labelled flow or 5-tuple in the test captures"
    except Exception as exc:  # noqa: BLE001 - a detector that rejects the data fails this run only
        log.debug("run failed", exc_info=True)
        result.error = _one_line(exc)
    return result


def _one_line(exc: BaseException) -> str:
    """A failure as one line: a NetmlError's message, otherwise the exception type and message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, NetmlError) else f"{type(exc).__name__}: {text}".rstrip(": ")


# -- outputs --------------------------------------------------------------------------------------
TABLE_COLUMNS = (("scenario", "scenario"), ("feature", "feature"), ("detector", "detector"),
                 ("ROC AUC", "roc_auc"), ("AP", "average_precision"), ("recall", "recall"), ("FPR", "fpr"),
                 ("coverage", "coverage"), ("fit s", "fit_seconds"), ("score s", "score_seconds"))


def format_table(results: Sequence[Result]) -> str:
    """The aligned result table (numbers right-aligned, ``n/a`` undefined, ``failed`` on errors),
    then one line per failed run."""
    rows = [[title for title, _ in TABLE_COLUMNS]]
    for r in results:
        cells = []
        for _, key in TABLE_COLUMNS:
            v = getattr(r, key)
            if isinstance(v, str):
                cells.append(v)
            elif r.error is not None and key in ("roc_auc", "average_precision", "recall", "fpr"):
                cells.append("failed")
            elif v is None:
                cells.append("n/a")
            else:
                cells.append(f"{v:.3f}")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    lines += [f"failed: {r.scenario} / {r.feature} / {r.detector}: {r.error}" for r in results if r.error]
    return "\n".join(lines)


def results_tsv(results: Sequence[Result]) -> str:
    """Every field of every result, tab-separated with a header; empty cells for undefined values."""
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return repr(v)
        return " ".join(str(v).split())  # no tab or newline inside a cell

    return "".join("\t".join(row) + "\n" for row in
                   [list(RESULT_FIELDS), *([cell(getattr(r, f)) for f in RESULT_FIELDS] for r in results)])


def results_document(results: Sequence[Result], config: dict) -> dict:
    """results.json: a format marker (``--output`` overwrites only folders holding one), the
    run's configuration and every result."""
    from . import __version__

    return {"format": RESULTS_FORMAT, "version": 1, "netml_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": config,
            "results": [r.as_dict() for r in results]}


def check_output_folder(folder) -> Path:
    """Refuse a folder this command did not make: an existing file, or a non-empty folder without a
    previous results.json of ``netml evaluate`` (its files are ours to replace)."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise NetmlError(f"--output {folder} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_previous_output(out):
        raise NetmlError(f"--output {folder} is a non-empty folder without a previous netml evaluate "
                         "results.json; give a new or empty folder")
    return out


def _is_previous_output(folder: Path) -> bool:
    marker = folder / "results.json"
    try:
        if not marker.is_file() or marker.stat().st_size > MAX_SCENARIO_BYTES * 64:
            return False
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("format") == RESULTS_FORMAT


def write_outputs(folder, results: Sequence[Result], config: dict) -> list[str]:
    """results.tsv, results.json and heatmap.png into ``folder`` (each written atomically).

    Returns notes for the user (matplotlib missing). A heatmap.png left by an earlier run is removed
    when no new one can be drawn, so the folder never mixes two runs."""
    from .atomic import atomic_write

    out = check_output_folder(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NetmlError(f"cannot create --output {folder}: {exc.strerror or exc}") from None
    atomic_write(out / "results.tsv", results_tsv(results).encode(), what="results file")
    document = results_document(results, config)
    atomic_write(out / "results.json", (json.dumps(_json_safe(document), indent=2, allow_nan=False,
                                                  default=str) + "\n").encode(), what="results file")
    png = heatmap_png(results)
    if png is None:
        try:
            (out / "heatmap.png").unlink(missing_ok=True)
        except OSError:
            pass
        return ["matplotlib is not installed: no heatmap.png (pip install 'netml[report]')"]
    atomic_write(out / "heatmap.png", png, what="heatmap")
    return []


def _json_safe(value: Any) -> Any:
    """Strict JSON: non-finite floats (an infinite threshold, a NaN parameter) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def heatmap_png(results: Sequence[Result]) -> bytes | None:
    """ROC AUC as a features x detectors grid, one panel per scenario, as PNG bytes (None without
    matplotlib). Failed runs are marked ``err``, undefined AUCs ``n/a``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import io

    scenarios = list(dict.fromkeys(r.scenario for r in results))
    features = list(dict.fromkeys(r.feature for r in results))
    detectors = list(dict.fromkeys(r.detector for r in results))
    cols = min(len(scenarios), 3)
    nrows = math.ceil(len(scenarios) / cols)
    cell = 0.6
    fig, axes = plt.subplots(nrows, cols, squeeze=False, dpi=100, layout="constrained",
                             figsize=(cols * (1.6 + cell * len(detectors)) + 1.0, nrows * (1.4 + cell * len(features))))
    image = None
    for ax, name in zip(axes.flat, scenarios):
        grid = np.full((len(features), len(detectors)), np.nan)
        text = np.full(grid.shape, "", dtype=object)
        for r in results:
            if r.scenario != name:
                continue
            i, j = features.index(r.feature), detectors.index(r.detector)
            grid[i, j] = np.nan if r.roc_auc is None else r.roc_auc
            text[i, j] = "err" if r.error else "n/a" if r.roc_auc is None else f"{r.roc_auc:.2f}"
        image = ax.imshow(np.ma.masked_invalid(grid), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_facecolor("#dddddd")
        for (i, j), t in np.ndenumerate(text):
            dark = not np.isnan(grid[i, j]) and grid[i, j] < 0.6  # viridis is dark at the low end
            ax.text(j, i, t, ha="center", va="center", fontsize=8, color="white" if dark else "black")
        ax.set_xticks(range(len(detectors)), detectors, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(features)), features, fontsize=8)
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(scenarios):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="ROC AUC")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
