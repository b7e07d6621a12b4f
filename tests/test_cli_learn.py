"""`netml learn` end to end through the CLI on the original's demo capture.

Every detector x {IAT, SIZE, STATS, SAMP_NUM}: learn on demo.pcap + demo.csv, then classify the
training capture (scores identical to those computed at training time) and a second, different
capture (srcIP_10.42.0.119_anomaly.pcap). Plus the original CLI's AUCs and the option semantics.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import cli, demo_data

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo"

DETECTORS = ["ocsvm", "kde", "iforest", "ae", "gmm", "pca"]
FEATURES = ["IAT", "SIZE", "STATS", "SAMP_NUM"]
#: keep the autoencoder quick in the matrix
FAST_PARAMS = {"ae": "{epochs: 3, hidden_dim: 16, latent_dim: 4}"}
#: reference feature widths of the original on the 88 labelled demo flows
WIDTH = {"IAT": 71, "SIZE": 72, "STATS": 12, "SAMP_NUM": 71}


def ok(*argv) -> tuple[str, str]:
    argv = with_netml_flows(argv)
    code, out, err = cli(*argv)
    assert code == 0, f"netml {' '.join(map(str, argv))} exited {code}: {err}"
    return out, err


def with_netml_flows(argv) -> tuple:
    """This module checks figures of the original's demo under netml 0.x's pipeline: ``learn`` gets
    ``--compat`` unless a test chooses its flows itself (the defaults are tested in test_cli_defaults)."""
    argv = tuple(argv)
    if argv and argv[0] == "learn" and not {"--splitter", "--compat", "--help-param"} & {str(a) for a in argv}:
        return ("learn", "--compat", *argv[1:])
    return argv


def read_scores_csv(path: Path) -> dict[tuple, float]:
    """(src, sport, dst, dport, proto-number-or-name, start) -> score, from report or classify CSV."""
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            proto = {"TCP": "6", "UDP": "17"}.get(row["proto"], row["proto"])
            key = (row["src"], int(row["sport"]), row["dst"], int(row["dport"]), proto, float(row["start"]))
            assert key not in out, f"duplicate flow {key}"
            out[key] = float(row["score"])
    return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Train every (detector, feature) once; classify the demo and the second capture with each."""
    data = demo_data()
    root = tmp_path_factory.mktemp("matrix")
    runs = {}
    for det in DETECTORS:
        for feat in FEATURES:
            d = root / f"{det}-{feat}"
            args = ["learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--feature", feat,
                    "--algorithm", det, "-o", d / "model.netml", "--report", d / "report"]
            if det in FAST_PARAMS:
                args += ["--param", FAST_PARAMS[det]]
            learn_out, _ = ok(*args)
            same_out, same_err = ok("classify", "--model", d / "model.netml", "--pcap", data / "demo.pcap",
                                    "--report-all", "--format", "csv")
            (d / "same.csv").write_text(same_out)
            other_out, other_err = ok("classify", "--model", d / "model.netml", "--pcap",
                                      data / "srcIP_10.42.0.119_anomaly.pcap", "--report-all", "--format", "jsonl")
            runs[det, feat] = dict(dir=d, learn_out=learn_out, same_err=same_err, other_out=other_out,
                                   other_err=other_err)
    return runs


@pytest.mark.parametrize("det", DETECTORS)
@pytest.mark.parametrize("feat", FEATURES)
def test_learn_then_classify_every_detector_and_feature(matrix, det, feat):
    run = matrix[det, feat]
    d = run["dir"]
    metrics = json.loads((d / "report" / "metrics.json").read_text())
    assert metrics["algorithm"] == det and metrics["feature"] == feat.lower()
    # the original's labelled flows and split: 88 flows, 58 train / 30 test, 48 normal training flows
    # (--compat fits on all 58 like the original)
    assert (metrics["n_train"], metrics["n_test"], metrics["n_train_normal"]) == (58, 30, 48)
    assert metrics["n_fit"] == 58 and metrics["calibration"]["method"] == "contamination"  # --compat
    assert (metrics["n_test_normal"], metrics["n_test_anomalous"]) == (25, 5)
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and 0.0 <= metrics["average_precision"] <= 1.0
    assert "ROC AUC" in run["learn_out"] and f"{metrics['roc_auc']:.3f}" in run["learn_out"]

    # classify on the training capture reproduces the training-time score of every labelled flow
    trained = read_scores_csv(d / "report" / "scores.csv")
    assert len(trained) == 88
    again = read_scores_csv(d / "same.csv")
    assert len(again) == 196  # every sub-flow of the capture, labelled or not
    for key, score in trained.items():
        assert again[key] == score, f"{det}/{feat}: flow {key} scored {again[key]} now, {score} at training"
    assert "196 flows" in run["same_err"]

    # a different capture: same feature width (no per-capture refit), finite scores for every flow
    rows = [json.loads(line) for line in run["other_out"].splitlines()]
    assert len(rows) > 50
    assert all(np.isfinite(r["score"]) for r in rows)
    assert {r["src"] for r in rows} | {r["dst"] for r in rows} >= {"10.42.0.119"}
    n_anom = sum(r["anomaly"] for r in rows)
    assert f"{len(rows)} flows, {n_anom} anomalies" in run["other_err"]


