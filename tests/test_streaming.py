"""Classifying as a stream: flows scored as they end give the whole-capture flows, rows and scores,
bit for bit, whatever the batch size; the CLI streams when the pipeline allows it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netml_core.pipeline import Pipeline

from helpers import SHARED, cli, need

EVAL = SHARED / "data" / "evalset-dev" / "files"


def _keyed(results):
    """(first packet ns, ports, src, dst) -> (feature row, score) over a list of Classified."""
    out = {}
    for res in results:
        f = res.flows  # a FlowTable, or FlowKeys for flows that waited for their host context
        t = f.first_ts
        for i in range(len(f)):
            key = (float(t[i]), int(f.sport[i]), int(f.dport[i]), tuple(f.src[i].tolist()), tuple(f.dst[i].tolist()))
            assert key not in out
            out[key] = (res.X[i].tobytes(), float(res.scores[i]))
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "m.netml"
    train = [need(EVAL / "DNS-Tunnel-Datasets__normal_00000_20230805150331.pcap")]
    pipe = Pipeline()
    ex = pipe.fit_extract([str(p) for p in train])
    pipe.fit_detector(ex.X, fpr=0.01, random_state=42)
    pipe.save(path)
    return path


@pytest.mark.parametrize("name, sizes, early", [
    ("DNS-Tunnel-Datasets__dnscat2-cname_00001_20230903170247.pcap", (7, 1000), True),
    ("blend__demo+masscan-udp_test.pcap", (1, 64, 1000), False),  # 3 minutes: most flows end with the input
])
def test_stream_equals_whole_capture_bit_for_bit(model, name, sizes, early):
    pipe, _ = Pipeline.load(model)
    assert pipe.can_stream()
    capture = str(need(EVAL / name))
    whole = _keyed([pipe.classify(capture)])
    for size in sizes:
        stats: dict = {}
        streamed = list(pipe.classify_stream(capture, max_packets=size, stats=stats))
        assert _keyed(streamed) == whole, size
        assert stats["packets"] == len(pipe.read(capture))
        if early:  # a 20-minute tunnel: its 2-minute windows come out as they end, not at the end of input
            assert sum(len(r.flows) > 0 for r in streamed[:-1]) >= 2


def test_which_pipelines_stream():
    assert Pipeline(feature="context").can_stream()  # two-way flows: context waits for earlier flows
    assert not Pipeline(feature="context", flow_splitter_params={"direction": "uni"}).can_stream()
    assert not Pipeline(flow_splitter="netml", feature="context").can_stream()
    assert Pipeline(flow_splitter="netml", feature="iat").can_stream()
    assert Pipeline(feature="stats").can_stream()


def test_a_context_model_streams_the_whole_capture_rows_and_scores(tmp_path):
    """Host context streams too: a flow is scored once every flow that started before it has ended,
    with the row and score of the whole capture, bit for bit, for any batch size."""
    from netml_core.demo import make_demo

    make_demo(tmp_path / "a", seed=3)
    make_demo(tmp_path / "b", seed=4)
    pipe = Pipeline(feature="context", detector="knn")
    ex = pipe.fit_extract([str(tmp_path / "a" / "demo.pcap")])
    pipe.fit_detector(ex.X, fpr=0.01, random_state=42)
    capture = str(tmp_path / "b" / "demo.pcap")
    whole = _keyed([pipe.classify(capture)])
    for size in (500, 65_536):
        streamed = list(pipe.classify_stream(capture, max_packets=size))
        assert _keyed(streamed) == whole, size
        if size == 500:  # verdicts come out along the capture, not all at the end
            assert sum(len(r.flows) > 0 for r in streamed[:-1]) >= 10


def test_cli_classify_streams_the_same_verdicts(model):
    capture = need(EVAL / "DNS-Tunnel-Datasets__dnscat2-cname_00001_20230903170247.pcap")
    code, out, err = cli("classify", "-m", model, "-p", capture, "--report-all", "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    pipe, _ = Pipeline.load(model)
    whole = pipe.classify(str(capture))
    assert len(rows) == len(whole.flows) == int(err.split()[2])
    assert sorted(r["score"] for r in rows) == sorted(whole.scores.tolist())
    assert sum(r["anomaly"] for r in rows) == int(whole.anomalous.sum())


def test_netml_0x_pipeline_streams_the_same_rows(tmp_path):
    demo = need(SHARED / "data" / "netml-demo" / "demo.pcap")
    pipe = Pipeline(flow_splitter="netml", feature="iat", detector="ocsvm")
    ex = pipe.fit_extract([str(demo)])
    pipe.fit_detector(ex.X)
    other = str(need(SHARED / "data" / "netml-demo" / "srcIP_10.42.0.119_anomaly.pcap"))
    whole = _keyed([pipe.classify(other)])
    for size in (7, 1000):
        streamed = _keyed(list(pipe.classify_stream(other, max_packets=size)))
        assert streamed.keys() == whole.keys() and len(whole) > 50
        for key, (row, score) in whole.items():
            assert streamed[key][0] == row  # the feature row, bit for bit
            assert streamed[key][1] == pytest.approx(score, rel=1e-12, abs=1e-12)  # libsvm's BLAS may differ in ulps


def test_cli_max_open_flows_is_counted_on_stderr(model):
    capture = need(EVAL / "blend__demo+masscan-udp_test.pcap")
    code, out, err = cli("classify", "-m", model, "-p", capture, "--max-open-flows", "5")
    assert code == 0, err
    summary = err.splitlines()[-1]
    assert summary.startswith("netml classify: ") and " ended early by --max-open-flows " in summary
    code, _, err = cli("classify", "-m", model, "-p", capture, "--max-open-flows", "5", "--group", "host")
    assert code == 2 and "--max-open-flows applies when flows are streamed" in err


def test_an_interrupted_stream_scores_its_open_flows(model):
    pipe, _ = Pipeline.load(model)
    capture = str(need(EVAL / "DNS-Tunnel-Datasets__dnscat2-cname_00001_20230903170247.pcap"))
    stats: dict = {}
    stream = pipe.classify_stream(capture, max_packets=500, stats=stats)
    it = iter(stream)
    seen = [next(it) for _ in range(3)]  # 1,500 packets read, then Ctrl-C
    rest = stream.finish()
    assert list(it) == [] and stats["packets"] == 1500
    n_seen = sum(len(r.flows) for r in seen)
    assert len(rest.flows) >= 1 and np.isfinite(rest.scores).all()
    # every packet read so far is in exactly one scored flow
    assert sum(int(r.flows.n_pkts.sum()) for r in [*seen, rest]) == 1500 and n_seen + len(rest.flows) >= 2


@pytest.mark.parametrize("labelled, size", [(False, 7), (False, 1000), (True, 1000), (True, 65536)])
def test_streamed_training_gives_the_whole_capture_rows_and_model(labelled, size):
    """learn reads captures batch by batch (meter + flowstats learn nothing from the data): rows,
    their order, labels, captures, counts and the fitted model are those of the whole-capture path."""
    from netml_core.labels import CsvLabels, ConstantLabels

    if labelled:
        demo = need(SHARED / "data" / "netml-demo")
        sources = [str(demo / "demo.pcap"), str(demo / "srcIP_10.42.0.119_anomaly.pcap")]
        labels = [CsvLabels(demo / "demo.csv"), ConstantLabels(1)]
    else:
        sources = [str(need(EVAL / n)) for n in ("DNS-Tunnel-Datasets__normal_00000_20230805150331.pcap",
                                                 "blend__demo+masscan-udp_test.pcap")]
        labels = None
    whole_pipe, pipe = Pipeline(), Pipeline()
    whole = whole_pipe.fit_extract(sources, labels)
    streamed = pipe.fit_extract(sources, labels, stream=True, batch_packets=size)
    assert pipe.can_stream_fit()
    assert np.array_equal(streamed.X, whole.X) and len(whole.X) > 300
    assert streamed.counts == whole.counts
    assert np.array_equal(streamed.capture, whole.capture)
    assert (streamed.y is None) == (not labelled) and (not labelled or np.array_equal(streamed.y, whole.y))
    for k in ("src", "dst", "sport", "dport", "proto", "first_ts", "last_ts", "n_pkts"):
        assert np.array_equal(getattr(streamed.flows, k), getattr(whole.flows, k)), k
    for p, ex in ((whole_pipe, whole), (pipe, streamed)):
        p.fit_detector(ex.X, fpr=0.01, random_state=42)
    other = str(need(EVAL / "blend__demo+masscan-tcp_test.pcap"))
    assert np.array_equal(pipe.classify(other).scores, whole_pipe.classify(other).scores)
    assert pipe.records()["feature"].state == whole_pipe.records()["feature"].state


def test_pipelines_that_learn_from_the_data_train_on_whole_captures():
    assert not Pipeline(flow_splitter="netml", feature="iat").can_stream_fit()  # interval, width
    assert not Pipeline(feature="iat").can_stream_fit()  # the series width is a quantile over flows
    assert not Pipeline(feature="context", feature_params={"base": "iat"}).can_stream_fit()  # its base's width
    assert Pipeline(feature="context").can_stream_fit()  # flowstats learns nothing; context waits for flows


def test_cli_learn_extract_writes_the_whole_capture_rows(tmp_path):
    from netml_core.features_file import read_features

    capture = need(EVAL / "DNS-Tunnel-Datasets__normal_00000_20230805150331.pcap")
    code, _, err = cli("learn", "extract", "-p", capture, "--feature-file", tmp_path / "f.npz")
    assert code == 0, err
    got = read_features(tmp_path / "f.npz")
    whole = Pipeline().fit_extract([str(capture)])
    assert np.array_equal(got.features, whole.X) and np.array_equal(got.first_ts, whole.flows.first_ts)


def test_cli_warns_when_a_streamed_capture_is_not_in_time_order(model):
    shuffled = need(EVAL / "DNS-Tunnel-Datasets__normal_00000_20230805150331.pcap")  # 13,914 steps back in time
    code, _, err = cli("classify", "-m", model, "-p", shuffled)
    assert code == 0, err
    assert err.count("is not in time order") == 1
    ordered = need(EVAL / "DNS-Tunnel-Datasets__dnscat2-cname_00001_20230903170247.pcap")
    code, _, err = cli("classify", "-m", model, "-p", ordered)
    assert code == 0 and "not in time order" not in err
