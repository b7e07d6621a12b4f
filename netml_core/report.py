"""``--report DIR``: metrics.json, scores.csv (one row per flow) and roc.png of a training run.

The plot needs matplotlib (``pip install 'netml[report]'``); without it the other two files are
still written and one warning line says why the plot is missing.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import NetmlError
from .packets import words_to_ip

log = logging.getLogger("netml.report")

#: protocol numbers as ``netml classify`` prints them, so the two CSVs join on the same text
PROTO_NAMES = {6: "TCP", 17: "UDP"}


def write_report(folder: str, metrics: dict, flows_info: dict, y, split, scores, threshold,
                 y_test, test_scores) -> None:
    """Write the three files into ``folder`` (created), each atomically."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
        atomic_write(out / "scores.csv", _scores_csv(flows_info, y, split, scores, threshold).encode())
    except OSError as exc:
        raise NetmlError(f"cannot write report to {out}: {exc.strerror or exc}") from None
    if y_test is not None and len(y_test) and metrics.get("roc_auc") is not None:
        plot_roc(out / "roc.png", y_test, test_scores, metrics)


def _scores_csv(flows_info: dict, y, split, scores, threshold) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["capture", "src", "sport", "dst", "dport", "proto", "start", "end", "split", "label",
                "score", "anomaly"])
    src, dst = words_to_ip(flows_info["src"]), words_to_ip(flows_info["dst"])
    names = flows_info.get("sources") or [""]
    for i in range(len(scores)):
        cap = int(flows_info["capture"][i])
        w.writerow([names[cap] if cap < len(names) else cap, src[i], int(flows_info["sport"][i]), dst[i],
                    int(flows_info["dport"][i]), PROTO_NAMES.get(int(flows_info["proto"][i]), int(flows_info["proto"][i])),
                    repr(float(flows_info["first_ts"][i])), repr(float(flows_info["last_ts"][i])),
                    split[i], "" if y is None else int(y[i]), repr(float(scores[i])),
                    int(scores[i] > threshold)])
    return buf.getvalue()


def plot_roc(path: Path, y_test, test_scores, metrics: dict) -> None:
    """The test split's ROC curve as a PNG (skipped with a warning without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no ROC curve (pip install 'netml[report]')")
        return
    from .metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_test, np.asarray(test_scores))
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.plot(fpr, tpr, label=f"{metrics['algorithm']} on {metrics['feature']} (AUC {metrics['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC, {metrics['n_test']} test flows")
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
