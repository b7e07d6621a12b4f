"""``netml plugins list`` and ``netml plugins new``: what is installed, and a skeleton for a new plugin.

``list`` reads only registration data: no component factory is resolved, so torch, scapy and
scikit-learn are never imported here. ``--verbose`` adds what a plugin chose not to provide and why
(the optional ``NOT_PROVIDED = {"kind:name": reason}`` of its entry module, e.g. PyOD's torch
detectors in netml-models-pyod). ``new`` writes a distribution that installs, registers and passes
the conformance kit (``netml_core.testing``) as it is, from the templates at the end of this module.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import click

from ..registry import get_registry


@click.group()
def plugins() -> None:
    """Inspect installed netml plugins, or start a new one."""


def _not_provided(reg, plugin: str) -> dict[str, str]:
    module = reg.pm.get_plugin(plugin)
    value = getattr(module, "NOT_PROVIDED", None)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array instead of a table.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also list what each plugin does not provide and why (e.g. detectors that need torch).")
def list_plugins(as_json: bool, verbose: bool) -> None:
    """List plugins: distribution, version, status and the components each provides."""
    reg = get_registry()
    rows = [p.as_dict() for p in reg.listed()]  # disabled plugins too (status "disabled")
    if verbose:
        for r in rows:
            r["not_provided"] = _not_provided(reg, r["plugin"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES")]
    for r in rows:
        provides = ", ".join(f"{c['kind']}:{c['name']}" for c in r["provides"]) or "-"
        table.append((r["plugin"], r["distribution"] or "-", r["version"] or "-", r["status"], provides))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    missing = [(r["plugin"], what, why) for r in rows for what, why in r.get("not_provided", {}).items()]
    if missing:
        w_plugin = max(len(m[0]) for m in missing)
        w_what = max(len(m[1]) for m in missing)
        click.echo("")
        for plugin, what, why in missing:
            click.echo(f"{plugin.ljust(w_plugin)}  {what.ljust(w_what)}  not provided: {why}")
    for r in rows:
        if r["error"]:
            click.echo(f"{r['plugin']}: {r['status']}: {r['error']}", err=True)


@plugins.command("new")
@click.argument("kind", type=click.Choice(["reader", "splitter", "feature", "detector"], case_sensitive=False))
@click.argument("name")
@click.option("-o", "--output", "parent", default=".", show_default=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder in which the plugin's folder is created.")
def new_plugin(kind: str, name: str, parent: str) -> None:
    """Write a working plugin skeleton: KIND (reader, splitter, feature, detector) called NAME.

    \b
    netml plugins new detector centroid
    pip install -e ./netml-detector-centroid && pytest netml-detector-centroid
    """
    folder = write_skeleton(kind.lower(), name, parent)
    click.echo(f"wrote {folder}/ (a {kind.lower()} '{name.lower()}' that passes netml_core.testing)")
    click.echo(f"next: pip install -e {folder} && pytest {folder} && netml plugins list")


# -- skeletons ------------------------------------------------------------------------------------
#: kind -> (hook, base class, registry kind for the kit, kit check, one-line what)
_KINDS = {
    "reader": ("register_readers", "Reader", "check_reader", "packet reader"),
    "splitter": ("register_flow_splitters", "FlowSplitter", "check_flow_splitter", "flow splitter"),
    "feature": ("register_features", "Feature", "check_feature", "flow feature"),
    "detector": ("register_detectors", "Detector", "check_detector", "novelty detector"),
}


def write_skeleton(kind: str, name: str, parent: str | Path) -> Path:
    """Write ``netml-<kind>-<name>/`` under ``parent``; one-line ``NetmlError`` for a bad name or an
    existing folder."""
    from ..errors import NetmlError

    name = name.strip().lower().replace("-", "_")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        raise NetmlError(f"plugin name {name!r} must be a lower-case identifier (letters, digits, _), e.g. centroid")
    hook, base, check, what = _KINDS[kind]
    words = {
        "name": name, "Name": "".join(w.capitalize() for w in name.split("_")) + base.replace("FlowSplitter", "Splitter"),
        "kind": kind, "pkg": f"netml_{kind}_{name}", "dist": f"netml-{kind}-{name.replace('_', '-')}",
        "entry": f"{kind}_{name}", "hook": hook, "base": base, "check": check, "what": what,
    }
    folder = Path(parent) / words["dist"]
    if folder.exists():
        raise NetmlError(f"{folder} already exists: choose another name or --output folder")
    files = {
        "pyproject.toml": _PYPROJECT, "README.md": _README, f"{words['pkg']}/__init__.py": _INIT,
        f"{words['pkg']}/{name}.py": _CODE[kind], f"tests/test_{name}.py": _TEST,
    }
    try:
        for rel, template in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(string.Template(template).substitute(words), encoding="utf-8")
    except OSError as exc:
        raise NetmlError(f"cannot write {folder}: {exc.strerror or exc}") from None
    return folder


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "netml plugin: the $name $what"
requires-python = ">=3.10"
# exactly what the plugin imports, netml always included
dependencies = ["netml>=1.0", "numpy>=1.24"]

[project.optional-dependencies]
test = ["pytest>=8"]

# the whole integration: netml finds the plugin through this entry-point group
[project.entry-points."netml.plugins"]
$entry = "$pkg"

[tool.setuptools]
packages = ["$pkg"]
"""

