"""netml feature SIZE (hook implementations only; the code is in ``size.py``)."""

from netml_core import hookimpl


@hookimpl
def register_features(register):
    register("size", "netml_features_size.size:SizeFeature",
             summary="packet sizes (bytes on the wire) of each flow, padded to a fitted width")
