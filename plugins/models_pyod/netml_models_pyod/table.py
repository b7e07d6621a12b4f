"""Which PyOD detectors netml offers, and why each of the others is not offered.

The rows are plain data in the entry module (``__init__.py``: registration imports nothing but
netml_core, so ``netml plugins list`` never imports PyOD, numba or scikit-learn: over a second);
here they become ``Spec``s for the detector classes. Parameters and their defaults are read from PyOD itself,
later, when a detector is created or ``--help-param`` asks (see ``pyod_params``).

A detector is offered when it scores new flows against its training flows alone (a flow's score
does not depend on the other flows of the capture), is deterministic under ``random_state``, runs
on a plain numeric matrix without torch, and ranks an obvious outlier above normal flows;
``tests/test_models_pyod.py`` runs the conformance kit over every offered one. Every module of
``pyod.models`` is named here, offered or not, and a test fails when PyOD ships one that is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import NOT_OFFERED, OFFERED_ROWS

PREFIX = "pyod_"


@dataclass(frozen=True, eq=False)
class Spec:
    """One offered PyOD detector: where PyOD keeps it and how netml wraps it."""

    module: str  # under pyod.models
    cls: str
    summary: str
    #: scaler the pipeline applies first: per-feature rank and histogram detectors are unchanged by it
    default_scaler: str = "standard"
    #: PyOD scores a batch together with the training matrix (ECDFs of training + batch): score each
    #: flow alone against the training flows, so its score does not depend on its neighbours in a capture
    per_row: bool = False
    #: PyOD parameters not offered (Python objects, verbosity, copies) -> the value always passed
    fixed: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return PREFIX + self.module


_SPECS = [Spec(**row) for row in OFFERED_ROWS]

#: netml name -> Spec, in name order
OFFERED: dict[str, Spec] = {s.name: s for s in sorted(_SPECS, key=lambda s: s.module)}

#: module prefixes of PyOD's graph (torch_geometric) and time-series detectors
NOT_OFFERED_PREFIXES = {
    "pyg_": "graph detector (torch_geometric): not a feature-matrix detector",
    "ts_": "time-series detector: scores windows of one series, not flows",
}
#: modules of pyod.models that hold no detector
NOT_DETECTORS = {"base", "base_dl", "combination", "gaal_base", "sklearn_base", "thresholds", "_pyg_utils",
                 "_ts_utils"}


def not_offered_reason(module: str) -> str | None:
    """Why the PyOD module ``module`` is not offered, or None (offered, or not a detector module)."""
    if module in NOT_OFFERED:
        return NOT_OFFERED[module]
    for prefix, reason in NOT_OFFERED_PREFIXES.items():
        if module.startswith(prefix):
            return reason
    return None
