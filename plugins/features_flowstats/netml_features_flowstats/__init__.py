"""netml feature FLOWSTATS (hook implementations only; the code is in ``flowstats.py``)."""

from netml_core import hookimpl


@hookimpl
def register_features(register):
    register("flowstats", "netml_features_flowstats.flowstats:FlowStatsFeature",
             summary="whole-flow statistics of both directions (counts, bytes, sizes, IATs, flags, "
                     "first sizes), log-scaled")
