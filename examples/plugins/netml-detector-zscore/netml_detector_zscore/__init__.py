"""netml plugin entry module: registration only.

The factory is a "module:Class" string so that `netml plugins list` never imports the detector code.
"""

from netml_core import hookimpl


@hookimpl
def register_detectors(register):
    register("zscore", "netml_detector_zscore.zscore:ZScoreDetector", aliases=("z_score",),
             summary="mean absolute z-score of the features against the training flows")
