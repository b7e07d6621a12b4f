"""netml evaluate: scenario files, TSV and bidirectional labels, missed units and coverage, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import SHARED, cli, need
from netml_core import evaluate as ev
from netml_core.errors import NetmlError
from netml_core.flowtable import FlowTable
from netml_core.labels import ConstantLabels, CsvLabels, FlowTsvLabels, LabelError
from netml_core.packets import PacketTable, ip_to_words
from netml_core.pipeline import Extracted

EVALSET = SHARED / "data" / "evalset-dev"
TSV_HEADER = "src\tsport\tdst\tdport\tproto\tlabel\n"


# -- hand-built packets and flows ---------------------------------------------------------------
def _packets(rows):
    """One packet per (src, sport, dst, dport, proto) row, 1 ms apart."""
    n = len(rows)
    return PacketTable(
        ts_ns=np.arange(n) * 1_000_000, wire_len=np.full(n, 60), ip_version=np.full(n, 4),
        proto=[r[4] for r in rows], src=ip_to_words([r[0] for r in rows]), dst=ip_to_words([r[2] for r in rows]),
        sport=[r[1] for r in rows], dport=[r[3] for r in rows], tcp_flags=np.zeros(n), ttl=np.full(n, 64))


def _flows(packets, groups, bidirectional):
    """A FlowTable whose flow i holds the packets ``groups[i]``; its key is its first packet's
    5-tuple. Bidirectional tables mark each packet 0 (sent by the key's src) or 1."""
    order = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups]) if groups else np.zeros(0, np.int64)
    offsets = np.r_[0, np.cumsum([len(g) for g in groups])].astype(np.int64)
    head = order[offsets[:-1]]
    direction = None
    if bidirectional:
        flow_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        same = np.all(packets.src[order] == packets.src[head][flow_of], axis=1) & \
            (packets.sport[order] == packets.sport[head][flow_of])
        direction = (~same).astype(np.uint8)
    return FlowTable(packets=packets, order=order, offsets=offsets, src=packets.src[head], dst=packets.dst[head],
                     sport=packets.sport[head], dport=packets.dport[head], proto=packets.proto[head],
                     ip_version=packets.ip_version[head], direction=direction)


A = ("10.0.0.1", 1000, "10.0.0.2", 80, 6)       # client -> server
A_REV = ("10.0.0.2", 80, "10.0.0.1", 1000, 6)   # its reply direction
B = ("10.0.0.1", 2000, "10.0.0.3", 53, 17)
B_REV = ("10.0.0.3", 53, "10.0.0.1", 2000, 17)
C = ("10.0.0.1", 3000, "10.0.0.4", 22, 6)       # in no label file
D = ("10.0.0.9", 4000, "10.0.0.2", 443, 6)


def _tsv(tmp_path, rows, name="labels.tsv"):
    path = tmp_path / name
    path.write_text(TSV_HEADER + "".join("\t".join(map(str, (r[0], r[1], r[2], r[3], r[4], lab))) + "\n"
                                         for r, lab in rows))
    return path


# -- FlowTsvLabels and bidirectional matching ---------------------------------------------------------
def test_tsv_labels_directional_flows(tmp_path):
    lab = FlowTsvLabels(_tsv(tmp_path, [(A, 1), (B_REV, 0), (D, 0), (D, 1)]))
    assert (lab.rows, lab.n_keys, lab.n_attack, lab.n_normal, lab.conflicts) == (4, 3, 2, 1, 1)
    p = _packets([A, A_REV, B, B_REV, C, D])
    flows = _flows(p, [[0], [1], [2], [3], [4], [5]], bidirectional=False)
    # directional: only the listed direction matches; D listed 0 then 1 is an attack
    assert lab.labels_for(flows).tolist() == [1, -1, -1, 0, -1, 1]


