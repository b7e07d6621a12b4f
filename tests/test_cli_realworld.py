"""The CLI as a researcher uses it: real and damaged captures, bad inputs, pipes, portability.

Each test locks a behaviour found by running every command over the whole corpus
(``../shared/data/corpus``): success, or exactly one ``... error: ...`` line on stderr with a
non-zero exit and no output file; a closed pipe ends quietly; a model trained on one capture
classifies IPv6, Linux-cooked and VLAN-tagged captures in its own feature space.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import cli

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo"
CORPUS = SHARED / "data" / "corpus" / "files"
REPO = Path(__file__).resolve().parents[1]
ONE_ERROR_LINE = re.compile(r"^netml( [a-z]+)*: error: \S.*\n$")


def data(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"shared data missing: {path} (../shared must sit beside the repo)", pytrace=False)
    return path


def run_process(*argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=300, **kw):
    env = dict(os.environ, PYTHONWARNINGS="default")  # a warning would show on stderr
    return subprocess.run([sys.executable, "-m", "netml_core.cli", *map(str, argv)], stdin=stdin,
                          stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=timeout, **kw)


def assert_one_error(code: int, err: str, contains: str) -> None:
    assert code != 0
    assert ONE_ERROR_LINE.match(err), err
    assert contains in err, err


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """IAT + OCSVM on the demo capture and its labels (88 flows x 71 values)."""
    path = tmp_path_factory.mktemp("realworld") / "demo.netml"
    code, out, err = cli("learn", "-p", data(DEMO / "demo.pcap"), "-l", data(DEMO / "demo.csv"), "-o", path, "--compat")
    assert code == 0, err
    assert "88 flows x 71 values" in out
    return path


# -- 1. a closed pipe ---------------------------------------------------------------------------
def _closed_pipe_fd() -> int:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write: like `| head -0`, deterministic
    return w


@pytest.mark.parametrize("argv", [
    ("classify", "--report-all", "--format", "table"),
    ("classify", "--report-all", "--format", "csv"),
    ("inspect", "--json"),
    ("--help",),
])
def test_closed_stdout_pipe_exits_quietly(model, argv):
    w = _closed_pipe_fd()
    try:
        if argv[0] == "classify":
            argv = (*argv, "-m", model, "-p", DEMO / "demo.pcap")
        elif argv[0] == "inspect":
            argv = (*argv, DEMO / "demo.pcap")
        proc = run_process(*argv, stdout=w)
    finally:
        os.close(w)
    assert proc.returncode == 0  # click alone exits 1 here
    assert b"Traceback" not in proc.stderr and b"Exception ignored" not in proc.stderr
    assert b"error" not in proc.stderr


def test_learn_into_closed_pipe_still_writes_the_model(tmp_path):
    out = tmp_path / "m.netml"
    w = _closed_pipe_fd()
    try:
        proc = run_process("learn", "-p", data(DEMO / "demo.pcap"), "-l", DEMO / "demo.csv", "-o", out, stdout=w)
    finally:
        os.close(w)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("manifest.json"))["components"]["feature"]["name"] == "flowstats"


def test_stdout_closed_altogether(model):
    proc = run_process("classify", "-m", model, "-p", data(DEMO / "demo.pcap"), "--format", "csv",
                       "--report-all", stdout=None, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().startswith("netml classify: 196 flows, ")


# -- 2. bad inputs: one line, non-zero exit, nothing written ------------------------------------
@pytest.fixture(scope="module")
def junk(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("junk")
    (d / "text.txt").write_text("hello\n")
    (d / "empty.pcap").write_bytes(b"")
    (d / "folder").mkdir()
    code, _, err = cli("learn", "extract", "-p", data(DEMO / "demo.pcap"), "-l", DEMO / "demo.csv",
                       "--feature-file", d / "feats.npz")
    assert code == 0, err
    return {p.name: p for p in d.iterdir()}


LEARN = ("learn", "-p", DEMO / "demo.pcap", "-l", DEMO / "demo.csv")


@pytest.mark.parametrize("extra, contains", [
    (("--random-state", "-1"), "Invalid value for '--random-state': -1 is not in the range 0<=x<=4294967295"),
    (("--random-state", "99999999999"), "not in the range 0<=x<=4294967295"),
    (("--test-size", "2"), "--test-size must be in [0, 1), got 2.0"),
    (("--test-size", "nan"), "--test-size must be in [0, 1), got nan"),
    (("--splitter", "netml", "--q-interval", "0"), "parameter 'q_interval' must be > 0, got 0.0"),
    (("--q-interval", "0.5"), "--q-interval sets netml 0.x's sub-flow interval; splitter 'meter' has none"),
    (("--flow-pkts-threshold", "0"), "parameter 'min_packets' must be >= 1, got 0"),
    (("--splitter", "netml", "--flow-pkts-threshold", "0"), "parameter 'flow_pkts_thres' must be >= 1, got 0"),
    (("--splitter-param", "{idle_timeout: -1}"), "parameter 'idle_timeout' must be > 0, got -1"),
    (("--splitter-param", "{idle: 1}"), "unknown parameter 'idle' for splitter 'meter' in --splitter-param"),
    (("--feature-param", "{first_n: -1}"), "first_n"),
    (("--splitter", "nosuch"), "unknown flow splitter 'nosuch'; installed: meter, netml"),
    (("--fpr", "0.9"), "--fpr must be a number in (0, 0.5], got 0.9"),
    (("--algorithm", "nope"), "unknown algorithm 'nope'; installed: ae, gmm, iforest, kde, knn, ocsvm, pca"),
    (("--feature", "nope"), "unknown feature 'nope'; installed: "),
    (("--help-param", "--feature", "nope"), "unknown feature 'nope'; installed: "),
    (("--algorithm", "ocsvm", "--param", "{nu: 5}"), "parameter 'nu' must be <= 1.0, got 5"),
    (("--param", "{n_components: 0}"), "parameter 'n_components' must be >= 1, got 0"),
    (("--param", "nu: ["), "--param is not valid YAML/JSON at line 1"),
])
def test_bad_learn_options_fail_before_any_work(tmp_path, extra, contains):
    out = tmp_path / "m.netml"
    code, stdout, err = cli(*LEARN, "-o", out, *extra)
    assert_one_error(code, err, contains)
    assert stdout == ""  # nothing read, nothing trained
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target, reason", [
    ("folder", "it is a folder"),
    ("text.txt/m.netml", "text.txt is not a folder"),
    ("/proc/m.netml", "No such file or directory"),
])
def test_unwritable_model_path_fails_before_training(junk, target, reason):
    path = Path(target) if target.startswith("/") else junk["text.txt"].parent / target
    code, stdout, err = cli(*LEARN, "-o", path)
    assert_one_error(code, err, f"cannot write model file {path}: ")
    assert err.rstrip().endswith(reason)
    assert stdout == ""


def test_dash_is_no_model_path(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*LEARN, "-o", "-")
    assert_one_error(code, err, "cannot write the model file to stdout ('-'): give a path")
    assert out == "" and list(tmp_path.iterdir()) == []  # used to write a file named '-'
    code, out, err = cli("classify", "-m", "-", "-p", DEMO / "demo.pcap")
    assert_one_error(code, err, "the model is read from a file, not from stdin ('-')")


def test_unwritable_report_and_features_file(junk, tmp_path):
    out = tmp_path / "m.netml"
    code, stdout, err = cli(*LEARN, "-o", out, "--report", junk["text.txt"])
    assert_one_error(code, err, f"cannot write report folder {junk['text.txt']}: it is a file")
    assert stdout == "" and not out.exists()
    code, stdout, err = cli("learn", "extract", "-p", DEMO / "demo.pcap", "--feature-file", junk["folder"])
    assert_one_error(code, err, f"cannot write features file {junk['folder']}: it is a folder")
    assert stdout == ""


def test_output_folders_are_created_only_on_success(tmp_path):
    code, _, err = cli("learn", "-p", data(CORPUS / "tcpdump__empty.pcap"), "-o", tmp_path / "a" / "b" / "m.netml",
                       "--report", tmp_path / "r")
    assert_one_error(code, err, "no flows in")
    assert list(tmp_path.iterdir()) == []
    code, _, err = cli(*LEARN, "-o", tmp_path / "a" / "b" / "m.netml", "--report", tmp_path / "r")
    assert code == 0, err
    assert (tmp_path / "a" / "b" / "m.netml").is_file()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["metrics.json", "roc.png", "scores.csv"]


def test_model_and_features_files_swapped(model, junk, tmp_path):
    code, _, err = cli("classify", "-m", junk["feats.npz"], "-p", DEMO / "demo.pcap")
    assert_one_error(code, err, f"{junk['feats.npz']} is a netml features file, not a model: train one with "
                                f"'netml learn train --feature-file {junk['feats.npz']} -o MODEL'")
    code, _, err = cli("learn", "train", "--feature-file", model, "-o", tmp_path / "m.netml")
    assert_one_error(code, err, f"{model.name} is a netml model file, not a features file")
    assert not (tmp_path / "m.netml").exists()
    code, _, err = cli("classify", "-m", DEMO / "demo.pcap", "-p", DEMO / "demo.pcap")
    assert_one_error(code, err, "is not a netml model: it is a packet capture (pass it with --pcap)")


@pytest.mark.parametrize("name, contains", [
    ("text.txt", "text.txt: not a pcap or pcapng capture (starts with 68 65 6c 6c)"),
    ("empty.pcap", "empty.pcap: empty file, not a pcap or pcapng capture"),
    ("folder", "folder: is a directory, not a capture"),
    ("missing.pcap", "missing.pcap: no such file"),
])
def test_bad_captures(model, junk, tmp_path, name, contains):
    path = junk.get(name, tmp_path / name)
    out = tmp_path / "m.netml"
    for argv in (("inspect", path), ("learn", "-p", path, "-o", out), ("classify", "-m", model, "-p", path)):
        code, stdout, err = cli(*argv)
        assert_one_error(code, err, contains)
        assert stdout == ""
    assert not out.exists()


def test_labels_that_match_nothing_or_do_not_pair(tmp_path):
    out = tmp_path / "m.netml"
    code, _, err = cli("learn", "-p", data(CORPUS / "dpkt__http.pcap"), "-l", DEMO / "demo.csv", "-o", out)
    assert_one_error(code, err, f"no flow of {CORPUS / 'dpkt__http.pcap'} matches a row of {DEMO / 'demo.csv'}: is it "
                                "the label file of this capture?")
    code, _, err = cli("learn", "-p", DEMO / "demo.pcap", "-p", DEMO / "demo.pcap", "-l", DEMO / "demo.csv",
                       "-l", DEMO / "demo.csv", "-l", DEMO / "demo.csv", "-o", out)
    assert_one_error(code, err, "3 --label files for 2 --pcap captures")
    assert not out.exists()


def test_empty_stdin(model, tmp_path):
    for argv in (("classify", "-m", model), ("learn", "-p", "-", "-o", tmp_path / "m.netml"), ("inspect", "-")):
        proc = run_process(*argv)
        assert proc.returncode == 2
        assert proc.stderr.decode() == "netml: error: <stdin>: empty file, not a pcap or pcapng capture\n"
    assert list(tmp_path.iterdir()) == []


def test_terminal_on_stdin_is_refused_not_waited_on(model, tmp_path):
    import pty

    master, slave = pty.openpty()
    try:
        for argv in (("inspect",), ("learn", "-p", "-", "-o", tmp_path / "m.netml")):
            proc = run_process(*argv, stdin=slave, timeout=60)  # used to wait for typed bytes forever
            assert proc.returncode == 2
            assert proc.stderr.decode() == ("netml: error: <stdin> is a terminal, not a capture: redirect one "
                                            "(< FILE) or name the file\n")
        proc = run_process("classify", "-m", model, stdin=slave, timeout=60)
        assert proc.returncode == 2 and b"no capture: pass --pcap FILE or redirect one" in proc.stderr
    finally:
        os.close(master)
        os.close(slave)
    assert list(tmp_path.iterdir()) == []


def test_demo_negative_seed_is_a_usage_error(tmp_path):
    code, out, err = cli("demo", "--seed", "-1", tmp_path / "d")
    assert_one_error(code, err, "Invalid value for '--seed': -1 is not in the range x>=0.")
    assert out == "" and not (tmp_path / "d").exists()  # was an internal error after creating the folder


def test_format_xml_is_a_usage_error(model):
    code, _, err = cli("classify", "-m", model, "-p", DEMO / "demo.pcap", "--format", "xml")
    assert_one_error(code, err, "Invalid value for '--format': 'xml' is not one of 'table', 'jsonl', 'csv'")


# -- 3. captures without flows, damaged captures --------------------------------------------------
def test_no_flows_in_the_capture(model, tmp_path):
    empty, one = data(CORPUS / "tcpdump__empty.pcap"), data(CORPUS / "tcpdump__LINKTYPE_IPV6.pcap")
    code, _, err = cli("learn", "-p", empty, "-o", tmp_path / "m.netml")
    assert_one_error(code, err, f"no flows in {empty}: no TCP/UDP packets")
    code, _, err = cli("learn", "-p", one, "-o", tmp_path / "m.netml", "--flow-pkts-threshold", "3")
    assert_one_error(code, err, f"no flows in {one}: no flow has at least 3 packets (1 TCP/UDP packets)")
    code, _, err = cli("learn", "-p", one, "-o", tmp_path / "m.netml", "--splitter", "netml")
    assert_one_error(code, err, f"no flows in {one}: no 5-tuple flow has at least 2 packets (1 TCP/UDP packet)")
    code, stdout, err = cli("classify", "-m", model, "-p", one)
    assert_one_error(code, err, f"no flows in {one} (1 TCP/UDP packet; a flow of this model needs at least 2 "
                                "packets with the same 5-tuple)")
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_one_capture_without_flows_among_several_is_skipped(model):
    empty, http = data(CORPUS / "tcpdump__empty.pcap"), data(CORPUS / "dpkt__http.pcap")
    code, out, err = cli("classify", "-m", model, "-p", empty, "-p", http, "--format", "csv", "--report-all")
    assert code == 0, err
    warning, summary = err.splitlines()
    assert warning == f"netml: warning: no flows in {empty} (0 TCP/UDP packets); skipped"
    assert summary.startswith("netml classify: 4 flows, ")
    assert [line.split(",")[0] for line in out.splitlines()] == ["capture"] + [str(http)] * 4
    code, out, err = cli("classify", "-m", model, "-p", empty, "-p", CORPUS / "tcpdump__empty.pcapng")
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == "netml: error: no flows in any of the 2 captures"


def test_capture_without_timestamps_warns_that_its_model_finds_no_flows_elsewhere(tmp_path):
    spb = data(CORPUS / "pcapng-test-generator__le_basic_test010.pcapng")  # simple packet blocks: no time
    out = tmp_path / "m.netml"
    code, _, err = cli("learn", "-p", spb, "-o", out)  # flow-meter flows: nothing learned from time
    assert code == 0, err
    assert err.splitlines()[0] == (f"netml: warning: only 2 training flows in {spb}: too few to learn what "
                                   "normal traffic looks like; train on a longer capture or more captures")
    code, _, err = cli("learn", "-p", spb, "-o", out, "--splitter", "netml")
    assert code == 0, err
    assert err.splitlines()[:1] == ["netml: warning: the learned sub-flow interval is 0 s: the training flows have "
                                "no duration (packets without timestamps, e.g. pcapng simple packet blocks?); "
                                "other captures will give no flows with this model"]
    code, _, err = cli("classify", "-m", out, "-p", DEMO / "srcIP_10.42.0.119_anomaly.pcap")
    assert_one_error(code, err, "no flows in ")


def test_damaged_capture_warns_once_and_keeps_the_good_packets(model, tmp_path):
    cut = tmp_path / "cut.pcapng"  # a capture cut short mid-block, as a copy interrupted mid-way leaves it
    cut.write_bytes(data(DEMO / "srcIP_10.42.0.119_anomaly.pcap").read_bytes()[:300_001])
    code, out, err = cli("classify", "-m", model, "-p", cut, "--format", "jsonl", "--report-all")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 2 and "damaged capture: file ends inside a block" in lines[0]
    assert lines[1].startswith("netml classify: ")
    assert len(out.splitlines()) == int(lines[1].split()[2]) > 0


@pytest.mark.parametrize("reader", ["native", "dpkt", "scapy"])
def test_cut_gzip_capture_keeps_the_packets_before_the_cut(tmp_path, reader):
    import gzip

    packed = gzip.compress(data(DEMO / "demo.pcap").read_bytes(), mtime=0)
    cut = tmp_path / "cut.pcapng.gz"
    cut.write_bytes(packed[:len(packed) // 2])  # a download interrupted half-way
    code, out, err = cli("inspect", "--json", "--reader", reader, cut)
    assert code == 0, err
    info = json.loads(out)
    assert info["format"] == "pcapng+gzip"
    # whole blocks before the cut survive (all were lost: gzip raised on the cut and took them along)
    assert 2500 < info["packets"] < 6000
    assert info["skipped"] == {"cut_record": 1, "not_tcp_udp": info["packets"] - info["ipv4_tcp"] - info["ipv4_udp"]}
    assert any(d.startswith("gzip stream damaged (") for d in info["damage"])


# -- 4. portability: one model, other link types and IPv6 -----------------------------------------
def _vlan_copy(src: Path, dst: Path, vid: int = 42) -> Path:
    """``src`` (Ethernet pcapng) rewritten as classic pcap with every frame 802.1Q-tagged."""
    import dpkt

    with open(src, "rb") as fh:
        records = list(dpkt.pcapng.Reader(fh))
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    tag = struct.pack("!HH", 0x8100, vid)
    for ts, frame in records:
        tagged = frame[:12] + tag + frame[12:]
        usec = int(round(ts * 1e6))
        out += struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(tagged), len(tagged)) + tagged
    dst.write_bytes(bytes(out))
    return dst


def _jsonl(model, capture) -> list[dict]:
    code, out, err = cli("classify", "-m", model, "-p", capture, "--format", "jsonl", "--report-all")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_vlan_tagged_copy_gets_the_same_scores(model, tmp_path):
    plain = data(DEMO / "srcIP_10.42.0.119_anomaly.pcap")
    tagged = _vlan_copy(plain, tmp_path / "vlan.pcap")
    a, b = _jsonl(model, plain), _jsonl(model, tagged)
    assert len(a) == len(b) == 312
    strip = lambda rows: [{k: v for k, v in r.items() if k != "capture"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)


def test_feature_width_is_the_trained_one(model):
    from netml_core.pipeline import Pipeline

    pipe, _ = Pipeline.load(model)
    for capture in (DEMO / "srcIP_10.42.0.119_anomaly.pcap", CORPUS / "PcapPlusPlus__four_ipv6_http_streams.pcap",
                    CORPUS / "PcapPlusPlus__sll.pcap", CORPUS / "nfstream__alexa-app.pcapng"):
        assert pipe.extract(data(capture)).X.shape[1] == 71


def test_ipv6_and_linux_cooked_endpoints(model):
    rows = _jsonl(model, data(CORPUS / "PcapPlusPlus__four_ipv6_http_streams.pcap"))
    assert len(rows) == 8
    assert {(r["src"], r["dport"]) for r in rows if r["dport"] == 80} == {("2001:618:400::5199:cc70", 80)}
    assert all(r["proto"] == "TCP" for r in rows)
    sll = _jsonl(model, data(CORPUS / "PcapPlusPlus__sll.pcap"))
    assert [(r["src"], r["sport"], r["dst"], r["dport"], r["proto"]) for r in sll][:2] == [
        ("10.0.0.8", 40800, "212.199.202.69", 80, "TCP"), ("212.199.202.69", 80, "10.0.0.8", 40800, "TCP")]


def test_table_stays_aligned_with_ipv6_endpoints(model):
    code, out, err = cli("classify", "-m", model, "-p", data(CORPUS / "PcapPlusPlus__four_ipv6_http_streams.pcap"),
                         "--report-all")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert len(rows) == 8
    assert "[2001:618:400::5199:cc70]:35995 \u2192 [2001:618:1:8000::5]:80" in rows[0]
    col = header.index("PROTO")
    assert all(r[col:col + 3] == "TCP" and r[col - 1] == " " for r in rows)


# -- 5. verbosity ---------------------------------------------------------------------------------
def test_verbose_levels_on_learn(tmp_path):
    code, out, err = cli(*LEARN, "-o", tmp_path / "m.netml", "-v")
    assert code == 0, err
    assert err.splitlines()[0] == f"netml: read {DEMO / 'demo.pcap'}: 5984 packets (pcapng) in " + \
        err.splitlines()[0].split(" in ")[-1]
    assert "DEBUG" not in err and "epoch" not in err
    code, out, err = cli(*LEARN, "-o", tmp_path / "ae.netml", "-v", "-v", "--algorithm", "ae",
                         "--param", "{epochs: 3}")
    assert code == 0, err
    epochs = [ln for ln in err.splitlines() if " epoch " in ln]
    # the warm-up fit that loads torch before timing stays silent: one line per real epoch
    assert [ln.split(" epoch ")[1].split(":")[0] for ln in epochs] == ["1/3", "2/3", "3/3"]
    assert all(ln.startswith("netml: DEBUG: netml.detectors.ae: ") for ln in epochs)
    assert "netml: INFO: netml.pipeline: feature flowstats: 91 flows x 38 values" in err


# -- 5. a first-time user's mistakes ----------------------------------------------------------------
def test_an_option_never_replaces_a_file_netml_did_not_write(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_bytes((DEMO / "demo.csv").read_bytes())
    before = labels.read_bytes()
    # the 0.x meaning of --feature PATH (the features file) must not destroy the label file
    code, out, err = cli("learn", "-p", DEMO / "demo.pcap", "-l", labels, "--feature", labels, "-o", tmp_path / "m.netml")
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == (f"netml: error: refusing to overwrite {labels}: it exists and is not a netml "
                                    "features file (remove it or choose another path)")
    code, _, err = cli("learn", "-p", DEMO / "demo.pcap", "-o", labels)
    assert code == 2 and "is not a netml model file" in err
    assert labels.read_bytes() == before and not (tmp_path / "m.netml").exists()
    # netml's own outputs are replaced as before
    code, _, err = cli("learn", "-p", DEMO / "demo.pcap", "-o", tmp_path / "m.netml")
    assert code == 0, err
    code, _, err = cli("learn", "-p", DEMO / "demo.pcap", "-o", tmp_path / "m.netml")
    assert code == 0, err


def test_a_label_file_of_another_capture_is_named(tmp_path):
    rows = (DEMO / "demo.csv").read_text().splitlines()
    few = [r for r in rows[1:] if ",192.168.10.5," in r]
    for keep, message in ((3, "netml: warning: only 2 training flows in "), (1, "netml: error: only 1 labelled flow in ")):
        other = tmp_path / f"labels{keep}.csv"  # a few rows of this capture, as if the rest were another's
        other.write_text("\n".join(rows[:1] + few[:keep]) + "\n")
        code, _, err = cli("learn", "-p", DEMO / "demo.pcap", "-l", other, "-o", tmp_path / "m.netml")
        lines = err.splitlines()
        assert f"flows of {DEMO / 'demo.pcap'} match no row of {other} and are dropped" in lines[0]
        assert any(line.startswith(message) for line in lines), err
        assert code == (0 if keep == 3 else 2)
    assert f"(labels: {other}): a detector needs at least 2" in lines[-1]


def test_learn_train_refuses_extraction_options_it_would_ignore(tmp_path):
    feats = tmp_path / "f.npz"
    code, _, err = cli("learn", "extract", "-p", DEMO / "demo.pcap", "-l", DEMO / "demo.csv", "--feature-file", feats)
    assert code == 0, err
    for extra in (("--feature", "stats"), ("--reader", "dpkt"), ("--fft",), ("--splitter", "netml"), ("--context",)):
        code, out, err = cli("learn", "train", "--feature-file", feats, *extra, "-o", tmp_path / "m.netml")
        assert code == 2 and out == "" and f"{extra[0]} belongs to 'learn extract'" in err, extra
    code, _, err = cli("learn", "--compat", "train", "--feature-file", feats, "-o", tmp_path / "m.netml")
    assert code == 0, err  # --compat's detector choices apply to train
