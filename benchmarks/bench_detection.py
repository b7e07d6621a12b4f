"""Detection per attack kind across captures: which flows, features and detectors find what.

Trains each pipeline on the normal flows of one `netml demo` capture (seed A) and scores another
(seed B: other hosts' timings, other attack instances), then prints, per attack kind (port scan,
SYN flood, C2 beacon, exfiltration, DNS tunnel), the ROC AUC of its flows against the normal flows
and the recall at the calibrated threshold, plus the FPR on seed B's normal flows. Labels are the
demo CSV's, joined on the 5-tuple in either direction; a labelled attack 5-tuple that no flow
holds (netml 0.x drops one-packet flows and tails) counts as a missed flow with the lowest score. This is how the defaults were chosen
(flow-meter flows both ways, flowstats, gmm); evalset-dev's real captures go through
`netml evaluate ../shared/data/evalset-dev/scenarios.json`.

    python benchmarks/bench_detection.py [--train-seed 20171] [--test-seed 7]
        [--pipelines 'meter/flowstats/gmm,meter/flowstats+context/gmm,netml/iat/ocsvm']
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import warnings
from pathlib import Path

import numpy as np

from netml_core.demo import make_demo
from netml_core.labels import CsvLabels
from netml_core.metrics import roc_auc
from netml_core.packets import words_to_ip
from netml_core.pipeline import Pipeline

KINDS = ("PortScan", "DoS-SYNflood", "Bot-Beacon", "Exfiltration", "DNS-Tunnel")
DEFAULT_PIPELINES = ("meter/flowstats/gmm,meter/flowstats+context/knn,meter/flowstats+context/gmm,"
                     "meter/flowstats+context/kde,meter/flowstats/knn,meter/flowstats/kde,meter/flowstats/ocsvm,"
                     "meter:uni/stats/ocsvm,netml/iat/ocsvm")


def kind_table(csv_path: Path) -> dict[tuple, str]:
    """Directional 5-tuple (text addresses) -> label name, from the demo CSV."""
    table = {}
    with open(csv_path, newline="") as fh:
        rows = csv.reader(fh)
        next(rows)
        for row in rows:
            table[(row[1].strip(), int(row[2]), row[3].strip(), int(row[4]), int(row[5]))] = row[-1].strip()
    return table


def missed_by_kind(flows, table) -> dict[str, int]:
    """Labelled 5-tuples of the CSV that no flow holds (a splitter dropped their packets), by label."""
    src, dst = words_to_ip(flows.src), words_to_ip(flows.dst)
    covered = set()
    for i in range(len(flows)):
        sp, dp, pr = int(flows.sport[i]), int(flows.dport[i]), int(flows.proto[i])
        covered.add((src[i], sp, dst[i], dp, pr))
        covered.add((dst[i], dp, src[i], sp, pr))
    missed: dict[str, int] = {}
    for key, label in table.items():
        if key not in covered:
            missed[label] = missed.get(label, 0) + 1
    return missed


def flow_kinds(flows, table) -> np.ndarray:
    """Label name of each flow: an attack label of either direction wins; None when unlabelled."""
    src, dst = words_to_ip(flows.src), words_to_ip(flows.dst)
    out = np.empty(len(flows), dtype=object)
    for i in range(len(flows)):
        sp, dp, pr = int(flows.sport[i]), int(flows.dport[i]), int(flows.proto[i])
        labels = [table.get((src[i], sp, dst[i], dp, pr)), table.get((dst[i], dp, src[i], sp, pr))]
        labels = [lab for lab in labels if lab is not None]
        attacks = [lab for lab in labels if lab != "BENIGN"]
        out[i] = attacks[0] if attacks else (labels[0] if labels else None)
    return out


def pipeline(spec: str) -> Pipeline:
    """``splitter[:uni]/feature[+context]/detector`` -> an unfitted pipeline (``+context``: the
    feature composed with host context, as ``netml learn --context``)."""
    splitter, feature, detector = spec.split("/")
    params = {}
    if ":" in splitter:
        splitter, direction = splitter.split(":")
        params["direction"] = direction
    feature_params = {}
    if feature.endswith("+context"):
        feature_params = {"base": feature[: -len("+context")]}
        feature = "context"
    return Pipeline(flow_splitter=splitter, flow_splitter_params=params, feature=feature,
                    feature_params=feature_params, detector=detector)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-seed", type=int, default=20171)
    ap.add_argument("--test-seed", type=int, default=7)
    ap.add_argument("--pipelines", default=DEFAULT_PIPELINES)
    ap.add_argument("--fpr", type=float, default=0.01)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        train, test = Path(tmp) / "train", Path(tmp) / "test"
        make_demo(train, seed=args.train_seed)
        make_demo(test, seed=args.test_seed)
        table = kind_table(test / "demo.csv")
        print(f"train: netml demo --seed {args.train_seed} (normal flows); test: --seed {args.test_seed}; "
              f"threshold at FPR {args.fpr}")
        print(f"{'pipeline':28s} {'all':>11s} " + " ".join(f"{k[:12]:>14s}" for k in KINDS) + f" {'FPR':>6s}")
        print(f"{'':28s} {'AUC/recall':>11s} " + " ".join(f"{'AUC/recall':>14s}" for _ in KINDS))
        for spec in args.pipelines.split(","):
            pipe = pipeline(spec)
            ex = pipe.fit_extract([train / "demo.pcap"], [CsvLabels(train / "demo.csv")])
            pipe.fit_detector(ex.X[ex.y == 0], fpr=args.fpr, random_state=42)
            got = pipe.extract(test / "demo.pcap")
            scores, kinds = pipe.score(got.X), flow_kinds(got.flows, table)
            normal = kinds == "BENIGN"
            # a labelled 5-tuple no flow holds was never scored: it counts as the lowest score
            missed = missed_by_kind(got.flows, table)
            low = np.array([-np.inf])
            cells, all_scores = [], []
            for kind in KINDS:
                mask = kinds == kind
                attack_scores = np.r_[scores[mask], np.repeat(low, missed.get(kind, 0))]
                all_scores.append(attack_scores)
                y = np.r_[np.zeros(normal.sum()), np.ones(len(attack_scores))]
                auc = roc_auc(y, np.r_[scores[normal], attack_scores])
                cells.append(f"{auc:6.3f}/{(attack_scores > pipe.threshold).mean():4.2f}   ")
            attack_scores = np.concatenate(all_scores)
            y = np.r_[np.zeros(normal.sum()), np.ones(len(attack_scores))]
            auc_all = roc_auc(y, np.r_[scores[normal], attack_scores])
            fpr = (scores[normal] > pipe.threshold).mean()
            recall_all = (attack_scores > pipe.threshold).mean()
            print(f"{spec:28s} {auc_all:6.3f}/{recall_all:4.2f} " + " ".join(f"{c:>14s}" for c in cells) + f" {fpr:6.3f}", flush=True)


if __name__ == "__main__":
    main()
