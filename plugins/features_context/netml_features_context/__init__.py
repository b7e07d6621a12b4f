"""netml host context (hook implementations only; the code is in ``context.py`` and ``windows.py``)."""

from netml_core import hookimpl


@hookimpl
def register_features(register):
    register("context", "netml_features_context.context:ContextFeature",
             summary="another feature plus causal window statistics of each flow's source host, "
                     "destination host and host pair (scans, floods, sweeps, beacons)")
