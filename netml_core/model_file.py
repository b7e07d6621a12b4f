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
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output
from .errors import ModelFileError, NetmlError, NotAModelError
from .state_checks import short

FORMAT = "netml-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
BLOB_DIR = "blobs/"
#: refuse manifests larger than this (bytes): a model's JSON part is kilobytes
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

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
#: a model file is untrusted input: these bound what one can make netml allocate or walk
#: (the largest built-in state, kde's training matrix, is 8 bytes x flows x features)
MAX_MEMBER_BYTES = 512 << 20  # any zip member or .npy array, uncompressed
MAX_TOTAL_BYTES = 1 << 30  # all members of one archive together, uncompressed
MAX_MEMBERS = 10_000
MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 40
MAX_NAME_CHARS = 200
#: array dtypes a model may hold: bool, integers, floats, complex, fixed-width text and bytes
ARRAY_KINDS = "biufcUS"
#: pipeline roles a model may describe
ROLES = ("reader", "flow_splitter", "feature", "scaler", "detector")


def _sniff_not_zip(path: Path, head: bytes) -> str:
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return (f"{path} is not a netml model: it is a pickle file (e.g. written by the original netml), "
                "which is not loaded because unpickling can run arbitrary code")
    if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a", b"\x4d\x3c\xb2\xa1",
                    b"\xa1\xb2\x3c\x4d"):
        return f"{path} is not a netml model: it is a packet capture (pass it with --pcap)"
    return f"{path} is not a netml model file (not a zip archive)"


#: what zipfile and zlib raise on a damaged archive or member (RuntimeError: "encrypted")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
               RuntimeError, struct.error, OverflowError, KeyError)


def read_model(path: str | os.PathLike, *, check_plugins: bool = True) -> ModelContents:
    """Read and validate a model file; every problem is a one-line ``ModelFileError``.

    Nothing is unpickled: the manifest is JSON, arrays are parsed from their ``.npy`` header and
    bytes (never ``np.load``, which trusts the header's size), and blobs are returned as ``bytes``
    for their component to decode safely. Sizes, nesting and numbers are bounded before anything
    is allocated from them; the manifest is checked against the model schema, and with
    ``check_plugins`` each component's saved state against its own checks (``state_checks``).
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
    except _ZIP_ERRORS as exc:
        raise ModelFileError(f"model file {p} is truncated or damaged ({_one_line(exc)})") from None
    with zf:
        infos = _check_members(zf, p)
        names = set(infos)
        if MANIFEST not in names:
            if {"features.npy", "format.npy"} <= names:  # what 'netml learn extract' writes
                raise NotAModelError(f"{p} is a netml features file, not a model: train one with "
                                     f"'netml learn train --feature-file {p} -o MODEL'")
            raise NotAModelError(f"{p} is not a netml model file (zip without {MANIFEST})")
        manifest = _read_manifest(zf, infos[MANIFEST], p)
        arrays = _read_arrays(zf, infos[ARRAYS], p) if ARRAYS in names else {}
        blobs = {}
        for entry, info in infos.items():
            if entry.startswith(BLOB_DIR) and not entry.endswith("/"):
                blobs[entry] = _read_entry(zf, info, p)

    components = {}
    for role, raw in manifest["components"].items():
        components[role] = ComponentRecord(
            kind=raw.get("kind", role),
            name=raw["name"],
            params=_decode(raw.get("params") or {}, arrays, blobs),
            state=_decode(raw.get("state") or {}, arrays, blobs),
            plugin=raw.get("plugin", ""),
            distribution=raw.get("distribution", ""),
            version=raw.get("version", ""),
        )
    if check_plugins:
        check_plugins_installed(components, p)
        check_states(components, p)
    return ModelContents(
        components=components,
        info=_decode(manifest.get("info") or {}, arrays, blobs),
        netml_version=str(manifest.get("netml_version", "")),
        format_version=int(manifest["format_version"]),
        created=str(manifest.get("created", "")),
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _check_members(zf: zipfile.ZipFile, p: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, after bounding their number and declared sizes.

    zipfile never inflates a member past the size its header declares (it stops there and the CRC
    check fails), so bounding declared sizes bounds what reading can allocate.
    """
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{p} is not a netml model file ({len(infos)} zip members)")
    out: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(f"model file {p} is refused: {info.filename} is encrypted "
                                 "(netml never writes encrypted members)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(f"model file {p} is refused: {info.filename} uses zip compression method "
                                 f"{info.compress_type} (netml writes stored or deflated members)")
        if info.file_size > MAX_MEMBER_BYTES:
            raise ModelFileError(f"model file {p} is refused: {info.filename} inflates to {info.file_size} "
                                 f"bytes (at most {MAX_MEMBER_BYTES} are read)")
        total += info.file_size
        if info.filename in out:  # which copy a reader takes is up to the reader: refuse both
            raise ModelFileError(f"model file {p} is refused: it holds {info.filename} twice")
        out[info.filename] = info
    if total > MAX_TOTAL_BYTES:
        raise ModelFileError(f"model file {p} is refused: its members inflate to {total} bytes "
                             f"(at most {MAX_TOTAL_BYTES} are read)")
    return out