_README = """\
# $dist

A netml $what plugin, `$name`, started with `netml plugins new $kind $name`.

    pip install -e .            # then `netml plugins list` shows $entry
    pytest                      # the netml conformance kit (netml_core.testing.$check)

Write the component in `$pkg/$name.py`; keep `$pkg/__init__.py` free of heavy imports.
"""

_INIT = """\
\"\"\"netml plugin entry module: registration only (the factory is a lazy "module:Class" string,
so `netml plugins list` never imports the component's code).\"\"\"

from netml_core import hookimpl


@hookimpl
def $hook(register):
    register("$name", "$pkg.$name:$Name", summary="$name: describe it in one line (shown by netml plugins list)")
"""

_TEST = """\
\"\"\"The netml conformance kit: every contract netml relies on, on data the kit makes.\"\"\"

from netml_core.testing import $check

from $pkg.$name import $Name


def test_${name}_conforms():
    $check($Name, plugin="$pkg")
"""

_CODE = {
    "detector": """\
\"\"\"The $name detector: distance from the training flows' mean, in units of their spread.

Replace _fit and _score with your method. Parameters live in __init__ only (with defaults and
param_docs); learned state in attributes ending in _; the base class sets threshold_ from
contamination and provides fit, score and predict.
\"\"\"

from __future__ import annotations

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ParameterError
from netml_core.params import check_contamination, check_number


class $Name(Detector):
    \"\"\"Euclidean distance to the training mean in standard deviations (higher = more anomalous).\"\"\"

    param_docs = {
        "min_std": "floor of a feature's standard deviation (feature units), so constant features do not divide by 0",
        "contamination": "expected fraction of anomalies in training; the threshold when netml learn does not calibrate one",
    }

    def __init__(self, min_std=1e-6, contamination=0.1):
        check_number("min_std", min_std, low=0.0, low_open=True)
        check_contamination(contamination)
        self.min_std = min_std
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> None:
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(X.std(axis=0), float(self.min_std))

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.mean_.shape[0]:
            raise ParameterError(f"$name was fitted on {self.mean_.shape[0]} features, got {X.shape[1]}")
        return np.sqrt((((X - self.mean_) / self.scale_) ** 2).sum(axis=1))

    # get_state()/set_state(): the defaults save and restore every attribute ending in _ (numpy
    # arrays and numbers here), which suffices; override them to validate a loaded state
""",
    "feature": """\
\"\"\"The $name feature: packets, bytes and duration of each flow.

Replace transform with your representation: vectorised numpy over flows.order and flows.offsets
(flow i is packets order[offsets[i]:offsets[i+1]]), one row per flow, one-packet flows included.
\"\"\"

from __future__ import annotations

import numpy as np
from netml_core.components import Feature
from netml_core.params import check_bool


class $Name(Feature):
    \"\"\"Packets, bytes and duration (seconds) of each flow, optionally log1p-scaled.\"\"\"

    param_docs = {"log": "log1p the three values (counts, bytes and seconds are heavy-tailed)"}

    def __init__(self, log=True):
        check_bool("log", log)
        self.log = log

    def fit(self, flows) -> "$Name":
        self.n_features_ = 3  # learned state ends in _ and is saved in the model file
        return self

    def feature_names(self) -> list[str]:
        return ["packets", "bytes", "duration_s"]

    def transform(self, flows) -> np.ndarray:
        n = len(flows)
        if n == 0:
            return np.zeros((0, 3), dtype=np.float64)
        starts = flows.offsets[:-1]
        size = flows.column("wire_len").astype(np.float64)
        ts = flows.column("ts_ns")
        packets = np.diff(flows.offsets).astype(np.float64)
        nbytes = np.add.reduceat(size, starts)
        duration = (ts[flows.offsets[1:] - 1] - ts[starts]) / 1e9
        X = np.column_stack([packets, nbytes, duration])
        return np.log1p(X) if self.log else X
""",
    "splitter": """\
\"\"\"The $name flow splitter: one flow per directional 5-tuple, however long.

Replace split with your rule (timeouts, TCP close ...). Vectorised: sort once, cut where the key
changes; every packet lands in exactly one flow, time-sorted inside it.
\"\"\"

from __future__ import annotations

import numpy as np
from netml_core.components import FlowSplitter
from netml_core.flowtable import FlowTable
from netml_core.params import check_number


class $Name(FlowSplitter):
    \"\"\"Directional 5-tuple flows without timeouts; flows of fewer than min_packets packets are dropped.\"\"\"

    param_docs = {"min_packets": "drop flows with fewer packets (integer >= 1; 1 keeps one-packet flows)"}

    def __init__(self, min_packets=1):
        check_number("min_packets", min_packets, low=1, integer=True)
        self.min_packets = min_packets

    def split(self, packets) -> FlowTable:
        keys = (packets.ts_ns, packets.dport, packets.sport, packets.dst[:, 1], packets.dst[:, 0],
                packets.src[:, 1], packets.src[:, 0], packets.proto)
        order = np.lexsort(keys).astype(np.int64)
        if len(order):
            k = np.column_stack([np.asarray(c[order], dtype=np.uint64) for c in keys[1:]])
            starts = np.flatnonzero(np.r_[True, np.any(k[1:] != k[:-1], axis=1)])
        else:
            starts = np.zeros(0, dtype=np.int64)
        offsets = np.r_[starts, len(order)].astype(np.int64)
        keep = np.diff(offsets) >= self.min_packets
        first = order[starts]
        ft = FlowTable(packets=packets, order=order, offsets=offsets, src=packets.src[first], dst=packets.dst[first],
                       sport=packets.sport[first], dport=packets.dport[first], proto=packets.proto[first],
                       ip_version=packets.ip_version[first])
        return ft if keep.all() else ft.subset(keep)
""",
    "reader": """\
\"\"\"The $name reader: pcap/pcapng captures through netml's own framing and decoder.

Replace iter_batches with your library's framing (dpkt, a capture device ...); decode headers with
netml_core's vectorised decoder as the built-in readers do. A file that is not a capture must raise
netml_core.errors.CaptureError with one line.
\"\"\"

from __future__ import annotations

from typing import Iterator

from netml_core.components import Reader
from netml_core.packets import PacketTable
from netml_core.params import check_number


class $Name(Reader):
    \"\"\"pcap/pcapng via netml's native framing, in batches of at most batch_size packets.\"\"\"

    param_docs = {"batch_size": "most packets per batch when the caller sets no smaller max_packets (integer >= 1)"}

    def __init__(self, batch_size=1_000_000):
        check_number("batch_size", batch_size, low=1, integer=True)
        self.batch_size = batch_size

    def iter_batches(self, source, max_packets: int = 1_000_000) -> Iterator[PacketTable]:
        from netml_core.readers.native import NativeReader

        yield from NativeReader().iter_batches(source, min(int(max_packets), int(self.batch_size)))
""",
}
