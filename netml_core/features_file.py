"""The features file of ``netml learn extract``: a NumPy ``.npz`` that ``learn train`` reads back.

Arrays (row ``i`` of each describes flow ``i``):

- ``features`` float64 ``(n_flows, n_values)``; ``labels`` int64 (0 normal, 1 anomaly), only when known;
- flow keys ``src``, ``dst`` (``(n, 2) uint64``, the PacketTable's 16-byte form: IPv4 as
  IPv4-mapped IPv6), ``sport``, ``dport`` (uint16), ``proto`` (uint8);
- ``first_ts``, ``last_ts`` float64 epoch seconds of each flow's first and last packet;
- ``fitted``: a 0-d unicode array holding JSON (the fitted reader/splitter/feature parameters and
  state), ``format``: ``"netml-features/1"``.

It is always read with ``allow_pickle=False`` whatever its name, and written to a temporary file in
the target directory that replaces the target only once complete, so a crash never leaves half a
file. Anything that is not such a file is one ``FeaturesFileError`` line.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .atomic import atomic_output
from .errors import NetmlError
from .flowtable import FlowTable

FORMAT = "netml-features/1"
KEY_ARRAYS = ("src", "dst", "sport", "dport", "proto", "first_ts", "last_ts")
_KEY_DTYPES = {"src": np.uint64, "dst": np.uint64, "sport": np.uint16, "dport": np.uint16,
               "proto": np.uint8, "first_ts": np.float64, "last_ts": np.float64}


class FeaturesFileError(NetmlError):
    """A features file that is missing, not a netml ``.npz`` features file, or inconsistent."""


@dataclass
class FeaturesData:
    """The content of a features file."""

    features: np.ndarray
    labels: np.ndarray | None = None
    src: np.ndarray | None = None
    dst: np.ndarray | None = None
    sport: np.ndarray | None = None
    dport: np.ndarray | None = None
    proto: np.ndarray | None = None
    first_ts: np.ndarray | None = None
    last_ts: np.ndarray | None = None
    fitted: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a features file")


def write_features(path, features, labels=None, flows: FlowTable | dict | None = None,
                   fitted: dict | None = None) -> None:
    """Write the features file atomically.

    ``flows`` is the FlowTable the rows came from (or a dict with the ``KEY_ARRAYS``); ``fitted`` is
    JSON-able data (numpy scalars and arrays are converted).
    """
    path = os.fspath(path)
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2:
        raise FeaturesFileError(f"features must be a 2-D matrix, got shape {X.shape}")
    n = X.shape[0]
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "features": X,
        "fitted": np.array(json.dumps(fitted or {}, default=_json_default, sort_keys=True)),
    }
    if labels is not None:
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (n,):
            raise FeaturesFileError(f"{len(y)} labels for {n} feature rows")
        arrays["labels"] = y
    if flows is not None:
        for k in KEY_ARRAYS:
            v = getattr(flows, k) if isinstance(flows, FlowTable) else flows[k]
            v = np.asarray(v, dtype=_KEY_DTYPES[k])
            if len(v) != n:
                raise FeaturesFileError(f"{len(v)} flow keys ({k}) for {n} feature rows")
            arrays[k] = v
    with atomic_output(path, what="features file", error=FeaturesFileError) as fh:
        np.savez_compressed(fh, **arrays)


def read_features(path) -> FeaturesData:
    """Read a features file (never unpickles); one-line ``FeaturesFileError`` when it is not one."""
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise FeaturesFileError(f"cannot read features file {path}: {exc.strerror or exc}") from None
    if magic != b"PK\x03\x04":
        raise FeaturesFileError(f"{name} is not a netml features file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "features" not in npz.files or "format" not in npz.files:
                if "manifest.json" in npz.zip.namelist():  # a model file from 'netml learn'
                    raise FeaturesFileError(f"{name} is a netml model file, not a features file "
                                            "(write one with 'netml learn extract --feature-file PATH')")
                raise FeaturesFileError(f"{name} is an .npz but not a netml features file (no 'features'/'format')")
            fmt = str(npz["format"])
            if fmt != FORMAT:
                raise FeaturesFileError(f"{name}: unsupported features file format {fmt!r} (expected {FORMAT!r})")
            arrays = {k: npz[k] for k in npz.files}
    except FeaturesFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise FeaturesFileError(f"{name} is not a readable netml features file: {exc}".splitlines()[0]) from None
    X = arrays["features"]
    if X.ndim != 2 or X.dtype.kind not in "fiu":
        raise FeaturesFileError(f"{name}: 'features' must be a numeric 2-D matrix, got {X.dtype} {X.shape}")
    n = X.shape[0]
    out = FeaturesData(features=X.astype(np.float64, copy=False))
    for k in ("labels", *KEY_ARRAYS):
        if k in arrays:
            v = arrays[k]
            if len(v) != n:
                raise FeaturesFileError(f"{name}: '{k}' has {len(v)} rows for {n} feature rows")
            setattr(out, k, v)
    try:
        out.fitted = json.loads(str(arrays.get("fitted", np.array("{}"))))
    except json.JSONDecodeError as exc:
        raise FeaturesFileError(f"{name}: its fitted parameters are not valid JSON ({exc.msg})") from None
    if not isinstance(out.fitted, dict):
        raise FeaturesFileError(f"{name}: its fitted parameters are not a JSON object")
    return out


# -- with a pipeline ------------------------------------------------------------------------------------
FRONT = ("reader", "flow_splitter", "feature")


def write_extracted(path, pipe, extracted) -> None:
    """The features file of ``Pipeline.fit_extract``'s result: its rows, labels and flow keys, and
    the fitted reader, splitter and feature that ``fitted_pipeline`` rebuilds. Missing folders are
    created (the original's ``out/`` paths)."""
    records = pipe.records(FRONT)
    fitted = {role: {"name": r.name, "params": r.params, "state": r.state, "plugin": r.plugin,
                     "distribution": r.distribution, "version": r.version} for role, r in records.items()}
    try:
        os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    except OSError as exc:
        raise NetmlError(f"cannot create the folder of {path}: {exc.strerror or exc}") from None
    write_features(path, extracted.X, extracted.y, extracted.flows, fitted)


def fitted_pipeline(path, data: FeaturesData, *, detector: str | None, detector_params: dict | None = None,
                    scaler: str | None = None):
    """A ``Pipeline`` whose reader, splitter and feature are fitted as ``data`` (read from ``path``)
    saved them, with ``detector`` still to fit on ``data.features``. The saved states are untrusted
    input, checked as a model file's are; a plugin that is not installed is the model file's one-line
    error."""
    from .model_file import ComponentRecord, check_plugins_installed, check_states
    from .pipeline import Pipeline

    fitted = data.fitted or {}
    records = {role: ComponentRecord(kind=role, name=v["name"], params=v.get("params") or {},
                                     state=v.get("state") or {}, plugin=v.get("plugin", ""),
                                     distribution=v.get("distribution", ""), version=v.get("version", ""))
               for role, v in fitted.items() if role in FRONT}
    if set(records) != set(FRONT):
        raise NetmlError(f"{path}: features file lacks the fitted extraction state (reader, splitter, feature); "
                         "re-run 'netml learn extract'")
    check_plugins_installed(records, path, what="features file")
    check_states(records, path, what="features file")
    front = Pipeline.from_records(records)
    pipe = Pipeline(reader=front.names["reader"], reader_params=records["reader"].params,
                    flow_splitter=front.names["flow_splitter"], flow_splitter_params=records["flow_splitter"].params,
                    feature=front.names["feature"], feature_params=records["feature"].params,
                    scaler=scaler, detector=detector, detector_params=detector_params or {})
    for role in FRONT:
        pipe.components[role] = front.components[role]
    pipe.front_fitted = True
    return pipe