def _read_entry(zf: zipfile.ZipFile, entry, p: Path) -> bytes:
    name = entry.filename if isinstance(entry, zipfile.ZipInfo) else entry
    try:
        return zf.read(entry)
    except _ZIP_ERRORS as exc:
        raise ModelFileError(f"model file {p} is truncated or damaged ({name}: {_one_line(exc)})") from None


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def _read_manifest(zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path) -> dict:
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{p} is not a netml model file ({MANIFEST} is implausibly large)")
    raw = _read_entry(zf, info, p)
    try:
        manifest = json.loads(raw.decode("utf-8"), parse_int=_bounded_int)
    except RecursionError:
        raise ModelFileError(f"{p} is not a valid netml model ({MANIFEST} is nested too deeply)") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{p} is not a netml model file ({MANIFEST} is not JSON)") from None
    except ValueError as exc:  # _bounded_int
        raise ModelFileError(f"{p} is not a valid netml model ({MANIFEST} holds {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{p} is not a netml model file (format is not {FORMAT!r})")
    _check_depth(manifest, p)
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{p} is not a valid netml model (format_version missing)")
    if version > FORMAT_VERSION:
        made_by = manifest.get("netml_version", "a newer netml")
        if not isinstance(made_by, str) or len(made_by) > MAX_NAME_CHARS:
            made_by = "a newer netml"
        raise ModelFileError(
            f"model file {p} uses format version {version} (made by netml {made_by}); this netml reads "
            f"up to version {FORMAT_VERSION}: upgrade netml"
        )
    if version < 1:
        raise ModelFileError(f"{p} is not a valid netml model (format_version {version}; versions start at 1)")
    _check_schema(manifest, p)
    return manifest


def _check_depth(value: Any, p: Path) -> None:
    """Reject JSON nested deeper than ``MAX_JSON_DEPTH`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ModelFileError(f"{p} is not a valid netml model ({MANIFEST} is nested more than "
                                 f"{MAX_JSON_DEPTH} levels deep)")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def _check_schema(manifest: dict, p: Path) -> None:
    """The manifest's structure: types of every field netml reads, before anything is built."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{p} is not a valid netml model: {what}")

    for key in ("netml_version", "created"):
        if key in manifest and not isinstance(manifest[key], str):
            raise bad(f"{key} must be text, got {short(manifest[key])}")
    if "info" in manifest and not isinstance(manifest["info"], (dict, type(None))):
        raise bad(f"info must be a mapping, got {short(manifest['info'])}")
    comps = manifest.get("components")
    if not isinstance(comps, dict):
        raise ModelFileError(f"{p} is not a valid netml model (no components)")
    for role, raw in comps.items():
        if role not in ROLES:
            raise bad(f"unknown component role {short(role)} (roles: {', '.join(ROLES)})")
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
            raise ModelFileError(f"{p} is not a valid netml model: component {role!r} has no name")
        if len(raw["name"]) > MAX_NAME_CHARS:
            raise bad(f"component {role!r} has a name of {len(raw['name'])} characters")
        kind = raw.get("kind", role)
        if kind != role:
            raise bad(f"component {role!r} says it is a {short(kind)}")
        for key in ("plugin", "distribution", "version"):
            if not isinstance(raw.get(key, ""), str) or len(raw.get(key, "")) > MAX_NAME_CHARS:
                raise bad(f"the {role.replace('_', ' ')}'s {key} must be a short text, got {short(raw[key])}")
        for key in ("params", "state"):
            if not isinstance(raw.get(key) or {}, dict):
                raise bad(f"the {role.replace('_', ' ')}'s {key} must be a mapping, got {short(raw[key])}")
    _check_tags(manifest, bad)


def _check_tags(manifest: dict, bad) -> None:
    """Array and blob references must be ``{"__ndarray__": "<text>"}`` / ``{"__bytes__": "<text>"}``."""
    stack = [manifest]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for tag in (_ARRAY_TAG, _BYTES_TAG):
                if tag in v and (len(v) != 1 or not isinstance(v[tag], str)):
                    raise bad(f"{tag} must be the only key of its mapping and name an entry, got {short(v)}")
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _read_arrays(zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path) -> dict[str, np.ndarray]:
    """Every array of ``arrays.npz``, parsed from its ``.npy`` header and checked against its bytes.

    ``np.load`` would allocate whatever item count a header claims (10^12 items: a MemoryError, or
    gigabytes of RSS before it notices the data is missing) and unpickle object arrays if allowed;
    here the header's shape times its item size must equal the bytes the member holds, and only
    plain dtypes are accepted.
    """
    raw = _read_entry(zf, info, p)
    try:
        inner = zipfile.ZipFile(io.BytesIO(raw))
    except _ZIP_ERRORS as exc:
        raise ModelFileError(f"model file {p} is truncated or damaged ({ARRAYS}: {_one_line(exc)})") from None
    arrays: dict[str, np.ndarray] = {}
    with inner:
        for member, member_info in _check_members(inner, p).items():
            key = member[:-4] if member.endswith(".npy") else member
            data = _read_entry(inner, member_info, p)
            arrays[key] = _parse_npy(data, key, p)
    return arrays


