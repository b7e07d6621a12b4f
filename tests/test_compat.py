"""The original netml's documented Python usage, run verbatim against the shared demo capture."""

from __future__ import annotations

import io
import json
import os
import pickle
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from netml_core.errors import NetmlError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO_DIR = SHARED / "data" / "netml-demo"
REF = SHARED / "reference" / "netml-0.7.1"

SNIPPET_PARSE = """
from netml.pparser.parser import PCAP
from netml.utils.tool import dump_data, load_data
pcap = PCAP('data/demo.pcap', flow_ptks_thres=2, random_state=42, verbose=10)
pcap.pcap2flows(q_interval=0.9)
pcap.label_flows(label_file='data/demo.csv')
pcap.flow2features('IAT', fft=False, header=False)
dump_data((pcap.features, pcap.labels), out_file='out/IAT-features.dat')
print(pcap.features.shape, pcap.pcap2flows.tot_time, pcap.flow2features.tot_time)
"""

SNIPPET_TRAIN = """
from sklearn.model_selection import train_test_split
from netml.ndm.model import MODEL
from netml.ndm.ocsvm import OCSVM
from netml.utils.tool import dump_data, load_data
(features, labels) = load_data('out/IAT-features.dat')
X_train, X_test, y_train, y_test = train_test_split(features, labels, test_size=0.33, random_state=42)
ocsvm = OCSVM(kernel='rbf', nu=0.5, random_state=42)
ocsvm.name = 'OCSVM'
ndm = MODEL(ocsvm, score_metric='auc', verbose=10, random_state=42)
ndm.train(X_train)
ndm.test(X_test, y_test)
dump_data((ocsvm, ndm.history), out_file='out/OCSVM-results.dat')
print(ndm.train.tot_time, ndm.test.tot_time, ndm.score)
"""

SNIPPET_MODEL = """
(model, train_history) = load_data('model.dat')      # a model written by `netml learn`
model.predict(pcap.features)
"""


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"shared data missing: {path}", pytrace=False)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch folder laid out like the original's examples: data/demo.pcap, data/demo.csv, out/."""
    root = tmp_path_factory.mktemp("compat")
    (root / "data").mkdir()
    (root / "out").mkdir()
    for name in ("demo.pcap", "demo.csv"):
        os.symlink(_need(DEMO_DIR / name), root / "data" / name)
    return root


def _run(code: str, cwd: Path, scope: dict | None = None) -> tuple[dict, str]:
    scope = {} if scope is None else scope
    old = os.getcwd()
    out = io.StringIO()
    try:
        os.chdir(cwd)
        with redirect_stdout(out):
            exec(compile(textwrap.dedent(code), "<snippet>", "exec"), scope)  # noqa: S102 - the docs' code
    finally:
        os.chdir(old)
    return scope, out.getvalue()


@pytest.fixture(scope="module")
def parsed(workdir):
    return _run(SNIPPET_PARSE, workdir)


@pytest.fixture(scope="module")
def trained(workdir, parsed):
    return _run(SNIPPET_TRAIN, workdir)


def test_parse_snippet_matches_reference(parsed, workdir):
    scope, printed = parsed
    pcap = scope["pcap"]
    assert pcap.features.shape == (88, 71)
    np.testing.assert_allclose(pcap.features, np.load(REF / "IAT_features.npy"), rtol=0, atol=5e-7)
    assert pcap.labels.tolist() == np.load(REF / "IAT_labels.npy").tolist()
    assert [list(f) for f in pcap.fids] == json.loads((REF / "fids_feature_order.json").read_text())
    assert pcap.interval == pytest.approx(5.776507735252384, rel=1e-12)
    assert len(pcap.flows) == 88 and sum(len(p) for _, p in pcap.flows) == sum(
        f["n_pkts"] for f in json.loads((REF / "flows_labelled.json").read_text()))
    # the timing decorator's attributes: minutes, 4 decimals, on the methods
    for method in (pcap.pcap2flows, pcap.label_flows, pcap.flow2features):
        assert isinstance(method.tot_time, float) and 0 <= method.tot_time < 1
    assert printed.startswith(f"(88, 71) {pcap.pcap2flows.tot_time} {pcap.flow2features.tot_time}")
    assert (workdir / "out" / "IAT-features.dat").read_bytes()[:4] == b"PK\x03\x04"  # a zip, not a pickle


