"""Checks for fitted state read back from a model file, which is untrusted input.

A model file can say anything: a width of 10^9, a threshold of NaN, arrays of the wrong rank, one
coefficient short. Every component validates its state here *before* it builds anything from it
(a network, an index, a matrix the size of a parameter), so a hostile or damaged file is one
``ModelFileError`` line, never an internal error, a hang or a huge allocation.

Components opt in with a classmethod ``check_state(params, state) -> int | None`` that raises
``ModelFileError`` on the first problem and returns the width of the data it consumes (detectors)
or produces (features); ``read_model`` calls it for every component before any is built, and
compares the widths of feature, scaler and detector. ``set_state`` calls it too, so the Python API
is covered. The helpers below keep each plugin's checks to a few lines and the messages uniform:
``<component>: saved <key> must be ..., got ...``.

Core components whose modules predate this (the scaler, the ``netml`` splitter) are checked by
``check_core_state``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Iterable

import numpy as np

from .errors import ModelFileError, NetmlError

#: widest feature vector a model may declare: classify builds flows x width floats per batch (up to
#: 65,536 flows: 4 GiB at this width), so the width is what a small model file could otherwise
#: inflate; flowstats is at most 38 + 4096 wide, netml 0.x's series widths are a packet count
MAX_FEATURES = 1 << 13
#: dtype kinds accepted for numeric state arrays (bool, signed, unsigned, float)
NUMERIC = "biuf"

_MISSING = object()


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages stay one short line whatever the input."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {len(str(abs(value))) if value.bit_length() < 14000 else 'thousands of'} digits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails (too deep, too large) still gets a message
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(what: str, message: str) -> None:
    raise ModelFileError(f"{what}: {message}")


def get(state: Any, key: str, what: str, default: Any = _MISSING) -> Any:
    if not isinstance(state, dict):
        fail(what, f"saved state must be a mapping, got {short(state)}")
    if key not in state:
        if default is not _MISSING:
            return default
        fail(what, f"saved state lacks {key}")
    return state[key]


def number(state: dict, key: str, what: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, integer: bool = False, finite: bool = True,
           default: Any = _MISSING) -> Any:
    """``state[key]`` as a (finite, by default) number in range; ``int`` when ``integer``."""
    v = get(state, key, what, default)
    if v is default and default is not _MISSING:
        return v
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in NUMERIC:
        v = v.item()
    kind = "an integer" if integer else "a number"
    ok = isinstance(v, Integral) if integer else isinstance(v, Real)
    if isinstance(v, bool) or not ok:
        fail(what, f"saved {key} must be {kind}, got {short(v)}")
    if isinstance(v, Integral) and abs(int(v)) >= 2**63:
        fail(what, f"saved {key} is out of range, got {short(v)}")
    v = int(v) if integer else float(v)
    if not integer and (math.isnan(v) or (finite and math.isinf(v))):
        fail(what, f"saved {key} must be a finite number, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        fail(what, f"saved {key} must be {'>' if low_open else '>='} {low:g}, got {short(v)}")
    if high is not None and v > high:
        fail(what, f"saved {key} must be <= {high:g}, got {short(v)}")
    return v


def threshold(state: dict, what: str, key: str = "threshold_") -> float:
    """The decision threshold: a finite number (NaN would flag nothing, -inf everything)."""
    return number(state, key, what)


def array(state: dict, key: str, what: str, shape: Iterable[int | None], *, kinds: str = NUMERIC,
          finite: bool = True, allow_nan: bool = False, positive: bool = False, dtype=np.float64,
          min_rows: int = 0) -> np.ndarray:
    """``state[key]`` as an array of ``len(shape)`` dimensions; ``None`` in ``shape`` = any length.

    Converted to ``dtype`` (a copy only when needed). ``finite``: no NaN or infinity (``allow_nan``
    lets NaN through, for values whose consumer handles it); ``positive``: every value > 0.
    """
    shape = tuple(shape)
    a = get(state, key, what)
    if not isinstance(a, np.ndarray):
        fail(what, f"saved {key} must be an array, got {short(a)}")
    if a.ndim != len(shape):
        fail(what, f"saved {key} must have {len(shape)} dimension(s), got shape {a.shape}")
    for axis, (want, got) in enumerate(zip(shape, a.shape)):
        if want is not None and want != got:
            fail(what, f"saved {key} has shape {a.shape}, expected {_shape_text(shape)}")
    if a.ndim and a.shape[0] < min_rows:
        fail(what, f"saved {key} must have at least {min_rows} row(s), got shape {a.shape}")
    if a.dtype.kind not in kinds:
        fail(what, f"saved {key} must be numeric, got dtype {a.dtype}")
    out = np.asarray(a, dtype=dtype) if dtype is not None else a
    if out.dtype.kind == "f" and out.size:
        if finite and not allow_nan and not np.isfinite(out).all():
            fail(what, f"saved {key} contains NaN or infinite values")
        if finite and allow_nan and np.isinf(out).any():
            fail(what, f"saved {key} contains infinite values")
        if not finite and np.isnan(out).any():
            fail(what, f"saved {key} contains NaN values")
    if positive and out.size and not (out > 0).all():
        fail(what, f"saved {key} must be > 0 everywhere")
    return out


def index_array(state: dict, key: str, what: str, length: int | None, upper: int) -> np.ndarray:
    """An int64 array of indices in ``[0, upper)`` (tree nodes, feature columns)."""
    a = array(state, key, what, (length,), kinds="iu", dtype=None)
    if a.size and (int(a.min()) < 0 or int(a.max()) >= upper):
        fail(what, f"saved {key} holds an index outside 0..{upper - 1}")
    return a.astype(np.int64)


def width(value: int, what: str, key: str) -> int:
    """A feature width: 1..``MAX_FEATURES``."""
    if not 1 <= value <= MAX_FEATURES:
        fail(what, f"saved {key} must be in 1..{MAX_FEATURES}, got {value}")
    return value


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# -- core components -----------------------------------------------------------------------------
def scaler_width(state: dict, what: str = "scaler") -> int:
    """The scaler's ``offset_``/``scale_``: equal-length finite vectors, scales > 0 (it divides by them)."""
    offset = array(state, "offset_", what, (None,))
    array(state, "scale_", what, (len(offset),), positive=True)
    return width(len(offset), what, "offset_ length")


