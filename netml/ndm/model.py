"""``MODEL``: netml 0.x's train/test wrapper around a detector, with its ``tot_time`` attributes."""

from __future__ import annotations

import numpy as np

from netml.pparser.parser import timed
from netml_core.pipeline import roc_auc


class MODEL:
    """Train a detector and score it on labelled test rows (ROC AUC, anomalies = label 1)."""

    def __init__(self, model=None, *, score_metric="auc", verbose=1, **kwargs):
        self.model = model
        self.model_name = getattr(model, "name", type(model).__name__)
        self.score_metric = score_metric
        self.verbose = verbose
        self.history: dict = {}
        if "random_state" in kwargs:
            self.random_state = kwargs["random_state"]

    @timed
    def train(self, X_train, y_train=None):
        """Fit the detector on ``X_train`` (labels unused: unsupervised)."""
        self.model.fit(X_train, y_train)

    @timed
    def test(self, X_test, y_test):
        """Score ``X_test``; with ``score_metric='auc'`` set ``score`` and ``history['score']``."""
        y_score = np.asarray(self.model.decision_function(X_test), dtype=float)
        if self.score_metric == "auc":
            self.score = roc_auc(np.asarray(y_test), y_score)
            self.history["score"] = self.score