def test_train_snippet_reproduces_original_auc(trained, workdir):
    scope, printed = trained
    ndm, ocsvm = scope["ndm"], scope["ocsvm"]
    assert round(ndm.score, 3) == 0.632  # the original netml learn's OCSVM AUC on these features
    assert ndm.history == {"score": ndm.score}
    assert printed.strip().endswith(str(ndm.score))
    from netml.utils.tool import load_data

    model, history = load_data(workdir / "out" / "OCSVM-results.dat")
    assert type(model).__name__ == "OCSVM" and model.name == "OCSVM" and model.nu == 0.5
    assert history == {"score": ndm.score}
    X = scope["X_test"]
    assert np.array_equal(model.decision_function(X), ocsvm.decision_function(X))


def test_model_snippet_with_a_netml_learn_model(parsed, workdir, run_cli):
    result = run_cli("learn", "--compat", f"--pcap={workdir / 'data/demo.pcap'}",
                     f"--label={workdir / 'data/demo.csv'}", f"--output={workdir / 'model.dat'}")
    assert result.exit_code == 0, result.stderr
    scope, _ = _run(SNIPPET_MODEL, workdir, dict(parsed[0]))
    model, history = scope["model"], scope["train_history"]
    predicted = model.predict(scope["pcap"].features)
    assert predicted.shape == (88,) and set(np.unique(predicted)) <= {0, 1}
    scores = model.decision_function(scope["pcap"].features)
    assert np.array_equal(predicted, (scores > model.pipeline.threshold).astype(int))
    assert history["roc_auc"] == history["score"] and history["algorithm"] == "ocsvm"
    # given the capture itself, the model extracts rows in its own training feature space
    assert len(model.predict(workdir / "data" / "demo.pcap")) == 196
    with pytest.raises(NetmlError, match="trained on 71"):
        model.predict(np.zeros((3, 12)))
    from netml.utils.tool import dump_data, load_data

    dump_data((model, history), out_file=workdir / "out" / "again.dat")  # a loaded model re-saves safely
    model2, history2 = load_data(workdir / "out" / "again.dat")
    assert history2 == history
    assert np.array_equal(model2.decision_function(scope["pcap"].features), scores)


@pytest.mark.parametrize("config,feat_type,fft,header", [
    ("IAT", "IAT", False, False), ("SIZE", "SIZE", False, False), ("IAT_SIZE", "IAT_SIZE", False, False),
    ("STATS", "STATS", False, False), ("SAMP_NUM", "SAMP_NUM", False, False),
    ("SAMP_SIZE", "SAMP_SIZE", False, False), ("FFT-IAT", "FFT-IAT", True, False),
    ("IAT_header", "IAT", False, True),
])
def test_every_feature_type_matches_the_original(parsed, config, feat_type, fft, header):
    ref = np.load(_need(REF / f"{config}_features.npy"))
    pcap = parsed[0]["pcap"]
    pcap.flow2features(feat_type, fft=fft, header=header)
    assert pcap.features.shape == ref.shape
    close = np.isclose(pcap.features, ref, rtol=0, atol=5e-7).all(axis=1)
    if config in ("SIZE", "IAT_SIZE", "STATS", "SAMP_SIZE"):
        # true wire lengths: only the 10 flows holding a packet scapy re-encoded differ
        assert int((~close).sum()) == 10
    else:
        assert close.all()
    assert pcap.labels.tolist() == np.load(REF / f"{config}_labels.npy").tolist()


@pytest.fixture(scope="module")
def scapy_sized(workdir):
    from netml.pparser.parser import PCAP

    pcap = PCAP(str(workdir / "data" / "demo.pcap"), flow_ptks_thres=2, random_state=42, sizes="scapy")
    pcap.pcap2flows(q_interval=0.9)
    pcap.label_flows(label_file=str(workdir / "data" / "demo.csv"))
    return pcap


