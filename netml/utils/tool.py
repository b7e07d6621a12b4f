"""``dump_data`` / ``load_data``: the original helpers, with a file format that is safe to load.

netml 0.x pickled whatever it was given, so loading a ``.dat`` file could run any code inside it.
Here ``dump_data`` writes a netml zip (the model-file container: ``manifest.json`` + ``arrays.npz``,
never a pickle) holding what netml itself produces: numpy arrays, numbers, strings, ``None``,
bytes, lists/tuples/dicts of these, and the detectors of ``netml.ndm`` (``OCSVM``, ``KDE``, ``IF``,
``AE``, ``GMM``, ``PCA``: their parameters and fitted state) and models loaded from ``netml learn``
files. ``load_data`` reads:

- files written by ``dump_data`` (tuples come back as tuples, detectors fitted);
- model files written by ``netml learn`` -> ``(model, train_history)``, where ``model.predict(X)``
  scores feature rows through the saved scaler and detector (``model.predict(pcap)`` extracts them
  from a ``PCAP`` or a capture path with the model's own fitted splitter and feature first);
- features files of ``netml learn extract`` -> ``(features, labels)``;
- legacy pickles (what netml 0.x wrote) **only** with ``allow_pickle=True``, and then with a
  ``PickleWarning`` saying that unpickling runs code from the file. Without it: a one-line
  ``UnsafeFileError`` that says so. There is no silent path to ``pickle.load``.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import time
import warnings
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

import numpy as np

from netml_core.errors import ModelFileError, NetmlError, NotAModelError

#: key of the data tree in a data file's ``info``
DATA_KEY = "netml_data"
_TUPLE = "__tuple__"
_DETECTOR = "__netml_detector__"
_PIPELINE = "__netml_pipeline__"


class ManualDependencyError(RuntimeError):
    """Kept for scripts that import it from here (netml 0.x)."""


class UnsafeFileError(NetmlError):
    """A file that can only be read by unpickling it, which the caller has not allowed."""


class PickleWarning(UserWarning):
    """Emitted when ``load_data(..., allow_pickle=True)`` unpickles a legacy file."""


# -- writing -------------------------------------------------------------------------------------

def _to_tree(value: Any, where: str) -> Any:
    from netml.ndm.detector import NetmlDetector

    if isinstance(value, NetmlDetector):
        return {_DETECTOR: value._to_record()}
    from netml.ndm.learned import LearnedModel

    if isinstance(value, LearnedModel):
        return {_PIPELINE: {role: dict(vars(rec)) for role, rec in value.pipeline.records().items()}}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise NetmlError(f"dump_data cannot store {where}: object arrays are not safe to load back")
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_to_tree(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_to_tree(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise NetmlError(f"dump_data cannot store {where}: dict key {k!r} is not a string")
            if k in (_TUPLE, _DETECTOR, _PIPELINE):
                raise NetmlError(f"dump_data cannot store {where}: key {k!r} is reserved")
            out[k] = _to_tree(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    raise NetmlError(
        f"dump_data cannot store {where}: {type(value).__name__} (it stores arrays, numbers, strings, "
        "lists/tuples/dicts of them and netml.ndm detectors)"
    )


def check_path(file_path, overwrite=True):
    """Create the folder of ``file_path`` if missing (netml 0.x helper); returns the path."""
    folder = os.path.dirname(os.fspath(file_path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    return file_path


def dump_data(data, out_file, verbose=True):
    """Write ``data`` to ``out_file`` (a path, created atomically with its folder, or a binary file)."""
    from netml_core.model_file import write_model

    tree = _to_tree(data, "data")
    if hasattr(out_file, "write"):
        with tempfile.TemporaryDirectory(prefix="netml-dump-") as tmp:
            path = Path(tmp) / "data.dat"
            _write(write_model, path, tree)
            out_file.write(path.read_bytes())
        return None
    if not out_file:
        raise TypeError("out_file argument required")
    _write(write_model, out_file, tree)
    return None


def _write(write_model, path, tree) -> None:
    try:
        write_model(path, {}, {DATA_KEY: tree})
    except ModelFileError as exc:
        raise NetmlError(str(exc).replace("model file", "data file")) from None


# -- reading -------------------------------------------------------------------------------------

def _from_tree(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(_from_tree(v) for v in value[_TUPLE])
        if set(value) == {_DETECTOR}:
            from netml.ndm.detector import NetmlDetector

            return NetmlDetector._from_record(value[_DETECTOR])
        if set(value) == {_PIPELINE}:
            from netml.ndm.learned import LearnedModel
            from netml_core.model_file import ComponentRecord, check_plugins_installed
            from netml_core.pipeline import Pipeline

            records = {role: ComponentRecord(**rec) for role, rec in value[_PIPELINE].items()}
            check_plugins_installed(records, "data file")
            return LearnedModel(Pipeline.from_records(records))
        return {k: _from_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_tree(v) for v in value]
    return value


def _is_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def load_data(in_file, *, allow_pickle=False):
    """Read what ``dump_data`` or ``netml learn`` wrote (see the module doc); never unpickles unasked."""
    if hasattr(in_file, "read"):
        raw = in_file.read()
        with tempfile.TemporaryDirectory(prefix="netml-load-") as tmp:
            path = Path(tmp) / (Path(getattr(in_file, "name", "data.dat")).name or "data.dat")
            path.write_bytes(raw)
            return load_data(path, allow_pickle=allow_pickle)
    path = Path(in_file)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise NetmlError(f"cannot read {path}: {exc.strerror or exc}") from None
    if _is_pickle(head):
        if not allow_pickle:
            raise UnsafeFileError(
                f"{path} is a pickle (as netml 0.x wrote): loading it runs any code it contains; "
                "if you trust its origin, call load_data(path, allow_pickle=True)"
            )
        warnings.warn(f"unpickling {path}: a pickle can run arbitrary code on load, only do this for "
                      "files you trust (re-save it with dump_data to get a safe file)", PickleWarning,
                      stacklevel=2)
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - explicitly allowed by the caller
    if head[:4] != b"PK\x03\x04":
        raise NetmlError(f"{path} is not a netml data or model file")
    from netml_core.model_file import read_model

    try:
        contents = read_model(path)
    except NotAModelError:  # a zip of arrays without a manifest: the features file of 'learn extract'
        return _load_features_file(path)
    if DATA_KEY in contents.info:
        return _from_tree(contents.info[DATA_KEY])
    if "detector" in contents.components:
        from netml.ndm.learned import LearnedModel

        model = LearnedModel.from_contents(contents, source=str(path))
        return model, dict(contents.info.get("history", {}))
    raise NetmlError(f"{path} is a netml model file without a detector or data")


def _load_features_file(path: Path):
    from netml_core.features_file import read_features

    data = read_features(path)
    return np.asarray(data.features, dtype=float), (None if data.labels is None else np.asarray(data.labels))


# -- netml 0.x helpers ---------------------------------------------------------------------------

def timing(func):
    """Decorator of netml 0.x: the call returns ``(result, minutes)`` and sets ``func.tot_time``."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        verbose = kwargs.pop("verbose", 0)
        start = time.time()
        if verbose > 0:
            print(f"'{func.__name__}()' starts at {datetime.fromtimestamp(start):%Y-%m-%d %H:%M:%S}")
        result = func(*args, **kwargs)
        end = time.time()
        tot_time = float(f"{(end - start) / 60:.4f}")
        if verbose > 0:
            print(f"'{func.__name__}()' ends at {datetime.fromtimestamp(end):%Y-%m-%d %H:%M:%S} "
                  f"and takes {tot_time} mins.")
        func.tot_time = tot_time
        return result, tot_time

    return wrapper


def data_info(data=None, name="data"):
    """Print shape and per-column statistics of a 2-D array (netml 0.x helper, numpy only)."""
    data = np.asarray(data, dtype=float)
    print(f"{name}.shape: {data.shape}")
    buf = io.StringIO()
    for j in range(data.shape[1]):
        col = data[:, j]
        buf.write(f"col_{j}: mean={col.mean():.3f} std={col.std():.3f} min={col.min():.3f} max={col.max():.3f}\n")
    print(buf.getvalue(), end="")