def netml_splitter_state(params: dict, state: dict, what: str = "flow splitter 'netml'") -> None:
    """netml 0.x's sub-flow interval: a finite number of seconds >= 0 (0 is learned from flows
    that all last 0 s; it then cuts every flow into one-packet pieces, which are dropped)."""
    if "interval_" in state or params.get("interval") is None:
        number(state, "interval_", what, low=0.0)
    return None


def _core_checks() -> dict:
    from .scaling import Scaler
    from .splitter import NetmlFlowSplitter

    return {NetmlFlowSplitter: netml_splitter_state,
            Scaler: lambda params, state: scaler_width(state, "scaler")}


def state_checker(cls: type):
    """The ``check_state(params, state)`` of a component class, or None when it has none."""
    own = getattr(cls, "check_state", None)
    if own is not None:
        return own
    for base, check in _core_checks().items():
        if isinstance(cls, type) and issubclass(cls, base):
            return check
    return None


def check_component(cls: type, params: dict, state: dict, prefix: str = "") -> int | None:
    """Run ``cls``'s state check; every problem (also a raising third-party check) is one line
    starting with ``prefix``. Returns the width the check reports (or None)."""
    check = state_checker(cls)
    if check is None:
        return None
    try:
        got = check(params, state)
    except NetmlError as exc:
        raise ModelFileError(f"{prefix}{exc}") from None
    except Exception as exc:  # noqa: BLE001 - a buggy third-party check must not be an internal error
        raise ModelFileError(f"{prefix}saved state rejected ({type(exc).__name__}: {short(str(exc), 120)})") from None
    return got if isinstance(got, int) and not isinstance(got, bool) else None


# -- features ------------------------------------------------------------------------------------
class SeriesStateChecks:
    """Mixin for ``SeriesFeature`` plugins: ``dim_`` is checked before it is set.

    ``dim_`` sizes every transform (flows x width floats), so it must be an integer in
    1..``MAX_FEATURES`` that the feature's own width rule can give (``max(1, _width(n))``, equal to
    ``_width(dim)`` when the ``dim`` parameter is set). Returns the values per flow, header included.
    """

    @classmethod
    def check_state(cls, params: dict, state: dict) -> int:
        what = f"feature {cls.series_name!r}"
        feature = cls.create(params, name=what)
        dim = width(number(state, "dim_", what, integer=True), what, "dim_")
        if feature.dim is not None:
            candidates = {int(feature.dim)}
        else:
            candidates = {1, 2, dim, dim + 1, (dim + 1) // 2}
        if not any(max(1, feature._width(n)) == dim for n in candidates):
            fail(what, f"saved dim_ {dim} is not a width this feature gives with its parameters")
        return width(dim + (8 + dim if feature.header else 0), what, "width")

    def set_state(self, state: dict):
        self.check_state(self.get_params(), state)
        return super().set_state(state)