@pytest.mark.parametrize("config", ["SIZE", "IAT_SIZE", "STATS", "SAMP_SIZE"])
def test_scapy_sizes_reproduce_size_features_exactly(scapy_sized, config):
    scapy_sized.flow2features(config)
    np.testing.assert_allclose(scapy_sized.features, np.load(REF / f"{config}_features.npy"), rtol=0, atol=5e-7)


@pytest.mark.parametrize("module,cls,kwargs,auc", [
    ("kde", "KDE", {}, 0.656), ("gmm", "GMM", {}, 0.568), ("pca", "PCA", {}, 0.616),
    ("iforest", "IF", {}, None), ("ae", "AE", {"epochs": 5}, None),
])
def test_other_detectors(module, cls, kwargs, auc):
    import importlib

    from sklearn.model_selection import train_test_split

    from netml.ndm.model import MODEL

    X, y = np.load(REF / "IAT_features.npy"), np.load(REF / "IAT_labels.npy")
    X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.33, random_state=42)
    det = getattr(importlib.import_module(f"netml.ndm.{module}"), cls)(**kwargs)
    ndm = MODEL(det, score_metric="auc")
    ndm.train(X_train)
    ndm.test(X_test, y_test)
    if auc is not None:
        assert round(ndm.score, 3) == auc  # the original netml's figure
    else:
        assert 0.0 <= ndm.score <= 1.0
    again = getattr(importlib.import_module(f"netml.ndm.{module}"), cls)(**kwargs).fit(X_train)
    assert np.allclose(again.decision_function(X_test), det.decision_function(X_test))  # seeded
    assert set(np.unique(det.predict(X_test))) <= {0, 1}
    assert isinstance(ndm.train.tot_time, float) and isinstance(ndm.test.tot_time, float)


def test_feature_type_and_order_errors(workdir):
    from netml.pparser.parser import PCAP

    pcap = PCAP(str(workdir / "data" / "demo.pcap"))
    with pytest.raises(NetmlError, match="pcap2flows"):
        pcap.flow2features("IAT")
    with pytest.raises(ValueError, match="q_interval"):
        pcap.pcap2flows(q_interval=0)
    pcap.pcap2flows()
    with pytest.raises(ValueError, match="feat_type"):
        pcap.flow2features("BYTES")
    with pytest.raises(NetmlError):
        PCAP(str(workdir / "nothing.pcap")).pcap2flows()


def test_original_cli_style_file_objects(workdir):
    """netml 0.x's CLI handed PCAP and label_flows open files (argparse FileType)."""
    from netml.pparser.parser import PCAP

    with open(workdir / "data" / "demo.pcap", "rb") as pcap_fh, open(workdir / "data" / "demo.csv") as csv_fh:
        pcap = PCAP(pcap_fh, flow_ptks_thres=2, verbose=3, random_state=42)
        pcap.pcap2flows(q_interval=0.9)
        pcap.label_flows(label_file=csv_fh)
        pcap.flow2features("IAT", fft=False, header=False)
    np.testing.assert_allclose(pcap.features, np.load(REF / "IAT_features.npy"), rtol=0, atol=5e-7)


def test_label_with_constant(workdir):
    from netml.pparser.parser import PCAP

    pcap = PCAP(str(workdir / "data" / "demo.pcap"))
    pcap.pcap2flows(q_interval=0.9)
    pcap.label_flows(label=1)
    assert len(pcap.labels) == len(pcap.flows) == 196 and pcap.labels.sum() == 196


