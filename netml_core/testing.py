"""Conformance kit for plugin authors, as scikit-learn's ``check_estimator`` is for estimators.

A plugin's own tests call one function per component::

    from netml_core.testing import check_detector
    from netml_detector_zscore.zscore import ZScoreDetector

    def test_zscore_conforms():
        check_detector(ZScoreDetector, plugin="netml_detector_zscore")

``check_reader``, ``check_flow_splitter``, ``check_feature`` and ``check_detector`` take a component
class (or a registered name, whose class and plugin are then looked up) and the parameters to build
it with, run every contract of that kind on small data the kit makes itself, and raise
``ContractError`` naming each broken contract and why. The contracts are what ``netml learn`` and
``netml classify`` rely on; ``CONTRACTS`` says each one in a sentence. ``plugin`` (the entry-point
module) adds the registration check, run in a fresh interpreter: registering imports nothing heavy.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .errors import NetmlError

#: modules a plugin's entry module must not import (each costs 0.2-2 s of every `netml` start)
HEAVY_MODULES = ("torch", "tensorflow", "jax", "sklearn", "scipy", "pyod", "numba", "pandas", "matplotlib",
                 "scapy", "dpkt", "safetensors", "skops")

#: contract -> what it demands (the names appear in ContractError messages)
CONTRACTS = {
    "params-in-init": "parameters are the __init__ arguments, all with defaults and a doc, stored as given "
                      "(get_params() returns them) and unchanged by fit",
    "fit-returns-self": "fit(...) returns the component itself",
    "output": "output has the documented type and shape and is free of NaN and infinities",
    "one-packet": "captures, flows and batches of a single packet are handled",
    "empty-input": "empty input gives empty output (no exception)",
    "pure-apply": "score/transform/split use the fitted state without changing it (no refit on new data)",
    "batch-independent": "the result for one flow (or row) does not depend on the others in the batch",
    "round-trip": "the fitted state written to a real model file and read back gives equal outputs",
    "deterministic": "two fits with the same parameters (random_state) on the same data give equal outputs",
    "outlier-scores-higher": "a detector scores an obvious outlier above every normal flow (higher = more anomalous)",
    "width-checked": "a detector given a matrix of another width fails with a one-line netml error",
    "bad-input-error": "a reader given a file that is not a capture fails with a one-line netml error",
    "batches": "iter_batches(max_packets=k) yields at most k packets per batch, together equal to read()",
    "registration-is-light": f"importing the plugin's entry module and calling its hooks imports none of "
                             f"{', '.join(HEAVY_MODULES)}",
}

class ContractError(AssertionError):
    """A component breaks one or more contracts; the message names each one and why."""


# -- public checks ---------------------------------------------------------------------------------
def check_detector(detector, params: dict | None = None, *, plugin: str | None = None, n_train: int = 120,
                   skip: Iterable[str] = (), rtol: float = 1e-9) -> None:
    """Every detector contract on a 5-feature Gaussian sample of ``n_train`` flows (seeded).

    ``skip`` names contracts that do not apply (say why in your test); ``rtol`` is the relative
    tolerance of "equal outputs" (1e-9; a float32 model needs about 1e-5).
    """
    cls, plugin = _resolve("detector", detector, plugin)
    run = _Run(f"detector {cls.__name__}", skip, rtol)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_train, 5))
    normal = rng.normal(size=(12, 5))
    test = np.vstack([normal, np.full((1, 5), 10.0)])
    fitted = _first_fit(run, cls, params, X, "detector")

    def output():
        s = fitted().score(test)
        _vector(s, len(test), "score")
        p = fitted().predict(test)
        _expect(np.asarray(p).shape == (len(test),) and set(np.unique(p)) <= {0, 1},
                f"predict must give one 0/1 per row, got {np.asarray(p)!r}")
        _expect(np.isfinite(float(fitted().threshold_)), "threshold_ is not a finite number after fit")
    run.check("output", output)
    run.check("one-packet", lambda: _vector(fitted().score(test[:1]), 1, "score of one row"))
    run.check("empty-input", lambda: _vector(fitted().score(np.zeros((0, 5))), 0, "score of zero rows"))
    run.check("pure-apply", lambda: _pure(fitted(), lambda d: d.score(rng.normal(size=(7, 5)) * 3.0), "score"))

    def batch():
        whole = fitted().score(test)
        alone = np.concatenate([fitted().score(test[i:i + 1]) for i in range(len(test))])
        run.close(alone, whole, "scores of rows scored one at a time differ from the batch's")
        run.close(fitted().score(test[3:8]), whole[3:8], "scores of a sub-batch differ from the batch's")
    run.check("batch-independent", batch)
    run.check("round-trip", lambda: run.round_trip("detector", fitted(), lambda d: d.score(test), compare_threshold=True))
    run.check("deterministic", lambda: run.close(_fit(cls, params, X).score(test), fitted().score(test),
                                             "a second fit scores differently"))

    def outlier():
        s = fitted().score(test)
        _expect(s[-1] > s[:-1].max(), f"the outlier (every feature 10 standard deviations out) scores {s[-1]:.6g}, "
                                      f"not above the normal flows' highest {s[:-1].max():.6g}")
    run.check("outlier-scores-higher", outlier)

    run.check("width-checked", lambda: _one_line_error(lambda: fitted().score(np.zeros((2, 6))),
                                                       "a 6-column matrix for a 5-feature fit", "ParameterError"))
    _check_plugin(run, plugin)
    run.done()


def check_feature(feature, params: dict | None = None, *, plugin: str | None = None,
                  skip: Iterable[str] = (), rtol: float = 1e-9) -> None:
    """Every feature contract on the kit's flows (TCP and UDP, both directions, one-packet flows).

    A feature that describes a flow by its neighbours (host context) skips ``batch-independent``.
    """
    cls, plugin = _resolve("feature", feature, plugin)
    run = _Run(f"feature {cls.__name__}", skip, rtol)
    flows = sample_flows()
    one = flows.subset(flows.n_pkts == 1)
    empty = flows.subset(np.zeros(len(flows), dtype=bool))
    fitted = _first_fit(run, cls, params, flows, "feature")

    def width():
        return len(fitted().feature_names())

    run.check("output", lambda: _matrix(fitted().transform(flows), (len(flows), width()), "transform"))
    run.check("one-packet", lambda: _matrix(fitted().transform(one), (len(one), width()),
                                            "transform of one-packet flows"))
    run.check("empty-input", lambda: _matrix(fitted().transform(empty), (0, width()), "transform of no flows"))
    run.check("pure-apply", lambda: _pure(fitted(), lambda f: f.transform(flows.subset(np.arange(0, len(flows), 2))),
                                          "transform"))

    def batch():
        whole = np.asarray(fitted().transform(flows), dtype=np.float64)
        idx = np.arange(len(flows))[::-1][::2]
        run.close(np.asarray(fitted().transform(flows.subset(idx)), dtype=np.float64), whole[idx],
               "rows of a subset of flows differ from the same flows' rows in the whole table")
    run.check("batch-independent", batch)
    run.check("round-trip", lambda: run.round_trip("feature", fitted(), lambda f: f.transform(flows)))
    run.check("deterministic", lambda: run.close(_fit(cls, params, flows).transform(flows), fitted().transform(flows),
                                             "a second fit transforms differently"))
    _check_plugin(run, plugin)
    run.done()


def check_flow_splitter(splitter, params: dict | None = None, *, plugin: str | None = None,
                        skip: Iterable[str] = (), rtol: float = 1e-9) -> None:
    """Every flow-splitter contract on the kit's packets."""
    from .packets import PacketTable

    cls, plugin = _resolve("flow_splitter", splitter, plugin)
    run = _Run(f"flow splitter {cls.__name__}", skip, rtol)
    packets = sample_packets()
    fitted = _first_fit(run, cls, params, packets, "flow splitter")
    run.check("output", lambda: _flow_table(fitted().split(packets), packets))
    run.check("one-packet", lambda: _flow_table(fitted().split(packets.take(slice(0, 1))), packets.take(slice(0, 1)),
                                                max_flows=1))
    run.check("empty-input", lambda: _expect(len(_flow_table(fitted().split(PacketTable.empty()),
                                                             PacketTable.empty())) == 0,
                                             "flows from no packets"))
    run.check("pure-apply", lambda: _pure(fitted(), lambda s: s.split(packets.take(slice(0, len(packets) // 2))),
                                          "split"))
    run.check("round-trip", lambda: run.round_trip("flow_splitter", fitted(), lambda s: _flow_signature(s.split(packets))))
    run.check("deterministic", lambda: run.close(_flow_signature(_fit(cls, params, packets).split(packets)),
                                             _flow_signature(fitted().split(packets)), "a second fit splits differently"))
    _check_plugin(run, plugin)
    run.done()


def check_reader(reader, params: dict | None = None, *, plugin: str | None = None,
                 skip: Iterable[str] = ()) -> None:
    """Every reader contract on pcap files the kit writes (and a text file that is no capture)."""
    cls, plugin = _resolve("reader", reader, plugin)
    run = _Run(f"reader {cls.__name__}", skip)
    with tempfile.TemporaryDirectory(prefix="netml-kit-") as tmp:
        tmp_path = Path(tmp)
        expected = sample_packets()
        pcap, one, empty, text = (tmp_path / n for n in ("sample.pcap", "one.pcap", "empty.pcap", "notes.txt"))
        write_sample_pcap(pcap, expected)
        write_sample_pcap(one, expected.take(slice(0, 1)))
        write_sample_pcap(empty, expected.take(slice(0, 0)))
        text.write_text("these are notes, not packets\n")
        made: dict[str, Any] = {}

        def reader_obj():
            if "r" not in made:
                made["r"] = cls.create(dict(params or {}))
            return made["r"]

        def same_packets(got, want, what):
            _expect(len(got) == len(want), f"{what}: {len(got)} packets, expected {len(want)}")
            for col in ("ts_ns", "wire_len", "proto", "src", "dst", "sport", "dport", "tcp_flags", "ttl"):
                _expect(np.array_equal(getattr(got, col), getattr(want, col)), f"{what}: column {col} differs")

        run.check("params-in-init", lambda: _check_params(cls.create(dict(params or {})), params,
                                                          lambda c: c.read(str(pcap))))
        run.check("output", lambda: same_packets(reader_obj().read(str(pcap)), expected, "read(path)"))

        def file_object():
            with open(pcap, "rb") as fh:
                same_packets(reader_obj().read(io.BytesIO(fh.read())), expected, "read(binary file object)")
        run.check("output", file_object)
        run.check("one-packet", lambda: same_packets(reader_obj().read(str(one)), expected.take(slice(0, 1)),
                                                     "one-packet capture"))
        run.check("empty-input", lambda: same_packets(reader_obj().read(str(empty)), expected.take(slice(0, 0)),
                                                      "capture without packets"))

        def batches():
            parts = list(reader_obj().iter_batches(str(pcap), 3))
            _expect(all(len(p) <= 3 for p in parts), f"batch sizes {[len(p) for p in parts]} exceed max_packets=3")
            from .packets import PacketTable

            same_packets(PacketTable.concat(parts), expected, "iter_batches(max_packets=3) joined")
        run.check("batches", batches)

        run.check("bad-input-error", lambda: _one_line_error(lambda: reader_obj().read(str(text)), "a text file",
                                                             "CaptureError"))
        run.check("round-trip", lambda: run.round_trip("reader", reader_obj(), lambda r: _packet_signature(r.read(str(pcap)))))
        run.check("deterministic", lambda: run.close(_packet_signature(reader_obj().read(str(pcap))),
                                                 _packet_signature(reader_obj().read(str(pcap))), "two reads differ"))
        _check_plugin(run, plugin)
        run.done()


def check_registration(plugin: str) -> None:
    """The registration-is-light contract alone, for the entry-point module ``plugin``."""
    run = _Run(f"plugin {plugin}")
    _check_plugin(run, plugin)
    run.done()


# -- sample data -----------------------------------------------------------------------------------
def sample_packets():
    """36 packets (seconds apart, sorted): a TCP session both ways, a UDP exchange, a long UDP stream
    past the default timeouts, and four one-packet flows (SYN probes, a lone UDP datagram)."""
    from .packets import PacketTable, ip_to_words

    S, A, P, F = 0x02, 0x10, 0x08, 0x01
    c, s, d = "10.0.0.9", "10.0.0.1", "10.0.0.53"
    rows = [(0.00, c, 40000, s, 80, 6, S, 74), (0.01, s, 80, c, 40000, 6, S | A, 74),
            (0.02, c, 40000, s, 80, 6, A, 66), (0.05, c, 40000, s, 80, 6, P | A, 400),
            (0.09, s, 80, c, 40000, 6, P | A, 1500), (0.10, s, 80, c, 40000, 6, P | A, 1500),
            (0.11, c, 40000, s, 80, 6, A, 66), (0.30, c, 40000, s, 80, 6, F | A, 66),
            (0.31, s, 80, c, 40000, 6, F | A, 66), (0.32, c, 40000, s, 80, 6, A, 66),
            (1.00, c, 5353, d, 53, 17, 0, 80), (1.02, d, 53, c, 5353, 17, 0, 160),
            (2.00, c, 41000, s, 22, 6, S, 74), (2.10, c, 41001, s, 23, 6, S, 74),
            (2.20, c, 41002, s, 25, 6, S, 74), (3.00, c, 6000, d, 123, 17, 0, 90)]
    rows += [(5.0 + 15.0 * i, c, 7000, d, 514, 17, 0, 100 + 10 * (i % 3)) for i in range(20)]
    rows.sort(key=lambda r: r[0])
    n = len(rows)
    return PacketTable(
        ts_ns=np.array([round(r[0] * 1e9) + 1_700_000_000_000_000_000 for r in rows], dtype=np.int64),
        wire_len=np.array([r[7] for r in rows]), ip_version=np.full(n, 4), proto=np.array([r[5] for r in rows]),
        src=ip_to_words([r[1] for r in rows]), dst=ip_to_words([r[3] for r in rows]),
        sport=np.array([r[2] for r in rows]), dport=np.array([r[4] for r in rows]),
        tcp_flags=np.array([r[6] for r in rows]), ttl=np.full(n, 64))


def sample_flows():
    """``sample_packets()`` cut into flows by the default splitter (``meter``): 10 flows, 4 of one packet."""
    from .flowmeter import FlowMeterSplitter

    return FlowMeterSplitter().split(sample_packets())


def write_sample_pcap(path, packets) -> None:
    """Write IPv4 ``packets`` (a PacketTable) as a classic pcap with Ethernet framing."""
    from .pcapwriter import write_pcap_columns

    write_pcap_columns(path, packets.ts_ns, (packets.src[:, 1] & np.uint64(0xFFFFFFFF)).astype(np.uint32),
                       (packets.dst[:, 1] & np.uint64(0xFFFFFFFF)).astype(np.uint32), packets.sport, packets.dport,
                       packets.proto, packets.tcp_flags, packets.ttl, packets.wire_len, nanosecond=True)


# -- machinery -------------------------------------------------------------------------------------
class _Run:
    """Runs each contract, collecting failures, so one report names every broken contract."""

    def __init__(self, what: str, skip: Iterable[str] = (), rtol: float = 1e-9) -> None:
        self.what = what
        self.skip = set(skip)
        unknown = sorted(self.skip - set(CONTRACTS))
        if unknown:
            raise ValueError(f"unknown contract {unknown[0]!r} in skip; contracts: {', '.join(CONTRACTS)}")
        self.failures: list[str] = []
        self.rtol = rtol

    def close(self, got, want, message: str) -> None:
        _close(got, want, message, self.rtol)

    def round_trip(self, role: str, comp, output: Callable, compare_threshold: bool = False) -> None:
        _round_trip(role, comp, output, self.rtol, compare_threshold)

    def check(self, contract: str, fn: Callable[[], Any]) -> None:
        if contract in self.skip:
            return
        try:
            fn()
        except ContractError as exc:
            self.failures.append(f"{contract}: {exc}")
        except Exception as exc:  # noqa: BLE001 - any exception is a broken contract, reported with its type
            self.failures.append(f"{contract}: {type(exc).__name__}: {' '.join(str(exc).split())}")

    def done(self) -> None:
        if self.failures:
            lines = "\n".join(f"  - {f}" for f in self.failures)
            raise ContractError(f"{self.what} breaks {len(self.failures)} contract(s):\n{lines}")


def _resolve(kind: str, component, plugin: str | None) -> tuple[type, str | None]:
    """A class, or a registered name resolved to its class and its plugin's entry module."""
    if not isinstance(component, str):
        return component, plugin
    from .registry import get_registry

    reg = get_registry()
    info = reg.get(kind, component)
    if plugin is None:
        module = reg.pm.get_plugin(info.plugin)
        plugin = getattr(module, "__name__", None)
    return reg.component_class(kind, info.name), plugin


def _fit(cls, params, data):
    return cls.create(dict(params or {})).fit(data)


def _first_fit(run: _Run, cls, params, data, what: str) -> Callable[[], Any]:
    """Create and fit once, checking params-in-init and fit-returns-self on the way; returns a getter
    of the fitted component (which raises when that first fit failed, so later contracts say so)."""
    made: dict[str, Any] = {}

    def params_and_fit():
        comp = cls.create(dict(params or {}))
        made["comp"] = comp
        _check_params(comp, params, lambda c: made.__setitem__("result", c.fit(data)))

    run.check("params-in-init", params_and_fit)
    if "result" in made:
        run.check("fit-returns-self", lambda: _expect(made["result"] is made["comp"],
                                                      f"fit returned {type(made['result']).__name__}, not the {what}"))

    def fitted():
        if "result" not in made:
            raise ContractError("the first fit failed (see params-in-init)")
        return made["comp"]
    return fitted


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise ContractError(message)


def _check_params(comp, params, fit) -> None:
    cls = type(comp)
    defaults = cls.param_defaults()
    described = {p["name"]: p for p in cls.describe_params()}
    _expect(set(described) == set(defaults), "describe_params() and param_defaults() name different parameters")
    undocumented = [n for n, p in described.items() if not p.get("doc")]
    _expect(not undocumented, f"parameters without a doc (param_docs): {', '.join(undocumented)}")
    expected = {**defaults, **(params or {})}
    got = comp.get_params()
    _expect(_equal(got, expected), f"get_params() gives {got!r}, not the parameters given with the defaults "
                                   f"{expected!r}")
    fitted_early = sorted(k for k in vars(comp) if k.endswith("_") and not k.startswith("_"))
    _expect(not fitted_early, f"__init__ sets fitted attributes {', '.join(fitted_early)} (they belong to fit)")
    try:
        fit(comp)
    except Exception as exc:  # noqa: BLE001
        raise ContractError(f"fit on the kit's data raised {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    _expect(_equal(comp.get_params(), got), f"fit changed the parameters: {got!r} -> {comp.get_params()!r}")
    json.dumps(_jsonable(got))  # a model file stores the parameters as JSON


def _one_line_error(action: Callable[[], Any], what: str, expected: str) -> None:
    """``action`` must fail with a one-line ``NetmlError`` (what the CLI prints as one line)."""
    try:
        action()
    except NetmlError as exc:
        _expect("\n" not in str(exc), f"the error for {what} spans several lines: {str(exc)!r}")
        return
    except Exception as exc:  # noqa: BLE001
        raise ContractError(f"{what} raised {type(exc).__name__}: {exc}, not a netml error "
                            f"(netml_core.errors.{expected})") from None
    raise ContractError(f"{what} was accepted without an error")


def _vector(scores, n: int, what: str) -> None:
    s = np.asarray(scores)
    _expect(s.shape == (n,), f"{what} has shape {s.shape}, expected ({n},)")
    _expect(s.dtype.kind == "f", f"{what} has dtype {s.dtype}, expected float")
    _expect(bool(np.isfinite(s).all()), f"{what} holds NaN or infinite values")


def _matrix(X, shape: tuple[int, int], what: str) -> None:
    X = np.asarray(X)
    _expect(X.shape == shape, f"{what} has shape {X.shape}, expected {shape} (flows x len(feature_names()))")
    _expect(X.dtype.kind in "fiu", f"{what} has dtype {X.dtype}, expected float64")
    _expect(bool(np.isfinite(X.astype(np.float64)).all()), f"{what} holds NaN or infinite values")


def _flow_table(ft, packets, max_flows: int | None = None):
    from .flowtable import FlowTable

    _expect(isinstance(ft, FlowTable), f"split returned {type(ft).__name__}, not a FlowTable")
    n = len(ft)
    off, order = np.asarray(ft.offsets), np.asarray(ft.order)
    _expect(off[0] == 0 and off[-1] == len(order) and bool(np.all(np.diff(off) >= 1)),
            "offsets must start at 0, end at len(order) and give every flow at least one packet")
    _expect(bool(np.all((order >= 0) & (order < len(packets)))), "order holds packet indices out of range")
    _expect(len(np.unique(order)) == len(order), "a packet is in more than one flow")
    for col in ("src", "dst", "sport", "dport", "proto", "ip_version"):
        _expect(len(getattr(ft, col)) == n, f"key column {col} has {len(getattr(ft, col))} rows for {n} flows")
    if n:
        flow_of = np.repeat(np.arange(n), np.diff(off))
        ts = packets.ts_ns[order]
        _expect(bool(np.all((np.diff(ts) >= 0) | (np.diff(flow_of) != 0))), "packets of a flow are not in time order")
        fwd = (packets.sport[order] == ft.sport[flow_of]) & (packets.dport[order] == ft.dport[flow_of])
        rev = (packets.sport[order] == ft.dport[flow_of]) & (packets.dport[order] == ft.sport[flow_of])
        _expect(bool(np.all(fwd | rev)) and bool(np.all(packets.proto[order] == ft.proto[flow_of])),
                "a flow holds packets of another 5-tuple")
    if max_flows is not None:
        _expect(n <= max_flows, f"{n} flows from {len(packets)} packets")
    return ft


def _flow_signature(ft) -> np.ndarray:
    return np.concatenate([np.asarray(ft.offsets, dtype=np.float64), np.asarray(ft.order, dtype=np.float64)])


def _packet_signature(pt) -> np.ndarray:
    return np.concatenate([pt.ts_ns.astype(np.float64), pt.wire_len.astype(np.float64),
                           pt.sport.astype(np.float64), pt.dport.astype(np.float64)])


def _close(got, want, message: str, rtol: float) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    _expect(got.shape == want.shape, f"{message}: shapes {got.shape} and {want.shape}")
    if not np.allclose(got, want, rtol=rtol, atol=1e-12, equal_nan=True):
        diff = float(np.nanmax(np.abs(got - want))) if got.size else 0.0
        raise ContractError(f"{message} (largest difference {diff:.3g})")


def _state(comp) -> dict:
    return copy.deepcopy(dict(comp.get_state()))


def _pure(comp, apply: Callable, what: str) -> None:
    before = _state(comp)
    apply(comp)
    after = _state(comp)
    changed = sorted(k for k in set(before) | set(after) if not _equal(before.get(k), after.get(k)))
    _expect(not changed, f"{what} changed the fitted state ({', '.join(changed)}): it must only use what fit learned")


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype.kind == b.dtype.kind and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _round_trip(role: str, comp, output: Callable, rtol: float, compare_threshold: bool = False) -> None:
    """Write the component to a real model file, read it back, rebuild it as ``netml classify`` does."""
    from .model_file import ComponentRecord, read_model, write_model

    record = ComponentRecord(kind=role, name=type(comp).__name__, params=_jsonable(comp.get_params()),
                             state=dict(comp.get_state()))
    with tempfile.TemporaryDirectory(prefix="netml-kit-") as tmp:
        path = Path(tmp) / "model.netml"
        write_model(path, {role: record}, {})
        back = read_model(path, check_plugins=False).components[role]
    rebuilt = type(comp).create(back.params)
    result = rebuilt.set_state(back.state)
    _expect(result is rebuilt, "set_state must return the component itself")
    _close(output(rebuilt), output(comp), "outputs after a model-file round trip differ", rtol)
    if compare_threshold:
        _expect(float(rebuilt.threshold_) == float(comp.threshold_),
                f"threshold_ {comp.threshold_!r} came back as {rebuilt.threshold_!r}")


_REGISTRATION_PROBE = textwrap.dedent("""
    import importlib, json, sys
    from netml_core.hookspecs import hookimpl  # the core's own import cost is not the plugin's
    before = set(sys.modules)
    module = importlib.import_module(sys.argv[1])
    names = []
    for hook in ("register_readers", "register_flow_splitters", "register_features", "register_detectors"):
        fn = getattr(module, hook, None)
        if fn is not None:
            fn(register=lambda name, factory, aliases=(), summary="": names.append(name))
    heavy = sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(sys.argv[2].split(",")))
    print(json.dumps({"heavy": heavy, "registered": names}))
""")


def _check_plugin(run: _Run, plugin: str | None) -> None:
    if plugin is None:
        return

    def light():
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        res = subprocess.run([sys.executable, "-c", _REGISTRATION_PROBE, plugin, ",".join(HEAVY_MODULES)],
                             capture_output=True, text=True, timeout=120, env=env)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["?"])[-1]
            raise ContractError(f"importing {plugin} or calling its hooks failed: {last}")
        found = json.loads(res.stdout.strip().splitlines()[-1])
        _expect(not found["heavy"], f"importing {plugin} and calling its hooks imported {', '.join(found['heavy'])}: "
                                    "register a lazy 'module:Class' factory and import heavy libraries inside it")
    run.check("registration-is-light", light)
