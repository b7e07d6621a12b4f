"""netml plugin: PyOD's detectors as ``pyod_<name>`` (alias ``pyod:<name>``). Registration only.

Names, summaries and default scalers are static data here, so listing plugins never imports PyOD
(``table.py`` turns the rows into ``Spec``s for the detector classes). ``NOT_PROVIDED`` says why
each other PyOD detector is not offered; ``netml plugins list --verbose`` shows it.
"""

from netml_core import hookimpl


def _row(module, cls, summary, default_scaler="standard", per_row=False, fixed=None):
    return {"module": module, "cls": cls, "summary": summary, "default_scaler": default_scaler,
            "per_row": per_row, "fixed": dict(fixed or {})}


#: module, PyOD class, summary and wrapping of each offered detector (table.Spec reads these)
OFFERED_ROWS = [
    _row("abod", "ABOD", "PyOD ABOD: variance of the angles to the k nearest training flows (fast variant)"),
    _row("cblof", "CBLOF", "PyOD CBLOF: cluster-based local outlier factor (k-means clusters of training flows)",
         fixed={"clustering_estimator": None, "check_estimator": False}),
    _row("copod", "COPOD", "PyOD COPOD: copula tail probabilities against the training flows (scored one flow at a time)",
         default_scaler="none", per_row=True),
    _row("ecod", "ECOD", "PyOD ECOD: empirical-CDF tail probabilities against the training flows (scored one flow at a time)",
         default_scaler="none", per_row=True),
    _row("gmm", "GMM", "PyOD GMM: minus the log-likelihood under a Gaussian mixture (1 component by default)",
         fixed={"weights_init": None, "means_init": None, "precisions_init": None, "warm_start": False}),
    _row("hbos", "HBOS", "PyOD HBOS: histogram-based outlier score, features taken as independent",
         default_scaler="none"),
    _row("iforest", "IForest", "PyOD IForest: isolation forest (scikit-learn's), mean path length inverted",
         default_scaler="none", fixed={"behaviour": "old", "verbose": 0}),
    _row("inne", "INNE", "PyOD INNE: isolation by nearest-neighbour ensembles of hyperspheres"),
    _row("kde", "KDE", "PyOD KDE: minus the log-density of a kernel density estimate", fixed={"metric_params": None}),
    _row("knn", "KNN", "PyOD KNN: distance to the k-th nearest training flow (largest, mean or median)",
         fixed={"metric_params": None}),
    _row("kpca", "KPCA", "PyOD KPCA: reconstruction error in a kernel PCA feature space",
         fixed={"kernel_params": None, "copy_X": True}),
    _row("loda", "LODA", "PyOD LODA: lightweight online detector, histograms of sparse random projections"),
    _row("lof", "LOF", "PyOD LOF: local outlier factor against the training flows (novelty mode)",
         fixed={"novelty": True, "metric_params": None}),
    _row("mcd", "MCD", "PyOD MCD: Mahalanobis distance under the minimum covariance determinant estimate"),
    _row("ocsvm", "OCSVM", "PyOD OCSVM: one-class SVM (scikit-learn's), minus the decision function",
         fixed={"verbose": False}),
    _row("pca", "PCA", "PyOD PCA: weighted distances to the principal hyperplanes", fixed={"copy": True}),
    _row("sampling", "Sampling", "PyOD Sampling: distance to the nearest of a random subset of training flows",
         fixed={"metric_params": None}),
]

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

NOT_PROVIDED = {f"detector:pyod_{module}": reason for module, reason in sorted(NOT_OFFERED.items())}


@hookimpl
def register_detectors(register):
    for row in sorted(OFFERED_ROWS, key=lambda r: r["module"]):
        register(f"pyod_{row['module']}", f"netml_models_pyod.detector:{row['cls']}",
                 aliases=(f"pyod:{row['module']}",), summary=row["summary"])
