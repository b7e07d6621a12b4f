"""netml feature STATS (hook implementations only; the code is in ``stats.py``)."""

from netml_core import hookimpl


@hookimpl
def register_features(register):
    register("stats", "netml_features_stats.stats:StatsFeature",
             summary="12 statistics per flow: duration, rates, size moments and quantiles, counts")
