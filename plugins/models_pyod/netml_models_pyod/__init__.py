"""netml plugin: PyOD's detectors as ``pyod_<name>`` (alias ``pyod:<name>``). Registration only.

Names, summaries and default scalers come from a static table (``table.py``): listing plugins never
imports PyOD. ``NOT_PROVIDED`` says why each other PyOD detector is not offered; ``netml plugins
list --verbose`` shows it.
"""

from netml_core import hookimpl

from .table import NOT_OFFERED, OFFERED

NOT_PROVIDED = {f"detector:pyod_{module}": reason for module, reason in sorted(NOT_OFFERED.items())}


@hookimpl
def register_detectors(register):
    for name, spec in OFFERED.items():
        register(name, f"netml_models_pyod.detector:{spec.cls}", aliases=(f"pyod:{spec.module}",),
                 summary=spec.summary)