def test_pcap2pandas_one_row_per_frame(workdir):
    from scapy.all import IP, TCP, UDP, PcapNgReader

    from netml.pparser.parser import PCAP

    pcap = PCAP(str(workdir / "data" / "demo.pcap"))
    pcap.pcap2pandas()
    df = pcap.df
    assert df.shape == (6000, 19)
    assert list(df.columns) == sorted(df.columns)
    assert {"time", "datetime", "length", "mac_src", "ip_dst_int", "is_dns", "dns_query", "time_normed"} <= set(df.columns)
    assert df["protocol"].value_counts().to_dict() == {"TCP": 3386, "UDP": 2598}
    assert isinstance(pcap.pcap2pandas.tot_time, float)
    with PcapNgReader(str(workdir / "data" / "demo.pcap")) as rd:
        for i, pkt in zip(range(400), rd):
            row = df.iloc[i]
            assert row["time"] == pytest.approx(float(pkt.time), abs=1e-6)
            assert row["mac_src"] == pkt.src
            if IP in pkt:
                assert (row["ip_src"], row["ip_dst"]) == (pkt[IP].src, pkt[IP].dst)
            for layer in (TCP, UDP):
                if layer in pkt:
                    assert (row["port_src"], row["port_dst"]) == (pkt[layer].sport, pkt[layer].dport)


# -- dump_data / load_data ----------------------------------------------------------------------

def test_round_trip_of_what_netml_produces(tmp_path):
    from netml.utils.tool import dump_data, load_data

    data = (np.arange(6.0).reshape(2, 3), np.array([0, 1]), {"score": 0.5, "names": ["a", "b"], "none": None},
            [1, 2.5, "x", True])
    dump_data(data, out_file=tmp_path / "nested" / "d.dat")  # folder created as the original did
    got = load_data(tmp_path / "nested" / "d.dat")
    assert isinstance(got, tuple) and len(got) == 4
    assert np.array_equal(got[0], data[0]) and got[0].dtype == np.float64
    assert got[1].tolist() == [0, 1] and got[2] == data[2] and got[3] == data[3]
    buf = io.BytesIO()
    dump_data(data, out_file=buf)  # file objects, as the original CLI passed
    buf.seek(0)
    assert np.array_equal(load_data(buf)[0], data[0])


def test_unsupported_objects_are_refused(tmp_path):
    from netml.utils.tool import dump_data

    with pytest.raises(NetmlError, match="cannot store"):
        dump_data((np.zeros(2), object()), out_file=tmp_path / "x.dat")
    assert not (tmp_path / "x.dat").exists()


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('NETML_BOOM', '/nonexistent/boom')}",))


def test_legacy_pickle_needs_allow_pickle(tmp_path, monkeypatch):
    from netml.utils.tool import PickleWarning, UnsafeFileError, load_data

    legacy = tmp_path / "IAT-features.dat"
    legacy.write_bytes(pickle.dumps((np.ones((2, 3)), np.array([0, 1]))))
    with pytest.raises(UnsafeFileError, match="allow_pickle=True"):
        load_data(legacy)
    with pytest.warns(PickleWarning, match="arbitrary code"):
        features, labels = load_data(legacy, allow_pickle=True)
    assert features.shape == (2, 3) and labels.tolist() == [0, 1]
    marker = tmp_path / "boom"
    monkeypatch.setenv("NETML_BOOM", str(marker))
    evil = tmp_path / "evil.dat"
    evil.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(UnsafeFileError):
        load_data(evil)
    assert not marker.exists()  # refused without running the payload


def test_features_file_of_learn_extract(workdir, run_cli, tmp_path):
    from netml.utils.tool import load_data

    out = tmp_path / "IAT-features.dat"
    result = run_cli("learn", "extract", "--compat", f"--pcap={workdir / 'data/demo.pcap'}",
                     f"--label={workdir / 'data/demo.csv'}", f"--feature={out}")
    assert result.exit_code == 0, result.stderr
    features, labels = load_data(out)
    assert features.shape == (88, 71) and labels.tolist() == np.load(REF / "IAT_labels.npy").tolist()


def test_not_a_data_file(tmp_path):
    from netml.utils.tool import load_data

    bad = tmp_path / "x.dat"
    bad.write_text("hello")
    with pytest.raises(NetmlError, match="not a netml"):
        load_data(bad)