def test_feature_width_matches_original(matrix):
    for feat, width in WIDTH.items():
        scores = matrix["ocsvm", feat]["dir"] / "report" / "scores.csv"
        assert scores.exists()
        with zipfile.ZipFile(matrix["ocsvm", feat]["dir"] / "model.netml") as zf:
            names = json.loads(zf.read("manifest.json"))["info"]["feature_names"]
        assert len(names) == width, f"{feat}: {len(names)} features, original has {width}"


ORIGINAL = {  # the original netml CLI on demo IAT, its detector defaults, trained on every training flow
    "ocsvm": ("{kernel: rbf, nu: 0.5, gamma: scale}", 0.632),
    "kde": ("{kernel: gaussian, bandwidth: 1.0}", 0.656),
    "gmm": ("{n_components: 1}", 0.568),
    "pca": ("{n_components: null, score_method: weighted_distance}", 0.616),
}


@pytest.mark.parametrize("det", sorted(ORIGINAL))
def test_original_cli_aucs_on_iat(tmp_path, det):
    data = demo_data()
    params, auc = ORIGINAL[det]
    ok("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--algorithm", det, "--param", params,
       "--train-on", "all", "--scaler", "none", "-o", tmp_path / "m.dat", "--report", tmp_path / "r")
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["n_fit"] == 58 and metrics["train_on"] == "all"
    assert round(metrics["roc_auc"], 3) == auc


