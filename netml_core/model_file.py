"""Model files: one zip per trained pipeline, readable without unpickling anything.

Layout (format ``netml-model``, version ``FORMAT_VERSION``)::

    manifest.json   format, format_version, netml_version, created (UTC ISO 8601),
                    components: role -> {kind, name, params, state, plugin, distribution, version},
                    info: free JSON (training summary, feature names, metrics)
    arrays.npz      every numpy array of every params/state, keyed "<role>.<path>";
                    read with ``np.load(allow_pickle=False)``, so an object array is refused
    blobs/<role>/<path>   each ``bytes`` value as its own entry (safetensors, skops payloads);
                    the owning component decides how to decode them, never with pickle

In the manifest an array is written as ``{"__ndarray__": key}`` and a blob as
``{"__bytes__": entry}``; every other value is plain JSON. Files are written to a temporary file
in the target folder and renamed, so a reader never sees half a model.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output
from .errors import ModelFileError, NotAModelError

FORMAT = "netml-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
BLOB_DIR = "blobs/"
#: refuse manifests larger than this (bytes): a model's JSON part is kilobytes
MAX_MANIFEST_BYTES = 64 * 1024 * 1024

_ARRAY_TAG = "__ndarray__"
_BYTES_TAG = "__bytes__"

#: registry kind of each pipeline role that comes from a plugin (the scaler is core code)
PLUGIN_KINDS = {"reader": "reader", "flow_splitter": "flow_splitter", "feature": "feature",
                "detector": "detector"}


@dataclass
class ComponentRecord:
    """One component of a saved pipeline: what made it and what it learned."""

    kind: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    plugin: str = ""
    distribution: str = ""
    version: str = ""


@dataclass
class ModelContents:
    """What ``read_model`` returns: decoded components plus the manifest's header fields."""

    components: dict[str, ComponentRecord]
    info: dict[str, Any]
    netml_version: str
    format_version: int
    created: str


# -- encoding -------------------------------------------------------------------------------
class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.blobs: dict[str, bytes] = {}

    def encode(self, value: Any, path: str) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise ModelFileError(f"cannot save {path}: object arrays are not allowed in model files")
            self.arrays[path] = value
            return {_ARRAY_TAG: path}
        if isinstance(value, (bytes, bytearray, memoryview)):
            entry = BLOB_DIR + path.replace(".", "/")
            self.blobs[entry] = bytes(value)
            return {_BYTES_TAG: entry}
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ModelFileError(f"cannot save {path}: mapping key {k!r} is not a string")
                out[k] = self.encode(v, f"{path}.{k}")
            return out
        if isinstance(value, (list, tuple)):
            return [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ModelFileError(
            f"cannot save {path}: {type(value).__name__} is not JSON data, a numpy array or bytes"
        )


def _decode(value: Any, arrays: dict[str, np.ndarray], blobs: dict[str, bytes]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY_TAG}:
            key = value[_ARRAY_TAG]
            if key not in arrays:
                raise ModelFileError(f"model file is damaged: array {key!r} is missing from {ARRAYS}")
            return arrays[key]
        if set(value) == {_BYTES_TAG}:
            entry = value[_BYTES_TAG]
            if entry not in blobs:
                raise ModelFileError(f"model file is damaged: entry {entry!r} is missing")
            return blobs[entry]
        return {k: _decode(v, arrays, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, blobs) for v in value]
    return value


# -- writing --------------------------------------------------------------------------------
def write_model(path: str | os.PathLike, components: dict[str, ComponentRecord],
                info: dict[str, Any] | None = None, *, netml_version: str | None = None) -> Path:
    """Write a model file atomically (temp file in the same folder, then ``os.replace``).

    The output folder is created if missing (the original's ``out/...`` paths).
    """
    if netml_version is None:
        from . import __version__ as netml_version  # noqa: N811
    enc = _Encoder()
    manifest_components = {}
    for role, rec in components.items():
        manifest_components[role] = {
            "kind": rec.kind,
            "name": rec.name,
            "params": enc.encode(rec.params, f"{role}.params"),
            "state": enc.encode(rec.state, f"{role}.state"),
            "plugin": rec.plugin,
            "distribution": rec.distribution,
            "version": rec.version,
        }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "netml_version": netml_version,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "components": manifest_components,
        "info": enc.encode(info or {}, "info"),
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=False).encode("utf-8")
    npz = io.BytesIO()
    np.savez(npz, **enc.arrays)

    target = Path(path)
    with atomic_output(target, what="model file", error=ModelFileError, make_parents=True) as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, manifest_bytes)
            zf.writestr(ARRAYS, npz.getvalue())
            for entry, data in enc.blobs.items():
                zf.writestr(entry, data)
    return target


# -- reading --------------------------------------------------------------------------------
def _sniff_not_zip(path: Path, head: bytes) -> str:
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return (f"{path} is not a netml model: it is a pickle file (e.g. written by the original netml), "
                "which is not loaded because unpickling can run arbitrary code")
    if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a", b"\x4d\x3c\xb2\xa1",
                    b"\xa1\xb2\x3c\x4d"):
        return f"{path} is not a netml model: it is a packet capture (pass it with --pcap)"
    return f"{path} is not a netml model file (not a zip archive)"


