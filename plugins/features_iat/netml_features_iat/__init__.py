"""netml features IAT and IAT_SIZE (hook implementations only; the code is in ``iat.py``)."""

from netml_core import hookimpl


@hookimpl
def register_features(register):
    register("iat", "netml_features_iat.iat:IatFeature",
             summary="inter-arrival times (s) of each flow, padded to a fitted width")
    register("iat_size", "netml_features_iat.iat:IatSizeFeature",
             summary="inter-arrival times (s) interleaved with packet sizes (bytes)")