def test_report_files_and_table(tmp_path):
    data = demo_data()
    out, _ = ok("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--feature", "stats",
                "-o", tmp_path / "out" / "model.dat", "--report", tmp_path / "rep")
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    for key in ("roc_auc", "average_precision", "precision", "recall", "n_train", "n_test",
                "train_seconds", "test_seconds"):
        assert key in m
    assert m["train_seconds"] > 0 and m["test_seconds"] >= 0
    assert (tmp_path / "rep" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = out.splitlines()
    assert any(line.split()[:3] == ["normal", "48", "25"] for line in lines)
    assert any(line.split()[:3] == ["anomalous", "10", "5"] for line in lines)
    for label in ("train time", "test time", "ROC AUC", "avg precision", "precision", "recall"):
        assert any(line.startswith(label) for line in lines), label
    assert (tmp_path / "out" / "model.dat").is_file()  # out/ created like the original's paths


def test_unlabelled_learn_fits_every_flow(tmp_path):
    data = demo_data()
    out, _ = ok("learn", "--pcap", data / "demo.pcap", "--output", tmp_path / "model.dat",
                "--report", tmp_path / "r")
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["n_fit"] == m["n_flows"] == 196 and m["n_test"] == 0 and m["roc_auc"] is None
    assert "no labels" in out and "ROC AUC" not in out


def test_extract_then_train_equals_learn(tmp_path):
    data = demo_data()
    _, err = ok("learn", "extract", "--pcap", data / "demo.pcap", "--label", data / "demo.csv",
                "--feature", tmp_path / "out" / "IAT-features.dat")
    assert "features file" in err  # the note: a path given to --feature
    assert (tmp_path / "out" / "IAT-features.dat").is_file()
    ok("learn", "train", "--feature", tmp_path / "out" / "IAT-features.dat", "--output", tmp_path / "two.dat",
       "--report", tmp_path / "two")
    ok("learn", "--pcap", data / "demo.pcap", "--label", data / "demo.csv", "--output", tmp_path / "one.dat",
       "--report", tmp_path / "one")
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    for key in ("roc_auc", "average_precision", "precision", "recall", "n_train", "n_test", "threshold"):
        assert one[key] == two[key], key
    # and the model trained from the features file classifies captures like the in-memory one
    a = ok("classify", "-m", tmp_path / "one.dat", "-p", data / "demo.pcap", "--report-all", "--format", "csv")[0]
    b = ok("classify", "-m", tmp_path / "two.dat", "-p", data / "demo.pcap", "--report-all", "--format", "csv")[0]
    assert a == b and len(a.splitlines()) == 197


def test_train_twice_from_one_features_file(tmp_path):
    """The original truncated the features file when 'train' opened it; ours is only read."""
    data = demo_data()
    ok("learn", "extract", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--feature-file", tmp_path / "f.npz")
    before = (tmp_path / "f.npz").read_bytes()
    for det in ("ocsvm", "kde"):
        ok("learn", "train", "--feature-file", tmp_path / "f.npz", "--algorithm", det, "-o", tmp_path / f"{det}.dat")
    assert (tmp_path / "f.npz").read_bytes() == before


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


@pytest.mark.parametrize("given, name, params", [
    ("SAMP_NUM", "samp_num", {}),
    ("FFT-IAT", "iat", {"fft": True}),
    ("Stats", "stats", {}),
    ("iat_size", "iat_size", {}),
])
def test_feature_names_of_the_original_are_accepted(tmp_path, given, name, params):
    data = demo_data()
    ok("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--feature", given, "-o", tmp_path / "m.dat")
    feat = _manifest(tmp_path / "m.dat")["components"]["feature"]
    assert feat["name"] == name
    for k, v in params.items():
        assert feat["params"][k] == v


def test_fft_and_header_flags_reach_the_feature(tmp_path):
    data = demo_data()
    out, err = ok("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--fft", "--header", "-o", tmp_path / "m.dat")
    feat = _manifest(tmp_path / "m.dat")["components"]["feature"]
    assert feat["name"] == "iat" and feat["params"]["fft"] is True and feat["params"]["header"] is True
    assert "feature=iat+fft+header " in out + err  # the summary names the variant that ran


def test_manifest_records_components_versions_and_splitter_options(tmp_path):
    data = demo_data()
    ok("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--q-interval", "0.8",
       "--flow-pkts-threshold", "3", "--algorithm", "if", "-o", tmp_path / "m.dat")
    m = _manifest(tmp_path / "m.dat")
    comps = m["components"]
    assert [comps[r]["name"] for r in ("reader", "flow_splitter", "feature", "scaler", "detector")] == \
        ["native", "netml", "iat", "none", "iforest"]  # iforest's default scaler is none
    assert comps["flow_splitter"]["params"]["q_interval"] == 0.8
    assert comps["flow_splitter"]["params"]["flow_pkts_thres"] == 3
    assert comps["flow_splitter"]["state"]["interval_"] > 0
    assert comps["detector"]["distribution"] == "netml-models-iforest" and comps["detector"]["version"] == "1.0.0"
    assert comps["detector"]["params"]["random_state"] == 42


def test_pcap_normal_and_abnormal(tmp_path):
    data = demo_data()
    out, _ = ok("learn", "--pcap-normal", data / "demo.pcap", "--pcap-abnormal",
                data / "srcIP_10.42.0.119_anomaly.pcap", "--feature", "stats", "-o", tmp_path / "m.dat",
                "--report", tmp_path / "r")
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["n_train"] + m["n_test"] == m["n_flows"]
    # every sub-flow of demo.pcap (split with the interval learned on both captures) is normal,
    # every one of the other capture anomalous
    rows = ok("classify", "-m", tmp_path / "m.dat", "-p", data / "demo.pcap", "--report-all", "--format", "csv")[0]
    n_demo = len(rows.splitlines()) - 1
    assert m["n_train_normal"] + m["n_test_normal"] == n_demo
    rows = ok("classify", "-m", tmp_path / "m.dat", "-p", data / "srcIP_10.42.0.119_anomaly.pcap",
              "--report-all", "--format", "csv")[0]
    assert m["n_train_anomalous"] + m["n_test_anomalous"] == len(rows.splitlines()) - 1
    assert m["n_test_anomalous"] > 0 and 0.0 <= m["roc_auc"] <= 1.0


def test_verbose_levels_log_to_stderr(tmp_path):
    data = demo_data()
    _, err = ok("learn", "-p", data / "demo.pcap", "-o", tmp_path / "a.dat", "-v")
    assert "196 flows" in err and "DEBUG" not in err
    _, err = ok("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--algorithm", "ae",
                "--param", "{epochs: 2}", "-o", tmp_path / "b.dat", "-vv")
    assert "DEBUG" in err and "epoch" in err.lower()
    _, err = ok("learn", "-p", data / "demo.pcap", "-o", tmp_path / "c.dat")
    assert err == ""


def _one_line_error(*argv) -> str:
    code, out, err = cli(*argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_errors_are_one_line(tmp_path):
    data = demo_data()
    line = _one_line_error("learn", "-p", data / "demo.pcap", "--algorithm", "nosuch", "-o", tmp_path / "m")
    assert "nosuch" in line and "ocsvm" in line and "iforest" in line
    line = _one_line_error("learn", "-p", data / "demo.pcap", "--param", "{nuu: 0.1}", "-o", tmp_path / "m")
    assert "nuu" in line
    line = _one_line_error("learn", "-p", data / "demo.pcap", "--feature", "nosuchfeature", "-o", tmp_path / "m")
    assert "nosuchfeature" in line and "iat" in line
    line = _one_line_error("learn", "-p", data / "demo.pcap", "-p", data / "demo.pcap", "-l", data / "demo.csv",
                           "-l", data / "demo.csv", "-l", data / "demo.csv", "-o", tmp_path / "m")
    assert "3 --label" in line
    assert "no such file" in _one_line_error("learn", "-p", tmp_path / "missing.pcap", "-o", tmp_path / "m")
    (tmp_path / "text.pcap").write_text("not a capture\n")
    assert "not a pcap" in _one_line_error("learn", "-p", tmp_path / "text.pcap", "-o", tmp_path / "m")
    assert "--output" in _one_line_error("learn", "-p", data / "demo.pcap")
    assert "features file" in _one_line_error("learn", "train", "-o", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_help_algorithm_and_help_param():
    out, _ = ok("learn", "--help-algorithm")
    for det in DETECTORS:
        assert any(line.startswith(det) for line in out.splitlines()), det
    out, _ = ok("learn", "--help-param")  # the default pipeline: detector, then feature, then splitter
    assert out.startswith("gmm") and "n_components" in out
    assert "feature flowstats:" in out and "Set with --feature-param '{first_n: 8}'" in out
    assert "splitter meter:" in out and "idle_timeout" in out and "Set with --splitter-param" in out
    out, _ = ok("learn", "--help-param", "--algorithm", "ocsvm")
    assert out.startswith("ocsvm") and "nu" in out and "0.5" in out
    out, _ = ok("learn", "--help-param", "--algorithm", "kde")
    assert out.startswith("kde") and "bandwidth" in out


def test_reader_option_and_options_before_the_subcommand(tmp_path):
    data = demo_data()
    ok("learn", "--reader", "dpkt", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--train-on", "all",
       "--scaler", "none", "-o", tmp_path / "d.dat", "--report", tmp_path / "d")
    assert _manifest(tmp_path / "d.dat")["components"]["reader"]["name"] == "dpkt"
    assert round(json.loads((tmp_path / "d" / "metrics.json").read_text())["roc_auc"], 3) == 0.632
    # options may precede the sub-command name, as the original's argparse allowed
    ok("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "extract", "--feature-file", tmp_path / "f.npz")
    ok("learn", "--algorithm", "kde", "train", "--feature-file", tmp_path / "f.npz", "-o", tmp_path / "k.dat")
    comps = _manifest(tmp_path / "k.dat")["components"]
    assert comps["detector"]["name"] == "kde" and comps["reader"]["name"] == "native"


def test_help_param_with_a_feature_lists_its_parameters_too():
    out, _ = ok("learn", "--help-param", "--algorithm", "if", "--feature", "SAMP_NUM")
    assert out.startswith("iforest") and "n_estimators" in out
    assert "feature samp_num" in out and "q_samp" in out and "q_dim" in out
