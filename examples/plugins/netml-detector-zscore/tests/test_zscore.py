"""The plugin's own tests: netml's conformance kit checks every contract the CLI relies on
(parameters, fit, a round trip through a real model file, determinism, an obvious outlier on top,
one-row and empty input, a width mismatch, and that registering imports nothing heavy).

Run with the plugin installed: ``pip install -e . && pytest``.
"""

from netml_core.testing import check_detector

from netml_detector_zscore.zscore import ZScoreDetector


def test_zscore_conforms():
    check_detector(ZScoreDetector, plugin="netml_detector_zscore")


def test_zscore_with_max_conforms():
    check_detector(ZScoreDetector, {"reduce": "max"})
