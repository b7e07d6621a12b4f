"""``LearnedModel``: what ``load_data`` returns for a model file written by ``netml learn``.

It wraps the saved pipeline, so ``predict``/``decision_function`` use the training-time scaler,
detector and threshold. Feature rows must have the model's width; given a ``PCAP`` or a capture
path instead, the rows are extracted with the model's own fitted splitter and feature (the training
feature space), which is how netml 1.x classifies a new capture.
"""

from __future__ import annotations

import os

import numpy as np

from netml_core.errors import NetmlError


class LearnedModel:
    """A trained ``netml learn`` pipeline with the netml 0.x detector methods."""

    def __init__(self, pipeline, info: dict | None = None, source: str = ""):
        self.pipeline = pipeline
        self.info = dict(info or {})
        self.source = source
        self.name = pipeline.names.get("detector") or "model"

    @classmethod
    def from_contents(cls, contents, source: str = "") -> "LearnedModel":
        from netml_core.pipeline import Pipeline

        return cls(Pipeline.from_records(contents.components), contents.info, source)

    @property
    def n_features(self) -> int:
        return len(self.pipeline.feature.feature_names())

    def transform(self, data) -> np.ndarray:
        """Feature rows of a ``PCAP``/capture path with the model's fitted splitter and feature."""
        source = getattr(data, "pcap_file", data)
        return self.pipeline.extract(source).X

    def _rows(self, X) -> np.ndarray:
        if isinstance(X, (str, os.PathLike)) or hasattr(X, "pcap_file"):
            return self.transform(X)
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise NetmlError(f"expected a 2-D feature matrix, got shape {X.shape}")
        if X.shape[1] != self.n_features:
            raise NetmlError(
                f"features have {X.shape[1]} values per flow but this model was trained on {self.n_features} "
                f"({self.pipeline.names['feature']}): pass the PCAP or capture path to let the model extract them"
            )
        return X

    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores (higher = more anomalous)."""
        return self.pipeline.score(self._rows(X))

    def predict(self, X) -> np.ndarray:
        """1 for flows above the model's fitted threshold, else 0."""
        return self.pipeline.predict(self._rows(X))

    def __repr__(self) -> str:
        return f"<LearnedModel {self.pipeline.describe()}>"