def test_tsv_and_csv_labels_bidirectional_flows(tmp_path):
    p = _packets([A, A_REV, B_REV, B, C, A_REV])
    # flow 0 starts with A and holds its reply; flow 1 starts with the reply of B; flow 2 is C;
    # flow 3 is a reply-only flow of A (its key is A_REV)
    flows = _flows(p, [[0, 1], [2, 3], [4], [5]], bidirectional=True)
    assert flows.direction.tolist() == [0, 1, 0, 1, 0, 0]
    tsv = FlowTsvLabels(_tsv(tmp_path, [(A, 1), (B, 0)]))
    # A's flows are attacks whichever direction comes first; B is found through its reverse key
    assert tsv.labels_for(flows).tolist() == [1, 0, -1, 1]
    both = FlowTsvLabels(_tsv(tmp_path, [(B, 0), (B_REV, 1)], "both.tsv"))
    assert both.labels_for(flows).tolist() == [-1, 1, -1, -1]  # the larger of the two known labels
    csv = tmp_path / "labels.csv"
    csv.write_text(" Source IP, Source Port, Destination IP, Destination Port, Protocol, Label\n"
                   "10.0.0.1,1000,10.0.0.2,80,6,DoS\n10.0.0.1,2000,10.0.0.3,53,17,BENIGN\n")
    assert CsvLabels(csv).labels_for(flows).tolist() == [1, 0, -1, 1]
    # the same table read as directional flows: keys only, as netml 0.x matched
    flows.direction = None
    assert CsvLabels(csv).labels_for(flows).tolist() == [1, -1, -1, -1]
    assert tsv.labels_for(flows).tolist() == [1, -1, -1, -1]


@pytest.mark.parametrize("content, words", [
    ("", "is empty"),
    ("src\tdst\tlabel\n1.2.3.4\t5.6.7.8\t1\n", "missing column(s) sport, dport, proto"),
    (TSV_HEADER, "has a header but no rows"),
    (TSV_HEADER + "1.2.3.4\t1\t5.6.7.8\t2\t6\n", "line 2: 5 field(s), expected 6"),
    (TSV_HEADER + "1.2.3.4\t1\t5.6.7.8\t2\t6\t0\n1.2.3.4\t70000\t5.6.7.8\t2\t6\t1\n",
     "line 3: sport must be an integer 0-65535, got '70000'"),
    (TSV_HEADER + "1.2.3.4\t1\t5.6.7.8\t2\t6\tBENIGN\n", "line 2: label must be 0 (normal) or 1 (attack)"),
    (TSV_HEADER + "host-a\t1\t5.6.7.8\t2\t6\t0\n", "line 2: src is not an IP address: 'host-a'"),
    (TSV_HEADER + "1.2.3.4\t1\t5.6.7.8\t2\t-6\t0\n", "proto must be an integer 0-255"),
    ("src\tsport\tdst\tdport\tproto\tlabel\x00\n", "not a TSV (binary content)"),
    (TSV_HEADER + "1.2.3.4\t1\t5.6.7.8\t2\t6\t0" + "\t" * 5000 + "\n", "has a line of 5023 characters (at most 4096)"),
])
def test_bad_tsv_files_are_one_line_errors(tmp_path, content, words):
    path = tmp_path / "labels.tsv"
    path.write_text(content)
    with pytest.raises(LabelError) as exc:
        FlowTsvLabels(path)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_tsv_that_is_not_a_file(tmp_path):
    with pytest.raises(LabelError, match="is not a regular file"):
        FlowTsvLabels(tmp_path)
    with pytest.raises(LabelError, match="cannot read label file"):
        FlowTsvLabels(tmp_path / "nope.tsv")


def test_evalset_tsv_counts():
    lab = FlowTsvLabels(need(EVALSET / "labels" / "blend__demo+masscan-udp_test.tsv"))
    assert (lab.rows, lab.n_keys, lab.n_normal, lab.n_attack, lab.conflicts) == (1112, 1112, 111, 1001, 0)


