"""Base classes for the four component kinds, following scikit-learn's estimator conventions.

Parameters live only in ``__init__`` and are stored as given; learning happens in ``fit`` which
returns ``self``; learned state sits in attributes ending in ``_``. ``get_state``/``set_state``
carry the fitted state to and from a model file without pickle: a state is a dict whose values are
JSON data, numpy arrays or ``bytes`` (for opaque blobs such as safetensors or skops payloads).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Iterator

import numpy as np

from .errors import NotFittedError, ParameterError
from .flowtable import FlowTable
from .packets import PacketTable


class Component:
    """Shared parameter handling: introspection for ``--help-param`` and validation for ``--param``."""

    #: parameter name -> one-line doc (units!) shown by ``--help-param``
    param_docs: ClassVar[dict[str, str]] = {}

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {
            name: (None if p.default is inspect.Parameter.empty else p.default)
            for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    @classmethod
    def describe_params(cls) -> list[dict[str, Any]]:
        """``[{name, default, doc}]`` for every ``__init__`` parameter."""
        return [
            {"name": n, "default": d, "doc": cls.param_docs.get(n, "")}
            for n, d in cls.param_defaults().items()
        ]

    @classmethod
    def summary(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def create(cls, params: dict[str, Any] | None = None, *, name: str | None = None):
        """Instantiate with ``params``, rejecting unknown keys with a one-line error."""
        params = dict(params or {})
        known = cls.param_defaults()
        bad = [k for k in params if k not in known]
        if bad:
            label = name or cls.__name__
            raise ParameterError(
                f"unknown parameter {bad[0]!r} for {label}; known: {', '.join(known) or '(none)'}"
            )
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"bad parameters for {name or cls.__name__}: {exc}") from None

    def get_params(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self.param_defaults()}

    def set_params(self, **params) -> "Component":
        known = self.param_defaults()
        for k, v in params.items():
            if k not in known:
                raise ParameterError(f"unknown parameter {k!r} for {type(self).__name__}")
            setattr(self, k, v)
        return self

    def get_state(self) -> dict[str, Any]:
        """Fitted state (attributes ending in ``_``) as JSON data / ndarrays / bytes."""
        return {
            k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")
        }

    def set_state(self, state: dict[str, Any]) -> "Component":
        for k, v in state.items():
            setattr(self, k, v)
        return self

    def _check_fitted(self, attr: str) -> None:
        if getattr(self, attr, None) is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit first")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class Reader(Component):
    """Turns a capture (path, ``-`` for stdin, or a binary file object) into PacketTables."""

    def read(self, source) -> PacketTable:
        return PacketTable.concat(self.iter_batches(source))

    def iter_batches(self, source, max_packets: int = 1_000_000) -> Iterator[PacketTable]:
        raise NotImplementedError


class FlowSplitter(Component):
    """Groups packets into flows; ``fit`` may learn e.g. the sub-flow interval."""

    #: False when ``fit`` learns nothing from the packets (only its parameters matter): training
    #: can then read the captures batch by batch (``Pipeline.fit_extract(stream=True)``)
    learns_from_packets: ClassVar[bool] = True

    def fit(self, packets: PacketTable) -> "FlowSplitter":
        return self

    def split(self, packets: PacketTable) -> FlowTable:
        raise NotImplementedError


class Feature(Component):
    """Maps each flow to a fixed-width float64 vector; ``fit`` learns the width (and rates)."""

    #: True when a flow's row depends on that flow's packets alone (not on other flows): such a
    #: feature can score flows batch by batch as they end (``netml classify`` streams then)
    per_flow: ClassVar[bool] = False
    #: False when ``fit`` on any non-empty set of flows gives the same state (e.g. only the width
    #: from the parameters): training then fits it on the first flows that end in a stream, and on
    #: Dask before extraction, so the training packets never leave the workers
    learns_from_flows: ClassVar[bool] = True

    def fit(self, flows: FlowTable) -> "Feature":
        return self

    def transform(self, flows: FlowTable) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, flows: FlowTable) -> np.ndarray:
        return self.fit(flows).transform(flows)

    def feature_names(self) -> list[str]:
        raise NotImplementedError


class Detector(Component):
    """Novelty detector, PyOD semantics: ``score`` higher = more anomalous, ``predict`` 1 = anomaly.

    Subclasses implement ``_fit(X)`` and ``_score(X)``; the base fits ``threshold_`` as the
    ``1 - contamination`` quantile of the training scores.
    """

    contamination: float = 0.1
    #: scaler applied before this detector when ``--scaler`` is not given (see netml_core.scaling)
    default_scaler: ClassVar[str] = "standard"

    def fit(self, X: np.ndarray) -> "Detector":
        X = _as_matrix(X)
        if len(X) < 2:
            raise ParameterError(f"a detector needs at least 2 training flows, got {len(X)}")
        self._fit(X)
        train_scores = self._score(X)
        self.threshold_ = float(np.quantile(train_scores, 1.0 - float(self.contamination)))
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted("threshold_")
        return np.asarray(self._score(_as_matrix(X)), dtype=np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.score(X) > self.threshold_).astype(np.int64)

    def _fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ParameterError(f"expected a 2-D feature matrix, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ParameterError("feature matrix contains NaN or infinite values")
    return X
