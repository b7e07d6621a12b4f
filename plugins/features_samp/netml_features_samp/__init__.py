"""netml features SAMP_NUM and SAMP_SIZE (hook implementations only; the code is in ``samp.py``)."""

from netml_core import hookimpl


@hookimpl
def register_features(register):
    register("samp_num", "netml_features_samp.samp:SampNumFeature",
             summary="packets per sampling window of fitted length (s), over each flow")
    register("samp_size", "netml_features_samp.samp:SampSizeFeature",
             summary="bytes per sampling window of fitted length (s), over each flow")