# -- missed units, coverage and metrics ----------------------------------------------------------------
def test_missed_units_and_coverage_by_hand(tmp_path):
    # packets: A x2 and its reply x1, B x1, B's reply x1, C x1 (unlabelled), D x2
    p = _packets([A, A_REV, A, B, B_REV, C, D, D])
    labels = FlowTsvLabels(_tsv(tmp_path, [(A, 0), (A_REV, 0), (B, 1), (B_REV, 1), (D, 1),
                                           (("10.9.9.9", 1, "10.9.9.8", 2, 6), 1)]))  # never in the packets
    index = ev.TupleIndex.of(p, labels)
    assert len(index.keys) == 6 and sorted(index.labels.tolist()) == [-1, 0, 0, 1, 1, 1]
    # the splitter kept one bidirectional flow of A (both directions) and a 1-packet flow of D;
    # it dropped B both ways, C, and D's second packet
    flows = _flows(p, [[0, 1, 2], [6]], bidirectional=True)
    hit = ev.covered(index, flows)
    assert int(hit.sum()) == 3  # A and A_REV through one flow, D through part of its packets
    units = ev.capture_units(Extracted(flows=flows, X=np.array([[1.0], [2.0]])), index, labels)
    assert units.y_flows.tolist() == [0, 1]
    assert units.y_missed.tolist() == [1, 1]        # B and B_REV: labelled, present, in no flow
    assert (units.n_tuples, units.n_covered) == (5, 3)  # C is unlabelled; the 10.9.9.9 row is absent
    # scores: A's flow 0.2, D's flow 0.9, threshold 0.5; missed attacks rank below everything
    m = ev.unit_metrics(np.array([0.2, 0.9]), units.y_flows, units.y_missed, 0.5)
    assert (m["n_normal"], m["n_attack"]) == (1, 3)
    assert m["roc_auc"] == pytest.approx(1 / 3)        # only D outranks the normal flow
    assert m["average_precision"] == pytest.approx(1 / 3 * 1 + 2 / 3 * 3 / 4)
    assert (m["recall"], m["fpr"], m["precision"]) == (pytest.approx(1 / 3), 0.0, 1.0)


def test_missed_units_rank_below_any_score_and_are_never_flagged():
    # real scores as low as -inf still outrank a missed unit; a threshold of -inf flags every flow
    m = ev.unit_metrics(np.array([-np.inf, 5.0]), np.array([1, 0]), np.array([0, 0]), -np.inf)
    assert m["roc_auc"] == pytest.approx(2 / 3)   # the attack beats both missed normals, loses to 5.0
    assert (m["recall"], m["fpr"], m["precision"]) == (0.0, pytest.approx(1 / 3), 0.0)
    m = ev.unit_metrics(np.zeros(0), np.zeros(0, np.int64), np.array([1, 0]), 0.0)
    assert m["roc_auc"] == 0.5 and m["recall"] == 0.0 and m["fpr"] == 0.0  # all tied at the bottom
    assert ev.unit_metrics(np.array([1.0]), np.array([0]), np.zeros(0, np.int64), 0.0)["roc_auc"] is None


def test_constant_labels_label_every_tuple():
    p = _packets([A, A_REV, C])
    index = ev.TupleIndex.of(p, ConstantLabels(1))
    assert index.labels.tolist() == [1, 1, 1]
    assert ev.covered(index, _flows(p, [[2]], bidirectional=False)).sum() == 1


# -- scenario files ------------------------------------------------------------------------------------
def _scenario_dir(tmp_path):
    (tmp_path / "files").mkdir(parents=True)
    for name in ("train.pcap", "normal.pcap", "attack.pcap"):
        (tmp_path / "files" / name).write_bytes(b"x")
    (tmp_path / "flows.tsv").write_text(TSV_HEADER + "1.2.3.4\t1\t5.6.7.8\t2\t6\t1\n")
    return tmp_path


GOOD = {"name": "s1", "train": ["train.pcap"], "test": ["normal.pcap", "attack.pcap"],
        "labels": {"train.pcap": "normal", "normal.pcap": "normal", "files/attack.pcap": "flows:flows.tsv"}}