def _parse_npy(data: bytes, key: str, p: Path) -> np.ndarray:
    fmt = np.lib.format
    refused = f"model file {p} is refused: {ARRAYS} member {key!r}"
    if not data.startswith(fmt.MAGIC_PREFIX):
        raise ModelFileError(f"{refused} is not a numpy array")
    fh = io.BytesIO(data)
    try:
        major, _minor = fmt.read_magic(fh)
        read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        if major not in (1, 2, 3):
            raise ValueError(f"unknown .npy version {major}")
        if major == 3:
            read_header = fmt._read_array_header  # noqa: SLF001 - utf-8 header, same checks
            shape, fortran, dtype = read_header(fh, version=(3, 0))
        else:
            shape, fortran, dtype = read_header(fh)
    except (ValueError, TypeError, SyntaxError, struct.error, OverflowError, MemoryError, RecursionError) as exc:
        raise ModelFileError(f"model file {p} is truncated or damaged ({ARRAYS} member {key!r}: "
                             f"{_one_line(exc)})") from None
    if dtype.hasobject:
        raise ModelFileError(f"{refused}: it holds pickled data (an object array), which netml never loads")
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFileError(f"{refused}: dtype {dtype} is not a plain numeric or text type")
    count = 1
    for n in shape:
        count *= int(n)
    body = len(data) - fh.tell()
    if count * dtype.itemsize != body:
        raise ModelFileError(f"model file {p} is truncated or damaged ({ARRAYS} member {key!r} claims shape "
                             f"{short(shape)}, {count * dtype.itemsize} bytes, but holds {body})")
    arr = np.frombuffer(bytearray(memoryview(data)[fh.tell():]), dtype=dtype, count=count)  # writeable
    return arr.reshape(shape, order="F" if fortran else "C")


def check_states(components: dict[str, ComponentRecord], p: Path | str = "model", *,
                 what: str = "model file") -> None:
    """Each component's saved state against its own checks, then the widths against each other.

    Runs before any component is built: a feature must produce as many values per flow as the
    scaler was fitted on and the detector consumes.
    """
    from .registry import KIND_LABELS, get_registry
    from .scaling import make_scaler
    from .state_checks import check_component

    reg = get_registry()
    widths: dict[str, int] = {}
    prefix = f"{what} {p}: "
    for role, rec in components.items():
        if role == "scaler":
            try:
                cls = type(make_scaler(rec.name))
            except NetmlError as exc:
                raise ModelFileError(f"{what} {p}: {exc}") from None
        elif role in PLUGIN_KINDS:
            kind = PLUGIN_KINDS[role]
            cls = reg.component_class(kind, rec.name)
            try:  # parameters first: they size what the state check and the component build
                cls.create(rec.params, name=f"{KIND_LABELS[kind]} {rec.name!r}")
            except NetmlError as exc:
                raise ModelFileError(f"{prefix}{KIND_LABELS[kind]} {rec.name!r}: {exc}") from None
        else:
            continue
        got = check_component(cls, rec.params, rec.state, prefix)
        if got is not None:
            widths[role] = got
    if "feature" in widths:
        for role in ("scaler", "detector"):
            if role in widths and widths[role] != widths["feature"]:
                raise ModelFileError(
                    f"{what} {p} is inconsistent: its feature gives {widths['feature']} values per flow, "
                    f"its {role} takes {widths[role]}")
    if "scaler" in widths and "detector" in widths and widths["scaler"] != widths["detector"]:
        raise ModelFileError(f"{what} {p} is inconsistent: its scaler gives {widths['scaler']} values per "
                             f"flow, its detector takes {widths['detector']}")


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
            hint = reg.disabled_hint(kind, rec.name, needed_by=f"{what} {p}")
            if hint is not None:
                raise ModelFileError(hint)
            if rec.distribution:
                source = f"{rec.distribution} {rec.version}".rstrip()
                hint = f"pip install {rec.distribution}"
            else:
                source, hint = f"plugin {rec.plugin or '?'}", "install the plugin that provides it"
            raise ModelFileError(
                f"{what} {p} needs the {KIND_LABELS[kind]} {rec.name!r} from {source}, which is not "
                f"installed: {hint}"
            )
