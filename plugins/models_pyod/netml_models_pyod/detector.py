"""netml detectors wrapping PyOD's, one class per offered detector (``table.OFFERED``).

PyOD's semantics are netml's (``decision_function`` higher = more anomalous), so scores pass
through unchanged. What the wrapper adds:

- **Parameters** are PyOD's own, read from the installed PyOD (``pyod_params``), checked for their
  type when the detector is created, so ``--param '{n_neighbors: five}'`` is one line before any
  capture is read; a value PyOD rejects at fit time is one line naming the detector.
- **Determinism**: the fit runs with ``random_state`` passed to PyOD and numpy's global generator
  seeded from it (and restored after), which covers detectors that draw from ``np.random``.
  ``random_state: null`` draws a seed at fit time and saves it, so a reload still reproduces the fit.
- **Saved without pickle**, in one of two ways. When every attribute of the fitted PyOD object is
  plain data (arrays, numbers, strings: HBOS, LODA, INNE, ECOD ...) those attributes are the saved
  state (``mode_: attributes``). Otherwise (a scikit-learn estimator inside: KNN's tree, IForest's
  trees ...) the training matrix is saved and the detector is refitted on load with the same
  parameters and seed (``mode_: refit``). Either way a few training flows and their scores are saved
  too, and loading checks that the rebuilt detector scores them the same: a PyOD or scikit-learn
  upgrade that changes the model is a one-line error, never a silently different model.
- **Per-flow scoring** for ECOD and COPOD, whose ``decision_function`` computes its ECDFs over the
  training flows *plus the whole batch*: each flow is scored alone against the training flows, so a
  flow's score does not depend on the other flows of the capture (one PyOD call per flow: slower).
- PyOD's prints go to stderr and its warnings to the debug log: ``netml classify`` writes flows on
  stdout and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Any, ClassVar

import numpy as np
from netml_core.components import Detector
from netml_core.errors import ModelFileError, NetmlError, ParameterError
from netml_core.params import check_bool, check_contamination, check_number

from . import pyod_params
from .table import OFFERED, Spec

log = logging.getLogger("netml.pyod")

#: attributes PyOD's ECOD/COPOD recompute on every call (over training + batch): never saved
_TRANSIENT = frozenset({"U_l", "U_r", "U_skew", "O"})
#: training flows (and their scores) saved to check that a reloaded model is the fitted one
_CHECK_ROWS = 8
_CHECK_RTOL = 1e-9

_CONTAMINATION_DOC = ("expected fraction of anomalies among training flows, in (0, 0.5]; sets the threshold "
                      "only without calibration (--compat, Python API): netml learn calibrates it at --fpr")


class PyODDetector(Detector):
    """Base of the generated classes; ``spec`` says which PyOD detector and how it is wrapped."""

    spec: ClassVar[Spec]

    def __init__(self, **params):
        known = self.param_defaults()
        bad = [k for k in params if k not in known]
        if bad:
            raise ParameterError(f"unknown parameter {bad[0]!r} for algorithm {self.spec.name!r}; "
                                 f"known: {', '.join(known)}")
        types = pyod_params.doc_types(self.spec)
        for name, default in known.items():
            value = params.get(name, default)
            _check_value(self.spec.name, name, value, default, types.get(name, ""))
            setattr(self, name, value)

    # -- parameters, read from PyOD on first use -------------------------------------------------
    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        return dict(pyod_params.defaults(cls.spec))

    @classmethod
    def describe_params(cls) -> list[dict[str, Any]]:
        docs = pyod_params.docs(cls.spec)
        return [{"name": n, "default": d, "doc": _CONTAMINATION_DOC if n == "contamination" else docs.get(n, "")}
                for n, d in cls.param_defaults().items()]

    @classmethod
    def summary(cls) -> str:
        return cls.spec.summary

    def _pyod_kwargs(self, seed: int | None) -> dict[str, Any]:
        kwargs = {**self.spec.fixed, **self.get_params()}
        if "random_state" in kwargs:
            kwargs["random_state"] = seed
        return kwargs

    def _new_model(self, seed: int | None):
        return pyod_params.pyod_class(self.spec)(**self._pyod_kwargs(seed))

    # -- fitting and scoring --------------------------------------------------------------------
    def _fit(self, X: np.ndarray) -> None:
        seed = getattr(self, "random_state", None)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**32))
        self.seed_ = int(seed)
        self.model_ = self._fit_model(X, self.seed_)
        self.n_features_ = int(X.shape[1])
        self._train_X = X
        self._fitting = X  # Detector.fit scores X right after _fit: see _score

    def _fit_model(self, X: np.ndarray, seed: int):
        model = self._new_model(seed)
        try:
            with _quiet(), _seeded(seed):
                model.fit(X)
        except NetmlError:
            raise
        except Exception as exc:  # noqa: BLE001 - PyOD and scikit-learn raise many kinds for bad params/data
            raise ParameterError(f"{self.spec.name} cannot be fitted on {X.shape[0]} flows x {X.shape[1]} "
                                 f"values with {self.get_params()}: {type(exc).__name__}: {_one_line(exc)}") from None
        return model

    def _score(self, X: np.ndarray) -> np.ndarray:
        if self.__dict__.pop("_fitting", None) is X:
            # the training scores for the contamination threshold: PyOD's own (KNN's leave the flow
            # itself out, where scoring the training matrix again would count it as its own neighbour)
            return np.asarray(self.model_.decision_scores_, dtype=np.float64).ravel()
        if X.shape[1] != self.n_features_:
            raise ParameterError(f"{self.spec.name} was fitted on {self.n_features_} features, got {X.shape[1]}")
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        with _quiet():
            if self.spec.per_row:
                scores = np.concatenate([np.ravel(self.model_.decision_function(X[i:i + 1])) for i in range(len(X))])
            else:
                scores = np.ravel(self.model_.decision_function(X))
        scores = np.asarray(scores, dtype=np.float64)
        bad = ~np.isfinite(scores)
        if bad.any():
            raise NetmlError(f"{self.spec.name} gave {int(bad.sum())} of {len(scores)} flows a NaN or infinite "
                             "score; try other parameters or another detector")
        return scores

    # -- state ------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        self._check_fitted("threshold_")
        from pyod import __version__ as pyod_version

        state: dict[str, Any] = {"threshold_": float(self.threshold_), "n_features_": self.n_features_,
                                 "seed_": self.seed_, "pyod_version_": str(pyod_version)}
        attributes = _plain_attributes(self.model_, self._pyod_kwargs(self.seed_))
        if attributes is not None:
            state["mode_"] = "attributes"
            state["attributes_"] = {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}
            state["tuples_"] = sorted(k for k, v in attributes.items() if isinstance(v, tuple))
        else:
            state["mode_"] = "refit"
            state["train_X_"] = np.ascontiguousarray(self._train_X, dtype=np.float64)
        rows = self._check_rows()
        state["check_rows_"] = rows
        state["check_scores_"] = self._score(rows)
        return state

    def _check_rows(self) -> np.ndarray:
        train = getattr(self, "_train_X", None)
        if train is None:  # restored from a file: keep the rows that file checked
            return self._saved_check_rows
        idx = np.unique(np.linspace(0, len(train) - 1, min(_CHECK_ROWS, len(train))).astype(np.int64))
        return np.ascontiguousarray(train[idx], dtype=np.float64)

    def set_state(self, state: dict) -> "PyODDetector":
        name = self.spec.name
        threshold, n_features, seed = state.get("threshold_"), state.get("n_features_"), state.get("seed_")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
            raise ModelFileError(f"{name}: saved threshold must be a finite number, got {threshold!r}")
        for key, value in (("n_features_", n_features), ("seed_", seed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ModelFileError(f"{name}: saved {key} must be an integer >= 0, got {value!r}")
        rows, expected = state.get("check_rows_"), state.get("check_scores_")
        if not (_matrix_ok(rows, n_features) and isinstance(expected, np.ndarray) and expected.shape == (len(rows),)):
            raise ModelFileError(f"{name}: saved check rows are missing or malformed")
        mode = state.get("mode_")
        if mode == "attributes":
            attributes, tuples = state.get("attributes_"), set(state.get("tuples_") or ())
            if not isinstance(attributes, dict):
                raise ModelFileError(f"{name}: saved PyOD attributes are missing")
            model = self._new_model(seed)
            for key, value in attributes.items():
                setattr(model, key, tuple(value) if key in tuples else value)
        elif mode == "refit":
            train = state.get("train_X_")
            if not _matrix_ok(train, n_features) or len(train) < 2:
                raise ModelFileError(f"{name}: saved training matrix must be a finite 2-D array of "
                                     f"{n_features} columns and 2 rows or more")
            model = self._fit_model(np.ascontiguousarray(train, dtype=np.float64), seed)
        else:
            raise ModelFileError(f"{name}: unknown saved mode {mode!r} (expected 'attributes' or 'refit')")
        self.model_, self.n_features_, self.seed_, self.threshold_ = model, n_features, seed, float(threshold)
        self._train_X = None
        self._saved_check_rows = np.asarray(rows, dtype=np.float64)
        got = self._score(self._saved_check_rows)
        if not np.allclose(got, expected, rtol=_CHECK_RTOL, atol=1e-12):
            from pyod import __version__ as pyod_version

            raise ModelFileError(
                f"{name}: the detector rebuilt from the model file scores its check flows differently from "
                f"the fitted one (saved with PyOD {state.get('pyod_version_', '?')}, this is PyOD {pyod_version}; "
                f"largest difference {float(np.max(np.abs(got - expected))):.3g}): train the model again")
        return self


# -- helpers ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _seeded(seed: int):
    """numpy's global generator seeded for the duration (restored after): PyOD code that draws from
    ``np.random`` directly becomes as reproducible as code that takes ``random_state``."""
    saved = np.random.get_state()
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        np.random.set_state(saved)


@contextlib.contextmanager
def _quiet():
    """PyOD's prints to stderr, its warnings to the debug log."""
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("always")
        yield
    for w in caught:
        log.debug("pyod: %s: %s", w.category.__name__, w.message)


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return not isinstance(value, np.generic) or value.dtype.kind in "biuf"
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufU"
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and "." not in k and _plain(v) for k, v in value.items())
    return False