def test_scenario_file_resolves_paths_yaml_and_json(tmp_path):
    folder = _scenario_dir(tmp_path)
    (folder / "s.json").write_text(json.dumps([GOOD]))
    (folder / "s.yaml").write_text("- name: s1\n  description: |\n    two\n    lines\n  train: [train.pcap]\n"
                                   "  test: [normal.pcap, attack.pcap]\n  labels: {normal.pcap: Attack, "
                                   "attack.pcap: 'flows: flows.tsv'}\n")
    (sc,) = ev.load_scenarios(folder / "s.json")
    assert sc.train == [str(folder / "files" / "train.pcap")]
    assert sc.labels == {str(folder / "files" / "normal.pcap"): ev.LabelSpec("normal"),
                         str(folder / "files" / "attack.pcap"): ev.LabelSpec("flows", str(folder / "flows.tsv"))}
    (sy,) = ev.load_scenarios(folder / "s.yaml")
    assert sy.description == "two lines" and sy.labels[sy.test[0]] == ev.LabelSpec("attack")
    assert sy.labels[sy.test[1]].path == str(folder / "flows.tsv")


def _with(**changes):
    sc = dict(GOOD, **changes)
    return [{k: v for k, v in sc.items() if v is not None}]


@pytest.mark.parametrize("data, words", [
    ({"name": "s"}, "must be a list of scenarios, got a mapping"),
    ([], "lists no scenario"),
    (["s1"], "scenario #1 must be a mapping"),
    (_with(tset=["x"]), "scenario 's1': unknown key 'tset'; known: name, description, train, test, labels"),
    (_with(test=None), "scenario 's1': missing key 'test'"),
    (_with(name=""), "name is empty"),
    (_with(name="a\tb"), "holds a control character"),
    (_with(train="train.pcap"), "train must be a list of captures, got a string"),
    (_with(train=[]), "train lists no capture"),
    (_with(train=[["train.pcap"]]), "train[0] must be a string, got a list"),
    (_with(train=["gone.pcap"]), "train[0]: gone.pcap: no such file (looked in"),
    (_with(test=["normal.pcap", "normal.pcap"]), "test lists normal.pcap twice"),
    (_with(labels={"train.pcap": "normal", "normal.pcap": "normal"}), "test capture attack.pcap has no label"),
    (_with(labels=dict(GOOD["labels"], **{"train.pcap": "attack"})), "training captures are all normal"),
    (_with(labels=dict(GOOD["labels"], **{"normal.pcap": "benign"})), "label must be 'normal', 'attack' or"),
    (_with(labels=dict(GOOD["labels"], **{"files/attack.pcap": "flows:nope.tsv"})), "nope.tsv: no such file"),
    (_with(labels=["normal"]), "labels must be a mapping capture -> label, got a list"),
    (_with(labels={**GOOD["labels"], "../s.json": "normal"}), "is neither a train nor a test capture"),
    (_with(labels={**GOOD["labels"], "files/normal.pcap": "attack"}), "normal.pcap is labelled twice"),
    (_with() + _with(), "two scenarios are named 's1'"),
])
def test_bad_scenario_files_are_one_line_errors(tmp_path, data, words):
    folder = _scenario_dir(tmp_path / "d")
    (folder / "s.json").write_text(json.dumps(data))
    with pytest.raises(NetmlError) as exc:
        ev.load_scenarios(folder / "s.json")
    assert words in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("name, content, words", [
    ("s.json", b'[{"name": "s1",}]', "is not valid JSON at line 1, column 16"),
    ("s.yaml", b"- name: [s1\n", "is not valid YAML at line 2"),
    ("s.json", b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ("s.yaml", b"- &a [*a]\n", "holds an anchor that contains itself"),  # refused before it is built
    ("s.yaml", b"a: &a [x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", "must be a list of scenarios"),
    ("s.json", b"\x00[]", "binary content"),
    ("s.json", b"[" + b" " * (ev.MAX_SCENARIO_BYTES + 1) + b"]", "is larger than 4 MiB"),
    ("s.yaml", b"- name: !!python/object:os.system x\n", "is not valid YAML"),
])
def test_scenario_files_are_untrusted(tmp_path, name, content, words):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(NetmlError) as exc:
        ev.load_scenarios(tmp_path / name)
    assert words in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(NetmlError, match="is not a regular file"):
        ev.load_scenarios(tmp_path)


def test_evalset_dev_scenarios_load():
    scenarios = ev.load_scenarios(need(EVALSET / "scenarios.json"))
    assert [s.name for s in scenarios] == ["dns-tunnel-dnscat2", "dns-tunnel-dns2tcp-otherhost",
                                           "blend-masscan-tcp-syn", "blend-masscan-udp"]
    assert [len(s.test) for s in scenarios] == [3, 2, 1, 1]
    assert scenarios[3].labels[scenarios[3].test[0]].kind == "flows"
    with pytest.raises(NetmlError, match="no scenario named 'nope'; the file has: dns-tunnel-dnscat2, "):
        ev.select_scenarios(scenarios, ["nope"])


# -- the command ---------------------------------------------------------------------------------------
UDP = ("--scenario", "blend-masscan-udp", "--feature", "stats", "--algorithm", "ocsvm")


def test_cli_evaluate_blend_udp_coverage(tmp_path):
    scenarios = need(EVALSET / "scenarios.json")
    # the flow meter keeps one-packet flows: every labelled 5-tuple of the scan is scored
    code, out, err = cli("evaluate", scenarios, *UDP, "--splitter", "meter", "-o", tmp_path / "out")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["scenario", "feature", "detector", "ROC", "AUC", "AP", "recall", "FPR",
                                "coverage", "fit", "s", "score", "s"]
    assert len(lines) == 2 and lines[1].split()[:3] == ["blend-masscan-udp", "stats", "ocsvm"]
    assert "[1/1] blend-masscan-udp / stats / ocsvm: ROC AUC" in err
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["format"] == "netml-evaluate" and doc["config"]["splitter"] == "meter"
    (row,) = doc["results"]
    assert row["error"] is None and row["coverage"] == 1.0 and row["n_missed"] == 0
    # 110 normal 5-tuples of TCP/UDP packets (the TSV's IGMP row has none) and 1,001 scan probes
    assert (row["n_tuples"], row["n_covered"], row["n_attack"]) == (1111, 1111, 1001)
    assert 0.0 <= row["roc_auc"] <= 1.0 and row["fit_seconds"] >= 0
    tsv = (tmp_path / "out" / "results.tsv").read_text().splitlines()
    assert len(tsv) == 2 and tsv[0].startswith("scenario\tfeature\tdetector\troc_auc")
    assert (tmp_path / "out" / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # netml 0.x's splitter drops one-packet flows: the scan becomes 1,001 missed units
    code, out, err = cli("evaluate", scenarios, *UDP, "--splitter", "netml", "-q", "-o", tmp_path / "out")
    assert code == 0 and err == ""  # the folder holds a previous results.json: replaced
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert row["coverage"] < 0.2 and row["coverage"] == pytest.approx(110 / 1111)
    assert (row["n_missed"], row["n_attack"]) == (1001, 1001) and row["recall"] == 0.0


def test_cli_evaluate_failed_runs_are_rows(tmp_path):
    code, out, err = cli("evaluate", need(EVALSET / "scenarios.json"), "--scenario", "blend-masscan-udp",
                         "--feature", "stats", "--algorithm", "ocsvm,pca", "--splitter", "meter",
                         "--param", "{pca: {n_components: 500}}", "-q")
    assert code == 0, err
    assert "failed: blend-masscan-udp / stats / pca: pca: n_components=500 exceeds" in out
    assert out.splitlines()[2].split()[3:7] == ["failed"] * 4 and "failed" not in out.splitlines()[1]


@pytest.mark.parametrize("args, words", [
    (("missing.json",), "scenario file missing.json: no such file"),
    (("{scenarios}", "--scenario", "nope"), "no scenario named 'nope'"),
    (("{scenarios}", "--feature", "nope"), "unknown feature 'nope'"),
    (("{scenarios}", "--algorithm", "ocsvm", "--param", "{nu: 2}"), "parameter 'nu' must be <= 1.0"),
    (("{scenarios}", "--splitter-param", "{idle: 3}"), "unknown parameter 'idle' for flow splitter 'meter'"),
    (("{scenarios}", "--fpr", "0.9"), "--fpr must be a number in (0, 0.5]"),
    (("{scenarios}", "-o", "{full}"), "is a non-empty folder without a previous netml evaluate results.json"),
])
def test_cli_evaluate_bad_input(tmp_path, args, words):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    values = {"scenarios": str(need(EVALSET / "scenarios.json")), "full": str(full)}
    code, out, err = cli("evaluate", *(values.get(a[1:-1], a) for a in args), "-q")
    assert code == 2 and out == ""
    assert err.startswith("netml: error: ") and words in err and err.count("\n") == 1
    assert (full / "notes.txt").read_text() == "mine"


def test_outputs_without_matplotlib(tmp_path, monkeypatch):
    results = [ev.Result("s1", "stats", "ocsvm", roc_auc=0.75, coverage=1.0, n_normal=3, n_attack=1),
               ev.Result("s1", "stats", "pca", error="pca: bad\tthing")]
    out = tmp_path / "out"
    assert ev.write_outputs(out, results, {"fpr": 0.01}) == []
    assert (out / "heatmap.png").is_file()
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import matplotlib -> ImportError
    notes = ev.write_outputs(out, results, {"fpr": float("nan")})
    assert notes == ["matplotlib is not installed: no heatmap.png (pip install 'netml[report]')"]
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.tsv"]  # the old heatmap is gone
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"] == {"fpr": None} and doc["results"][1]["roc_auc"] is None
    rows = [line.split("\t") for line in (out / "results.tsv").read_text().splitlines()]
    assert rows[1][rows[0].index("roc_auc")] == "0.75" and rows[2][rows[0].index("roc_auc")] == ""
    assert rows[2][-1] == "pca: bad thing" and len(rows[2]) == len(rows[0])
    table = ev.format_table(results).splitlines()
    assert table[1].split()[3:8] == ["0.750", "n/a", "n/a", "n/a", "1.000"]
    assert table[-1] == "failed: s1 / stats / pca: pca: bad\tthing"
    with pytest.raises(NetmlError, match="is a file, not a folder"):
        ev.write_outputs(out / "results.tsv", results, {})


def test_a_yaml_alias_bomb_in_a_scenario_file_is_refused_fast(tmp_path):
    import time

    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    t0 = time.perf_counter()
    code, out, err = cli("evaluate", path)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "scenario file" in err
    assert time.perf_counter() - t0 < 5


# -- streamed evaluation -------------------------------------------------------------------------------
TIMINGS = {"fit_seconds", "score_seconds", "extract_seconds"}


def _results(scenarios, splitter, features, stream):
    return [{k: v for k, v in r.as_dict().items() if k not in TIMINGS}
            for r in ev.run(scenarios, features, ["gmm", "iforest"], splitter=splitter, stream=stream)]


@pytest.mark.parametrize("splitter, features", [("meter", ["flowstats", "context"]), ("netml", ["flowstats"])])
def test_streamed_evaluate_equals_whole_capture(monkeypatch, splitter, features):
    """Batch by batch (training and test captures) every field of results.json but the timings is
    the whole-capture path's, coverage included: the netml splitter drops the scans' one-packet
    flows, so most labelled 5-tuples are missed units there."""
    scenarios = ev.select_scenarios(ev.load_scenarios(need(EVALSET / "scenarios.json")),
                                    ["blend-masscan-tcp-syn", "blend-masscan-udp"])
    whole = _results(scenarios, splitter, features, stream=False)
    streamed_captures = []
    real = ev.stream_units

    def counting(front, capture, *args, **kw):
        got = real(front, capture, *args, **kw)
        streamed_captures.append(got is not None)
        return got

    monkeypatch.setattr(ev, "stream_units", counting)
    streamed = _results(scenarios, splitter, features, stream=True)
    assert streamed_captures == [True] * 2 * len(features)  # one test capture per scenario, per feature
    assert streamed == whole
    assert all(r["error"] is None and r["n_attack"] > 1000 for r in whole)
    if splitter == "netml":
        assert all(r["coverage"] < 0.2 and r["n_missed"] >= 999 for r in whole)
    else:
        assert all(r["coverage"] == 1.0 and r["n_missed"] == 0 for r in whole)


@pytest.mark.parametrize("batch", [7, 1000])
def test_stream_units_equal_capture_units_for_any_batch(batch):
    """Units, labels, missed 5-tuples and coverage of one test capture, batch by batch and whole."""
    from netml_core.pipeline import Pipeline

    capture = need(EVALSET / "files" / "blend__demo+masscan-tcp_test.pcap")
    labels = FlowTsvLabels(EVALSET / "labels" / "blend__demo+masscan-tcp_test.tsv")
    front = Pipeline(flow_splitter="netml", feature="flowstats", detector=None)
    front.fit_extract([need(EVALSET / "files" / "blend__demo_train.pcap")])
    packets = front.read(str(capture))
    index = ev.TupleIndex.of(packets, labels)
    whole = ev.capture_units(front.extract_packets(packets), index, labels)
    units, built = ev.stream_units(front, str(capture), labels, batch_packets=batch)
    assert np.array_equal(built.keys, index.keys) and np.array_equal(built.labels, index.labels)
    order_w, order_s = np.lexsort(whole.X.T), np.lexsort(units.X.T)
    assert np.array_equal(units.X[order_s], whole.X[order_w])
    assert np.array_equal(units.y_flows[order_s], whole.y_flows[order_w])
    assert sorted(units.y_missed) == sorted(whole.y_missed) and len(whole.y_missed) >= 999
    assert (units.n_tuples, units.n_covered) == (whole.n_tuples, whole.n_covered)
    assert whole.n_covered < whole.n_tuples


def _units_of(front, capture, stream):
    from netml_core.errors import NetmlError

    try:
        u = ev.units_of_test_capture(front, str(capture), ConstantLabels(1), {}, {}, stream=stream)
    except NetmlError as exc:
        return str(exc)
    order = np.lexsort(u.X.T)
    return u.X[order].tolist(), u.y_flows.tolist(), u.y_missed.tolist(), u.n_tuples, u.n_covered


@pytest.mark.parametrize("feature", ["flowstats", "context"])
def test_streamed_test_units_equal_whole_on_corpus(shared_dir, feature):
    """On every corpus capture (damaged, several link types, out of time order: read whole then) a
    test capture's units are the same batch by batch and whole."""
    from netml_core.pipeline import Pipeline

    front = Pipeline(feature=feature, detector=None)
    front.fit_extract([need(EVALSET / "files" / "blend__demo_train.pcap")])
    assert front.can_stream()
    files = sorted((shared_dir / "data" / "corpus" / "files").iterdir())
    with_flows = 0
    for path in files:
        whole = _units_of(front, path, stream=False)
        assert _units_of(front, path, stream=True) == whole, path.name
        with_flows += isinstance(whole, tuple) and len(whole[1]) > 0
    assert len(files) >= 100 and with_flows >= 60


def test_extract_stream_refuses_a_pipeline_that_cannot_stream():
    from netml_core.errors import ParameterError
    from netml_core.pipeline import Pipeline

    front = Pipeline(flow_splitter="netml", feature="context", detector=None)
    front.front_fitted = True
    with pytest.raises(ParameterError, match="feature 'context' with splitter 'netml' cannot be extracted batch by batch"):
        front.extract_stream("unused.pcap")
