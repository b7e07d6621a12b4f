"""Detector figures: fit/score time on synthetic data, and ROC AUC on the original netml's demo features.

Usage (from the repository root, venv active):

    python benchmarks/bench_detectors.py                 # both sections
    python benchmarks/bench_detectors.py --speed-only
    python benchmarks/bench_detectors.py --auc-only

Speed: each detector with its default parameters and default scaler fits 1,000 x 100 normal flows
and scores 10,000 x 100 flows; best of ``--repeat`` runs, wall-clock seconds.

AUC: the reference feature files of netml 0.7.1 (``../shared/reference/netml-0.7.1``), split as the
original CLI did (train_test_split test_size=0.33, random_state=42). Two regimes per detector:
``novelty`` (our default: train on the normal training flows, default scaler, default parameters)
and ``original`` (train on all training flows, no scaling, the original's parameters).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from netml_core.registry import get_registry
from netml_core.scaling import default_scaler_for, make_scaler

DETECTORS = ["ocsvm", "kde", "iforest", "ae", "gmm", "pca"]
FEATURES = ["IAT", "SIZE", "STATS", "SAMP_NUM"]
ORIGINAL_PARAMS = {"pca": {"score_method": "weighted_distance", "n_components": None}}
REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "netml-0.7.1"


def speed(repeat: int) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(1_000, 100))
    test = rng.normal(size=(10_000, 100)) * 1.2
    reg = get_registry()
    print(f"speed: fit 1000 x 100, score 10000 x 100, best of {repeat} (seconds; scored flows/s)")
    print(f"{'detector':10} {'scaler':9} {'fit_s':>8} {'score_s':>8} {'flows/s':>10}")
    for name in DETECTORS:
        reg.component_class("detector", name)  # import outside the timing
        fits, scores = [], []
        for _ in range(repeat):
            scaler = make_scaler(default_scaler_for(name))
            det = reg.create("detector", name)
            t0 = time.perf_counter()
            det.fit(scaler.fit_transform(train))
            t1 = time.perf_counter()
            det.score(scaler.transform(test))
            t2 = time.perf_counter()
            fits.append(t1 - t0)
            scores.append(t2 - t1)
        fit_s, score_s = min(fits), min(scores)
        print(f"{name:10} {default_scaler_for(name):9} {fit_s:8.3f} {score_s:8.3f} {len(test) / score_s:10.0f}")


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def auc_table() -> None:
    from sklearn.model_selection import train_test_split

    if not REFERENCE.is_dir():
        sys.exit(f"reference features not found at {REFERENCE}")
    reg = get_registry()
    print("ROC AUC on the demo features (test split 0.33, random_state 42)")
    print(f"{'detector':10} {'regime':9} " + " ".join(f"{f:>9}" for f in FEATURES))
    cols = {}
    for feat in FEATURES:
        X = np.load(REFERENCE / f"{feat}_features.npy", allow_pickle=False)
        y = np.load(REFERENCE / f"{feat}_labels.npy", allow_pickle=False)
        cols[feat] = train_test_split(X, y, test_size=0.33, random_state=42)
    for name in DETECTORS:
        for regime in ("novelty", "original"):
            row = []
            for feat in FEATURES:
                X_tr, X_te, y_tr, y_te = cols[feat]
                if regime == "novelty":
                    X_fit, scaler, params = X_tr[y_tr == 0], make_scaler(default_scaler_for(name)), {}
                else:
                    X_fit, scaler, params = X_tr, make_scaler("none"), ORIGINAL_PARAMS.get(name, {})
                scaler.fit(X_fit)
                det = reg.create("detector", name, params).fit(scaler.transform(X_fit))
                row.append(_auc(y_te, det.score(scaler.transform(X_te))))
            print(f"{name:10} {regime:9} " + " ".join(f"{v:9.3f}" for v in row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--auc-only", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.auc_only:
        speed(args.repeat)
    if not args.speed_only:
        if not args.auc_only:
            print()
        auc_table()


if __name__ == "__main__":
    main()