def _plain_attributes(model, params: dict) -> dict | None:
    """The fitted PyOD object's own attributes when every one is plain data, else None."""
    out = {}
    for key, value in vars(model).items():
        if key in params or key in _TRANSIENT:
            continue
        if "." in key or not _plain(value):
            return None
        out[key] = value
    return out


def _matrix_ok(value: Any, n_features: int) -> bool:
    return (isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == n_features
            and value.dtype.kind in "fiu" and len(value) > 0 and bool(np.isfinite(value).all()))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _check_value(algorithm: str, name: str, value: Any, default: Any, doc_type: str) -> None:
    """Reject values of a type neither the default nor PyOD's documented type allows."""
    if name == "contamination":
        check_contamination(value)
        return
    if name == "random_state":
        if value is not None:
            check_number(name, value, low=0, high=2**32 - 1, integer=True)
        return
    if default is None or value is None and ("none" in doc_type or default is None):
        return
    if isinstance(default, bool):
        check_bool(name, value)
        return
    allowed = set()
    if isinstance(default, (int, float)) or "int" in doc_type or "float" in doc_type:
        allowed.add("a number")
    if isinstance(default, str) or "str" in doc_type:
        allowed.add("a string")
    ok = (("a number" in allowed and isinstance(value, (int, float)) and not isinstance(value, bool))
          or ("a string" in allowed and isinstance(value, str)))
    if not ok:
        raise ParameterError(f"parameter {name!r} of {algorithm} must be {' or '.join(sorted(allowed))} "
                             f"(PyOD: {doc_type or type(default).__name__}), got {value!r}")
    if isinstance(value, float) and not np.isfinite(value):
        raise ParameterError(f"parameter {name!r} of {algorithm} must be finite, got {value!r}")


def _make_class(spec: Spec) -> type:
    return type(spec.cls, (PyODDetector,), {
        "spec": spec, "default_scaler": spec.default_scaler, "__doc__": spec.summary,
        "__module__": __name__, "__qualname__": spec.cls,
    })


# one module-level class per offered detector (picklable; the registry's factory names them)
for _spec in OFFERED.values():
    globals()[_spec.cls] = _make_class(_spec)
del _spec
