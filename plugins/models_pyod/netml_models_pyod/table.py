"""Which PyOD detectors netml offers, and why each of the others is not offered.

A static table, so that registering the detectors (``netml plugins list``) never imports PyOD
(numba and scikit-learn: over a second). Parameters and their defaults are read from PyOD itself,
later, when a detector is created or ``--help-param`` asks (see ``pyod_params``).

A detector is offered when it scores new flows against its training flows alone (a flow's score
does not depend on the other flows of the capture), is deterministic under ``random_state``, runs
on a plain numeric matrix without torch, and ranks an obvious outlier above normal flows;
``tests/test_models_pyod.py`` runs the conformance kit over every offered one. Every module of
``pyod.models`` is named here, offered or not, and a test fails when PyOD ships one that is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREFIX = "pyod_"


@dataclass(frozen=True, eq=False)
class Spec:
    """One offered PyOD detector: where PyOD keeps it and how netml wraps it."""

    module: str  # under pyod.models
    cls: str
    summary: str
    #: scaler the pipeline applies first: per-feature rank and histogram detectors are unchanged by it
    default_scaler: str = "standard"
    #: PyOD scores a batch together with the training matrix (ECDFs of training + batch): score each
    #: flow alone against the training flows, so its score does not depend on its neighbours in a capture
    per_row: bool = False
    #: PyOD parameters not offered (Python objects, verbosity, copies) -> the value always passed
    fixed: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return PREFIX + self.module


_SPECS = [
    Spec("abod", "ABOD", "PyOD ABOD: variance of the angles to the k nearest training flows (fast variant)"),
    Spec("cblof", "CBLOF", "PyOD CBLOF: cluster-based local outlier factor (k-means clusters of training flows)",
         fixed={"clustering_estimator": None, "check_estimator": False}),
    Spec("copod", "COPOD", "PyOD COPOD: copula tail probabilities against the training flows (scored one flow at a time)",
         default_scaler="none", per_row=True),
    Spec("ecod", "ECOD", "PyOD ECOD: empirical-CDF tail probabilities against the training flows (scored one flow at a time)",
         default_scaler="none", per_row=True),
    Spec("gmm", "GMM", "PyOD GMM: minus the log-likelihood under a Gaussian mixture (1 component by default)",
         fixed={"weights_init": None, "means_init": None, "precisions_init": None, "warm_start": False}),
    Spec("hbos", "HBOS", "PyOD HBOS: histogram-based outlier score, features taken as independent",
         default_scaler="none"),
    Spec("iforest", "IForest", "PyOD IForest: isolation forest (scikit-learn's), mean path length inverted",
         default_scaler="none", fixed={"behaviour": "old", "verbose": 0}),
    Spec("inne", "INNE", "PyOD INNE: isolation by nearest-neighbour ensembles of hyperspheres"),
    Spec("kde", "KDE", "PyOD KDE: minus the log-density of a kernel density estimate", fixed={"metric_params": None}),
    Spec("knn", "KNN", "PyOD KNN: distance to the k-th nearest training flow (largest, mean or median)",
         fixed={"metric_params": None}),
    Spec("kpca", "KPCA", "PyOD KPCA: reconstruction error in a kernel PCA feature space",
         fixed={"kernel_params": None, "copy_X": True}),
    Spec("loda", "LODA", "PyOD LODA: lightweight online detector, histograms of sparse random projections"),
    Spec("lof", "LOF", "PyOD LOF: local outlier factor against the training flows (novelty mode)",
         fixed={"novelty": True, "metric_params": None}),
    Spec("mcd", "MCD", "PyOD MCD: Mahalanobis distance under the minimum covariance determinant estimate"),
    Spec("ocsvm", "OCSVM", "PyOD OCSVM: one-class SVM (scikit-learn's), minus the decision function",
         fixed={"verbose": False}),
    Spec("pca", "PCA", "PyOD PCA: weighted distances to the principal hyperplanes", fixed={"copy": True}),
    Spec("sampling", "Sampling", "PyOD Sampling: distance to the nearest of a random subset of training flows",
         fixed={"metric_params": None}),
]

#: netml name -> Spec, in name order
OFFERED: dict[str, Spec] = {s.name: s for s in sorted(_SPECS, key=lambda s: s.module)}

_TORCH = "needs torch (and tqdm); this plugin keeps torch out: use netml's ae detector (netml-models-ae)"
_BATCH = ("scores a batch against itself, not against the training flows: a flow's score would depend on "
          "the other flows of the capture")
_ENSEMBLE = "an ensemble of other PyOD detectors given as Python objects, which --param cannot express"

#: every other module of pyod.models -> why it is not offered (shown by `netml plugins list --verbose`)
NOT_OFFERED: dict[str, str] = {
    "ae1svm": _TORCH, "alad": _TORCH, "anogan": _TORCH, "auto_encoder": _TORCH, "deep_svdd": _TORCH,
    "dif": _TORCH, "lunar": _TORCH, "mo_gaal": _TORCH, "so_gaal": _TORCH, "so_gaal_new": _TORCH, "vae": _TORCH,
    "devnet": "semi-supervised (needs labelled anomalies) and needs torch",
    "xgbod": "supervised: needs labelled anomalies (and xgboost)",
    "cd": "Cook's distance regresses one column on the others, batch by batch: " + _BATCH,
    "cof": _BATCH, "sod": _BATCH, "sos": _BATCH, "lmdd": _BATCH, "rod": _BATCH,
    "rgraph": _BATCH + "; and it ranks an obvious outlier below normal flows",
    "hdbscan": "scores a new flow by the scores of its nearest training flows, so a flow far from all of "
               "them scores no higher than they do",
    "qmcd": "ranks an obvious outlier below normal flows (wrap-around discrepancy on min-max scaled data)",
    "mad": "univariate: takes exactly one feature",
    "loci": "cubic in the training flows (minutes for 1,000 flows), and with few of them it scores every flow 0, "
            "an obvious outlier included",
    "lscp": _ENSEMBLE, "suod": _ENSEMBLE + " (and the suod package)",
    "feature_bagging": _ENSEMBLE + " (and the combo package)",
    "embedding": "embeds text or images with a language model: not a feature-matrix detector",
    "audio_ae": "audio input (and torch)",
}
#: module prefixes of PyOD's graph (torch_geometric) and time-series detectors
NOT_OFFERED_PREFIXES = {
    "pyg_": "graph detector (torch_geometric): not a feature-matrix detector",
    "ts_": "time-series detector: scores windows of one series, not flows",
}
#: modules of pyod.models that hold no detector
NOT_DETECTORS = {"base", "base_dl", "combination", "gaal_base", "sklearn_base", "thresholds", "_pyg_utils",
                 "_ts_utils"}


def not_offered_reason(module: str) -> str | None:
    """Why the PyOD module ``module`` is not offered, or None (offered, or not a detector module)."""
    if module in NOT_OFFERED:
        return NOT_OFFERED[module]
    for prefix, reason in NOT_OFFERED_PREFIXES.items():
        if module.startswith(prefix):
            return reason
    return None