def read_model(path: str | os.PathLike, *, check_plugins: bool = True) -> ModelContents:
    """Read and validate a model file; every problem is a one-line ``ModelFileError``.

    Nothing is unpickled: the manifest is JSON, arrays come from ``np.load(allow_pickle=False)``
    and blobs are returned as ``bytes`` for their component to decode safely.
    """
    p = Path(path)
    if os.fspath(path) == "-":
        raise ModelFileError("the model is read from a file, not from stdin ('-'): give its path; stdin "
                             "is for the capture")
    if not p.exists():
        raise ModelFileError(f"model file {p} does not exist")
    if p.is_dir():
        raise ModelFileError(f"model file {p} is a folder, not a file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {p}: {exc.strerror or exc}") from None
    if not head:
        raise ModelFileError(f"model file {p} is empty")
    try:
        zf = zipfile.ZipFile(p)
    except zipfile.BadZipFile:
        if head[:4] == b"PK\x03\x04":
            raise ModelFileError(f"model file {p} is truncated or damaged (zip directory missing)") from None
        raise ModelFileError(_sniff_not_zip(p, head)) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {p}: {exc.strerror or exc}") from None
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            if {"features.npy", "format.npy"} <= names:  # what 'netml learn extract' writes
                raise NotAModelError(f"{p} is a netml features file, not a model: train one with "
                                     f"'netml learn train --feature-file {p} -o MODEL'")
            raise NotAModelError(f"{p} is not a netml model file (zip without {MANIFEST})")
        manifest = _read_manifest(zf, p)
        arrays = _read_arrays(zf, p) if ARRAYS in names else {}
        blobs = {}
        for entry in names:
            if entry.startswith(BLOB_DIR) and not entry.endswith("/"):
                blobs[entry] = _read_entry(zf, entry, p)

    components = {}
    for role, raw in manifest["components"].items():
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ModelFileError(f"{p} is not a valid netml model: component {role!r} has no name")
        components[role] = ComponentRecord(
            kind=str(raw.get("kind", role)),
            name=raw["name"],
            params=_decode(raw.get("params") or {}, arrays, blobs),
            state=_decode(raw.get("state") or {}, arrays, blobs),
            plugin=str(raw.get("plugin", "")),
            distribution=str(raw.get("distribution", "")),
            version=str(raw.get("version", "")),
        )
    if check_plugins:
        check_plugins_installed(components, p)
    return ModelContents(
        components=components,
        info=_decode(manifest.get("info") or {}, arrays, blobs),
        netml_version=str(manifest.get("netml_version", "")),
        format_version=int(manifest["format_version"]),
        created=str(manifest.get("created", "")),
    )


def _read_entry(zf: zipfile.ZipFile, entry: str, p: Path) -> bytes:
    try:
        return zf.read(entry)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise ModelFileError(f"model file {p} is truncated or damaged ({entry}: {exc})") from None


def _read_manifest(zf: zipfile.ZipFile, p: Path) -> dict:
    if zf.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{p} is not a netml model file ({MANIFEST} is implausibly large)")
    raw = _read_entry(zf, MANIFEST, p)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{p} is not a netml model file ({MANIFEST} is not JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{p} is not a netml model file (format is not {FORMAT!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{p} is not a valid netml model (format_version missing)")
    if version > FORMAT_VERSION:
        made_by = manifest.get("netml_version", "a newer netml")
        raise ModelFileError(
            f"model file {p} uses format version {version} (made by netml {made_by}); this netml reads "
            f"up to version {FORMAT_VERSION}: upgrade netml"
        )
    if not isinstance(manifest.get("components"), dict):
        raise ModelFileError(f"{p} is not a valid netml model (no components)")
    return manifest


def _read_arrays(zf: zipfile.ZipFile, p: Path) -> dict[str, np.ndarray]:
    raw = _read_entry(zf, ARRAYS, p)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        # numpy says "Object arrays cannot be loaded when allow_pickle=False" or "...pickled data..."
        raise ModelFileError(
            f"model file {p} is refused: {ARRAYS} holds pickled data, which netml never loads ({exc})"
        ) from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFileError(f"model file {p} is truncated or damaged ({ARRAYS}: {exc})") from None
    for k, v in arrays.items():
        # NpzFile hands back raw bytes for a member without the .npy magic (e.g. a pickle)
        if not isinstance(v, np.ndarray):
            raise ModelFileError(f"model file {p} is refused: {ARRAYS} member {k!r} is not a numpy array")
    return arrays


def check_plugins_installed(components: dict[str, ComponentRecord], p: Path | str = "model", *,
                            what: str = "model file") -> None:
    """Fail with the distribution to install when a component's plugin is missing."""
    from .registry import KIND_LABELS, get_registry

    reg = get_registry()
    for role, rec in components.items():
        kind = PLUGIN_KINDS.get(role)
        if kind is None:
            continue
        if reg.resolve_name(kind, rec.name) is None:
            if rec.distribution:
                source = f"{rec.distribution} {rec.version}".rstrip()
                hint = f"pip install {rec.distribution}"
            else:
                source, hint = f"plugin {rec.plugin or '?'}", "install the plugin that provides it"
            raise ModelFileError(
                f"{what} {p} needs the {KIND_LABELS[kind]} {rec.name!r} from {source}, which is not "
                f"installed: {hint}"
            )
