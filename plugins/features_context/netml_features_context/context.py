"""``context``: any flow feature plus the host context of each flow (see ``windows.py``).

A composition, not a modifier: ``base`` names the feature whose values come first (``flowstats``
by default) and ``base_params`` its parameters; the context values follow. The base is created
through the plugin registry, so every installed feature (a third party's too) composes, and its
fitted state is saved inside this one's, so a model file holds both. ``netml learn --context``
builds it from ``--feature`` and ``--feature-param``.
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING

import numpy as np

from netml_core.components import Feature
from netml_core.errors import ModelFileError, ParameterError
from netml_core.params import check_number
from netml_core.flowtable import FlowTable

from .windows import context_names, flow_context

if TYPE_CHECKING:
    from .stream import ContextStream

#: at most this many windows, each at most a day: bounds the width and the work per flow
MAX_WINDOWS = 6
MAX_WINDOW_S = 86_400.0


class ContextFeature(Feature):
    """A base feature plus window statistics of the flow's source host, destination host and pair."""

    per_flow = False  # a flow's row depends on the other flows of its hosts: it cannot stream per flow

    param_docs = {
        "base": "the feature whose values come first (any installed feature name)",
        "base_params": "parameters of the base feature (a mapping)",
        "windows": "window lengths in seconds for the host statistics (1 to 6 values, each <= 86400)",
        "max_gaps": "flow starts from a source to one destination whose gaps measure regularity (beacons)",
        "max_gap": "seconds: a longer gap between two flow starts of a host pair ends its series of gaps "
                   "(beacons call at least this often); bounds what a stream keeps per pair",
        "log": "log1p the counts, packets, bytes and gaps (shares stay in [0, 1])",
    }

    def __init__(self, base="flowstats", base_params=None, windows=(1.0, 10.0, 60.0), max_gaps=8, max_gap=3600.0,
                 log=True):
        self.base = base
        self.base_params = base_params
        self.windows = windows
        self.max_gaps = max_gaps
        self.max_gap = max_gap
        self.log = log
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.base, str) or not self.base or self.base.lower() == "context":
            raise ParameterError(f"parameter 'base' must name another feature, got {self.base!r}")
        if self.base_params is not None and not isinstance(self.base_params, dict):
            raise ParameterError(f"parameter 'base_params' must be a mapping, got {self.base_params!r}")
        w = self.windows
        if isinstance(w, (str, bytes)) or not hasattr(w, "__len__") or not 1 <= len(w) <= MAX_WINDOWS or not all(
                isinstance(x, Real) and not isinstance(x, bool) and 0 < float(x) <= MAX_WINDOW_S for x in w):
            raise ParameterError(f"parameter 'windows' must be 1 to {MAX_WINDOWS} numbers of seconds in "
                                 f"(0, {MAX_WINDOW_S:g}], got {w!r}")
        check_number("max_gaps", self.max_gaps, low=1, high=1000, integer=True)
        check_number("max_gap", self.max_gap, low=0.0, low_open=True, high=MAX_WINDOW_S)
        if not isinstance(self.log, bool):
            raise ParameterError(f"parameter 'log' must be true or false, got {self.log!r}")

    def _windows(self) -> list[float]:
        return [float(x) for x in self.windows]

    def _make_base(self):
        from netml_core.registry import get_registry

        return get_registry().create("feature", self.base, dict(self.base_params or {}))

    def fit(self, flows: FlowTable) -> "ContextFeature":
        """Fit the base feature; the context itself learns nothing (the scaler standardises it)."""
        self._validate()
        base = self._make_base()
        base.fit(flows)
        self._base = base
        self.base_state_ = dict(base.get_state())
        self.n_features_ = len(base.feature_names()) + len(context_names(self._windows()))
        return self

    def transform(self, flows: FlowTable) -> np.ndarray:
        self._check_fitted("n_features_")
        base = self._fitted_base()
        X = np.asarray(base.transform(flows), dtype=np.float64)
        C = flow_context(flows, self._windows(), int(self.max_gaps), log=self.log, max_gap=float(self.max_gap))
        out = np.hstack([X.reshape(len(flows), int(self.n_features_) - C.shape[1]), C])
        if out.shape[1] != int(self.n_features_):
            raise ModelFileError(f"context was fitted with {self.n_features_} values but gives {out.shape[1]}")
        return np.ascontiguousarray(out)

    @property
    def learns_from_flows(self) -> bool:
        """What the base feature learns is all this one learns: training can stream when the base's
        fit needs no particular flows (``flowstats``)."""
        from netml_core.registry import get_registry

        return bool(getattr(get_registry().component_class("feature", self.base), "learns_from_flows", True))

    @staticmethod
    def streams_with(splitter) -> bool:
        """Flows that carry both directions (``meter``) stream; one-way flows do not, since whether
        one was answered is the reverse flow, which may start later."""
        return getattr(splitter, "direction", None) == "bi" and hasattr(splitter, "stream")

    def stream(self, splitter) -> "ContextStream | None":
        """A state that gives each flow's row once every flow that started before it has ended
        (``netml_features_context.stream``); None when the splitter's flows cannot stream."""
        from .stream import ContextStream

        self._check_fitted("n_features_")
        return ContextStream(self) if self.streams_with(splitter) else None

    def feature_names(self) -> list[str]:
        self._check_fitted("n_features_")
        return list(self._fitted_base().feature_names()) + context_names(self._windows())

    def get_state(self) -> dict:
        self._check_fitted("n_features_")
        return {"base_state_": self.base_state_, "n_features_": int(self.n_features_)}

    def set_state(self, state: dict) -> "ContextFeature":
        try:
            base_state, width = state["base_state_"], int(state["n_features_"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"context state is incomplete: {exc}") from None
        if not isinstance(base_state, dict) or not 1 <= width <= 100_000:
            raise ModelFileError("context state is malformed")
        base = self._make_base()
        base.set_state(base_state)
        self._base, self.base_state_, self.n_features_ = base, base_state, width
        return self

    def _fitted_base(self):
        base = getattr(self, "_base", None)
        if base is None:
            base = self._make_base()
            base.set_state(self.base_state_)
            self._base = base
        return base

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_base", None)  # rebuilt from base_state_ (keeps the component picklable for workers)
        return state
