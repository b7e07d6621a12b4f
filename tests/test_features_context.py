"""Host context: exact window statistics on hand-made flows, a brute-force oracle on random traffic,
causality, composition with any feature, model round trip through the CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from netml_core.errors import ParameterError
from netml_core.flowmeter import FlowMeterSplitter
from netml_core.packets import ip_to_words
from netml_core.registry import get_registry
from netml_features_context.windows import context_names, flow_context

from helpers import cli, packet_table

S, A, R = 0x02, 0x10, 0x04
C, S1, S2, S3 = "10.0.0.9", "10.0.0.1", "10.0.0.2", "10.0.0.3"


def _pt(rows):
    return packet_table(rows)


SMALL = [
    (0.0, C, 1000, S1, 22, 6, S),  # probe, unanswered
    (0.5, C, 1001, S1, 23, 6, S), (0.6, S1, 23, C, 1001, 6, R | A),  # probe, refused
    (2.0, C, 1002, S2, 22, 6, S),  # probe to a second host
    (30.0, C, 5000, S3, 53, 17, 0), (30.1, S3, 53, C, 5000, 17, 0),  # answered DNS
]


def test_exact_values_on_a_small_scan():
    flows = FlowMeterSplitter().split(_pt(SMALL))
    X = flow_context(flows, [1.0, 10.0], 8, log=False)
    got = dict(zip(context_names([1.0, 10.0]), X.T.tolist()))
    assert got["src_flows_1s"] == [1, 2, 1, 1]
    assert got["src_flows_10s"] == [1, 2, 3, 1]  # the DNS flow at 30 s sees none of the probes
    assert got["src_new_dsts_10s"] == [1, 1, 2, 1]  # 10.0.0.1 twice within 10 s counts once
    assert got["src_new_dports_10s"] == [1, 2, 2, 1]  # port 22 again at 2 s is not new
    assert got["src_unanswered_1s"] == [1.0, 0.5, 1.0, 0.0]
    assert got["src_unanswered_10s"][2] == pytest.approx(2 / 3)
    assert got["src_pkts_10s"] == [1, 3, 4, 2] and got["src_bytes_10s"] == [60, 180, 240, 120]
    assert got["dst_flows_10s"] == [1, 2, 1, 1] and got["dst_unanswered_1s"] == [1.0, 0.5, 1.0, 0.0]
    assert got["pair_flows_10s"] == [1, 2, 1, 1]
    assert got["pair_gaps"] == [0, 1, 0, 0] and got["pair_gap_mean"] == [0, 0.5, 0, 0]
    logged = flow_context(flows, [1.0, 10.0], 8, log=True)
    names = context_names([1.0, 10.0])
    i = names.index("src_flows_10s")
    assert logged[:, i].tolist() == pytest.approx(np.log1p([1, 2, 3, 1]).tolist())
    j = names.index("src_unanswered_10s")
    assert logged[:, j].tolist() == X[:, j].tolist()  # shares are not logged


def test_a_beacon_is_regular_and_a_person_is_not():
    beacon = [(60.0 * k, C, 40000 + k, S1, 443, 6, S) for k in range(10)]
    person = [(t, C, 41000 + k, S2, 443, 6, S) for k, t in enumerate([0, 3, 70, 75, 200, 420, 430, 600])]
    flows = FlowMeterSplitter().split(_pt(beacon + person))
    X = flow_context(flows, [60.0], 8, log=False)
    names = context_names([60.0])
    cv = X[:, names.index("pair_gap_cv")]
    gaps = X[:, names.index("pair_gaps")]
    is_beacon = flows.dst[:, 1] == ip_to_words([S1])[0][1]
    assert cv[is_beacon].max() == pytest.approx(0.0, abs=1e-9) and gaps[is_beacon].max() == 8
    assert X[is_beacon, names.index("pair_gap_mean")].max() == pytest.approx(60.0)
    assert cv[~is_beacon].max() > 0.8
    # a gap longer than max_gap starts the series anew: calls a minute apart make no series at 50 s
    X = flow_context(flows, [60.0], 8, log=False, max_gap=50.0)
    assert X[is_beacon, names.index("pair_gaps")].max() == 0


def _oracle(flows, w):
    """Brute force over every pair of flows (distinct start times): the source's flows in
    (t - w, t], and how many of them had no flow to the same destination in the w before them."""
    t = flows.packets.ts_ns[flows.order[flows.offsets[:-1]]] / 1e9
    src = [tuple(r) for r in flows.src.tolist()]
    dst = [tuple(r) for r in flows.dst.tolist()]
    n = len(t)
    count, new = np.zeros(n), np.zeros(n)
    for i in range(n):
        for j in range(n):
            if src[j] == src[i] and t[i] - w < t[j] <= t[i]:
                count[i] += 1
                new[i] += not any(src[k] == src[j] and dst[k] == dst[j] and t[j] - w < t[k] < t[j]
                                  for k in range(n))
    return count, new


@pytest.mark.parametrize("seed", range(3))
def test_matches_brute_force_on_random_flows(seed):
    rng = np.random.default_rng(seed)
    rows = []
    hosts = [f"10.1.0.{k}" for k in range(5)]
    t = np.cumsum(rng.choice([0.013, 0.4, 2.5, 9.0], size=300))
    for k in range(300):
        a, b = rng.choice(5, 2, replace=False)
        rows.append((float(t[k]), hosts[a], 2000 + k, hosts[b], int(rng.choice([22, 80, 443])), 17, 0))
    flows = FlowMeterSplitter().split(_pt(rows))
    assert len(flows) == 300
    for w in (1.0, 5.0, 30.0):
        X = flow_context(flows, [w], 8, log=False)
        names = context_names([w])
        count, new = _oracle(flows, w)
        assert X[:, names.index(f"src_flows_{w:g}s")].tolist() == count.tolist()
        assert X[:, names.index(f"src_new_dsts_{w:g}s")].tolist() == new.tolist()


def test_context_is_causal():
    flows_all = FlowMeterSplitter().split(_pt(SMALL))
    flows_early = FlowMeterSplitter().split(_pt(SMALL[:3]))  # the capture as it was at 0.6 s
    a = flow_context(flows_all, [1.0, 10.0, 60.0], 8)
    b = flow_context(flows_early, [1.0, 10.0, 60.0], 8)
    np.testing.assert_array_equal(a[:2], b)


def test_empty_and_one_packet_flows_are_finite():
    assert flow_context(FlowMeterSplitter().split(_pt([])), [1.0], 8).shape == (0, len(context_names([1.0])))
    X = flow_context(FlowMeterSplitter().split(_pt(SMALL[:1])), [1.0, 10.0, 60.0], 8)
    assert np.isfinite(X).all() and X.shape == (1, 33)


def test_composes_with_any_feature_and_round_trips_its_state():
    reg = get_registry()
    flows = FlowMeterSplitter().split(_pt(SMALL))
    for base, params, width in (("flowstats", {"first_n": 2}, 32), ("stats", None, 12)):
        feat = reg.create("feature", "context", {"base": base, "base_params": params}).fit(flows)
        X = feat.transform(flows)
        assert X.shape == (4, width + 33) and feat.feature_names()[width] == "src_flows_1s"
        again = reg.create("feature", "context", {"base": base, "base_params": params}).set_state(feat.get_state())
        np.testing.assert_array_equal(again.transform(flows), X)


@pytest.mark.parametrize("params, message", [
    ({"base": "context"}, "'base' must name another feature"),
    ({"windows": []}, "'windows' must be 1 to 6"), ({"windows": [0]}, "'windows'"),
    ({"windows": [1e9]}, "'windows'"), ({"windows": "10"}, "'windows'"),
    ({"max_gaps": 0}, "'max_gaps'"), ({"base_params": 3}, "'base_params' must be a mapping"),
])
def test_bad_parameters_are_one_line(params, message):
    with pytest.raises(ParameterError, match=message):
        get_registry().create("feature", "context", params)


def test_learn_context_then_classify_the_same_scores(tmp_path):
    from helpers import demo_data

    data = demo_data()
    code, out, err = cli("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--context",
                         "--feature-param", "{first_n: 4}", "-o", tmp_path / "m.netml", "--report", tmp_path / "r")
    assert code == 0, err
    assert "feature=flowstats+context" in out and "extracted 91 flows x 67 values" in out
    with zipfile.ZipFile(tmp_path / "m.netml") as zf:
        feat = json.loads(zf.read("manifest.json"))["components"]["feature"]
    assert feat["name"] == "context" and feat["params"]["base"] == "flowstats"
    assert feat["params"]["base_params"] == {"first_n": 4} and feat["state"]["n_features_"] == 67
    code, out, err = cli("classify", "-m", tmp_path / "m.netml", "-p", data / "demo.pcap", "--report-all",
                         "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 199 and all(np.isfinite(r["score"]) for r in rows)


def test_context_chooses_knn_unless_an_algorithm_is_named(tmp_path):
    """With --context the default detector is knn, also for `learn train` on a context features file;
    a named --algorithm wins, and per-flow features keep gmm."""
    from helpers import demo_data

    data = demo_data()
    common = ["-p", data / "demo.pcap", "-l", data / "demo.csv"]
    code, out, err = cli("learn", *common, "--context", "-o", tmp_path / "a.netml")
    assert code == 0 and "algorithm=knn" in out, err
    code, out, err = cli("learn", *common, "--context", "--algorithm", "gmm", "-o", tmp_path / "b.netml")
    assert code == 0 and "algorithm=gmm" in out, err
    code, out, err = cli("learn", "extract", *common, "--context", "--feature-file", tmp_path / "ctx.npz")
    assert code == 0, err
    code, out, err = cli("learn", "train", "--feature-file", tmp_path / "ctx.npz", "-o", tmp_path / "c.netml")
    assert code == 0 and "algorithm=knn" in out, err
    code, out, err = cli("learn", "extract", *common, "--feature-file", tmp_path / "flow.npz")
    assert code == 0, err
    code, out, err = cli("learn", "train", "--feature-file", tmp_path / "flow.npz", "-o", tmp_path / "d.netml")
    assert code == 0 and "algorithm=gmm" in out, err


# -- streaming: rows given as flows end are the whole capture's rows ------------------------------------
def _stream_rows(feature, packets, size):
    """Run the flow meter and the context stream batch by batch; (key -> row) of every flow given."""
    from netml_core.flowmeter import FlowMeterSplitter

    state = FlowMeterSplitter().stream()
    ctx = feature.stream(state.splitter)
    out, given = {}, []
    for lo in range(0, len(packets), size):
        ended = state.push(packets.take(np.arange(lo, min(lo + size, len(packets)))))
        before = state.complete_before_ns
        given.append(ctx.push(ended, before))
    given.append(ctx.finish(state.flush()))
    for flows, X in given:
        out.update(_rows_by_key(flows, X))
    return out, ctx


def _rows_by_key(flows, X):
    t = flows.first_ts
    return {(float(t[i]), int(flows.sport[i]), int(flows.dport[i]), tuple(flows.src[i].tolist()),
             tuple(flows.dst[i].tolist())): X[i].tobytes() for i in range(len(flows))}


@pytest.mark.parametrize("params, sizes", [({"max_gaps": 3}, (7, 1000, 100_000)),
                                           ({"max_gaps": 3, "max_gap": 5.0, "windows": [2.0, 30.0]}, (333,))])
def test_streamed_context_is_the_whole_capture_context(tmp_path, params, sizes):
    """The demo's scan, flood and beacons (context at 1, 10, 60 s and beacon gaps), fed as flows end,
    give bit for bit the rows of the whole capture, for any batch size."""
    from netml_core.demo import make_demo
    from netml_core.readers.native import NativeReader

    make_demo(tmp_path, seed=5)
    packets = NativeReader().read(tmp_path / "demo.pcap")
    flows = FlowMeterSplitter().split(packets)
    feature = get_registry().create("feature", "context", params).fit(flows)
    whole = _rows_by_key(flows, feature.transform(flows))
    for size in sizes:
        got, ctx = _stream_rows(feature, packets, size)
        assert got == whole, size
        assert len(got) == len(flows)
        # what it keeps: summaries of recent flows and of each pair's last 3, not every flow
        assert ctx.waiting_flows == 0 and len(ctx.history or ()) == 0
    got, ctx = _stream_rows(feature, packets.take(np.arange(len(packets) // 2)), 1000)
    assert len(ctx.history or ()) == 0


def test_streamed_context_keeps_only_recent_flows_and_each_pairs_last_gaps():
    from netml_core.flowmeter import FlowMeterSplitter as Meter

    # one host polls a server every 30 s for an hour, another calls a new address every second
    poll = [(30.0 * k, C, 40000 + k, S1, 443, 6, S) for k in range(120)]
    sweep = [(1.0 * k, "10.0.0.8", 50000 + k, f"10.1.{k // 250}.{k % 250 + 1}", 23, 6, S) for k in range(3600)]
    packets = _pt(sorted(poll + sweep))
    flows = Meter().split(packets)
    feature = get_registry().create("feature", "context", {"windows": [10.0], "max_gaps": 4, "max_gap": 60.0}).fit(flows)
    state = Meter().stream()
    ctx = feature.stream(state.splitter)
    sizes = []
    for lo in range(0, len(packets), 500):
        ended = state.push(packets.take(np.arange(lo, min(lo + 500, len(packets)))))
        before = state.complete_before_ns
        ctx.push(ended, before)
        sizes.append(len(ctx.history or ()))
    # the sweep's pairs are each 1 flow, kept while within max_gap (60 s); the poll keeps its last 4
    assert max(sizes) < 200, sizes
    poll_kept = np.count_nonzero(ctx.history.src[:, 1] == ip_to_words([C])[0][1])
    assert poll_kept == 4
    assert feature.stream(Meter(direction="uni")) is None


def test_training_context_counts_the_unlabelled_flows_too(tmp_path):
    """Unlabelled flows are not trained on, but they are traffic: a labelled flow's context in
    training counts them, as classify will on the same capture."""
    from netml_core.demo import make_demo
    from netml_core.labels import CsvLabels
    from netml_core.pipeline import Pipeline

    make_demo(tmp_path, seed=9)
    lines = (tmp_path / "demo.csv").read_text().splitlines()
    (tmp_path / "half.csv").write_text("\n".join(lines[:1] + lines[1::2]) + "\n")  # every other row
    pipe = Pipeline(feature="context", detector=None)
    ex = pipe.fit_extract([str(tmp_path / "demo.pcap")], [CsvLabels(str(tmp_path / "half.csv"))])
    assert ex.counts["unlabelled_dropped"] > 100
    train = _rows_by_key(ex.flows, ex.X)
    whole = _rows_by_key(*(lambda e: (e.flows, e.X))(pipe.extract(str(tmp_path / "demo.pcap"))))
    assert len(train) == len(ex.X) and all(whole[k] == row for k, row in train.items())


@pytest.mark.parametrize("batch", [333, 65_536])
def test_training_with_context_streams_the_whole_capture_rows(tmp_path, batch):
    """learn reads captures batch by batch with context too: rows, labels and order equal the
    whole-capture path, for two captures (each its own context) with labels."""
    from netml_core.demo import make_demo
    from netml_core.labels import CsvLabels
    from netml_core.pipeline import Pipeline

    for seed in (9, 10):
        make_demo(tmp_path / str(seed), seed=seed)
    caps = [str(tmp_path / str(s) / "demo.pcap") for s in (9, 10)]
    labels = lambda: [CsvLabels(str(tmp_path / str(s) / "demo.csv")) for s in (9, 10)]  # noqa: E731
    whole = Pipeline(feature="context", detector=None).fit_extract(caps, labels())
    pipe = Pipeline(feature="context", detector=None)
    assert pipe.can_stream_fit()
    streamed = pipe.fit_extract(caps, labels(), stream=True, batch_packets=batch)
    assert type(streamed.flows).__name__ == "FlowKeys"  # packets were not kept
    assert np.array_equal(streamed.X, whole.X) and np.array_equal(streamed.y, whole.y)
    assert np.array_equal(streamed.capture, whole.capture)
    assert np.array_equal(streamed.flows.first_ts, whole.flows.first_ts)
