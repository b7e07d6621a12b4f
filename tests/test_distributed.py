"""Extraction on a 2-worker Dask LocalCluster gives the single-process flows, rows and scores."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import distributed  # the 'dask' extra: tox installs it, so CI runs these tests (never skipped)
import numpy as np
import pytest

from netml_core.distributed import DaskRunner, split_task
from netml_core.errors import ModelFileError
from netml_core.labels import CsvLabels
from netml_core.model_file import ComponentRecord
from netml_core.packets import COLUMNS, PacketTable
from netml_core.pipeline import Pipeline
from netml_core.readers.native import NativeReader
from netml_core.readers.ranges import layout, plan, read_range

from helpers import DEMO, SHARED, cli, demo_data, demo_repeated_pcap, need

SLICE = 1 << 20  # about 3000 packets: the 18000-packet capture is cut in 7 ranges


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return str(demo_repeated_pcap(tmp_path_factory.mktemp("dask") / "d3.pcap", 18_000))


def _on(client, pipe, **kw):
    pipe.dask = DaskRunner(client=client, slice_bytes=SLICE, **kw)
    return pipe


def _same_flows(a, b):
    for k in ("src", "dst", "sport", "dport", "proto", "first_ts", "last_ts"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k


def test_byte_ranges_frame_exactly_what_a_whole_read_frames(big):
    size = layout(big).size
    ranges = [read_range(big, a, b, size) for a, b in plan(size, SLICE)]
    assert len(ranges) == 7 and all(r.exact for r in ranges)
    assert [r.end for r in ranges[:-1]] == [r.start for r in ranges[1:]]
    joined, whole = PacketTable.concat([r.packets for r in ranges]), NativeReader().read(big)
    assert len(joined) == len(whole) == 17_952
    for name in COLUMNS:
        assert np.array_equal(getattr(joined, name), getattr(whole, name)), name


@pytest.mark.parametrize("feature", ["flowstats", "iat", "context"])  # fitted first / on shipped flows / not per flow
def test_fit_extract_with_labels_equals_single_process(client, big, feature):
    demo_data()
    labels = [CsvLabels(str(DEMO / "demo.csv")), CsvLabels(str(DEMO / "demo.csv"))]
    sources = [big, str(DEMO / "demo.pcap")]
    ref = Pipeline(feature=feature, detector=None).fit_extract(sources, labels)
    pipe = _on(client, Pipeline(feature=feature, detector=None))
    got = pipe.fit_extract(sources, labels)
    assert got.X.shape == ref.X.shape and got.X.tobytes() == ref.X.tobytes()
    assert np.array_equal(got.y, ref.y) and np.array_equal(got.capture, ref.capture)
    _same_flows(got.flows, ref.flows)
    assert got.counts == ref.counts and got.counts["unlabelled_dropped"] > 0
    ref_pipe = Pipeline(feature=feature, detector=None)
    ref_pipe.fit_extract(sources, labels)
    assert repr(pipe.records(("feature",))["feature"].state) == repr(ref_pipe.records(("feature",))["feature"].state)


def test_model_and_scores_equal_single_process(client, big, tmp_path):
    ref = Pipeline()
    ex = ref.fit_extract([big])
    ref.fit_detector(ex.X, fpr=0.01, random_state=1)
    pipe = _on(client, Pipeline())
    ex2 = pipe.fit_extract([big])
    pipe.dask = None
    pipe.fit_detector(ex2.X, fpr=0.01, random_state=1)
    assert pipe.threshold == ref.threshold
    a, b = ref.classify(big), _on(client, pipe).classify(big)
    assert a.scores.tobytes() == b.scores.tobytes() and np.array_equal(a.anomalous, b.anomalous)
    _same_flows(a.flows, b.flows)


def test_a_big_pcapng_is_cut_in_byte_ranges_with_the_same_result(client, tmp_path, caplog):
    path = str(demo_repeated_pcap(tmp_path / "d3.pcapng", 18_000, "pcapng"))
    pipe = _on(client, Pipeline(detector=None))
    jobs = pipe.dask.jobs([path], True)
    assert len(jobs) == 7 and jobs[0][2] == 48  # after the section header and interface description
    ref = Pipeline(detector=None).fit_extract([path])
    with caplog.at_level(logging.INFO, logger="netml.distributed"):
        got = pipe.fit_extract([path])
    assert "do not chain" not in caplog.text  # stitched from its ranges, not read again in one piece
    assert len(got.X) == len(ref.X) == 591 and got.X.tobytes() == ref.X.tobytes()
    _same_flows(got.flows, ref.flows)
    model = Pipeline()
    model.fit_detector(model.fit_extract([path]).X, fpr=0.01, random_state=1)
    a = model.classify(path)
    with caplog.at_level(logging.INFO, logger="netml.distributed"):
        b = _on(client, model).classify(path)
    assert "do not chain" not in caplog.text
    assert a.scores.tobytes() == b.scores.tobytes() and np.array_equal(a.anomalous, b.anomalous)


def test_unordered_capture_is_read_in_one_piece_with_the_same_result(client, tmp_path):
    from netml_core.pcapwriter import write_pcap_frames

    path = demo_repeated_pcap(tmp_path / "d.pcap", 18_000)
    frames, ts = [], []
    with open(path, "rb") as f:  # the same records with the first ones moved last (time goes back)
        data = f.read()
    pos = 24
    while pos < len(data):
        sec, frac, cap, _ = np.frombuffer(data[pos:pos + 16], "<u4")
        ts.append(int(sec) * 10**9 + int(frac) * 1000)
        frames.append(data[pos + 16:pos + 16 + int(cap)])
        pos += 16 + int(cap)
    k = 2000
    out = tmp_path / "u.pcap"
    write_pcap_frames(out, np.array(ts[k:] + ts[:k], np.int64), frames[k:] + frames[:k])
    ref = Pipeline(detector=None).fit_extract([str(out)])
    got = _on(client, Pipeline(detector=None)).fit_extract([str(out)])
    assert got.X.tobytes() == ref.X.tobytes()
    _same_flows(got.flows, ref.flows)


def test_netml_splitter_learns_here_and_classifies_per_capture_on_workers(client, big):
    sources = [big, str(DEMO / "demo.pcap")]
    ref = Pipeline(flow_splitter="netml", feature="iat", detector=None)
    a = ref.fit_extract(sources)
    pipe = _on(client, Pipeline(flow_splitter="netml", feature="iat", detector=None))
    b = pipe.fit_extract(sources)
    assert a.X.tobytes() == b.X.tobytes()
    x, y = ref.extract(big), pipe.extract(big)
    assert x.X.tobytes() == y.X.tobytes() and len(pipe.dask.jobs([big], False)) == 1


def test_a_worker_without_a_plugin_says_which_plugin_and_which_worker(client, big):
    records = Pipeline(detector=None).records(("reader", "flow_splitter", "feature"))
    records["feature"] = ComponentRecord(kind="feature", name="nosuchfeature", params={}, state={},
                                         plugin="nosuch", distribution="netml-features-nosuch", version="9")
    fut = client.submit(split_task, records, (0, big, None, None, None), False, pure=False)
    with pytest.raises(ModelFileError, match=r"^Dask worker tcp://\S+ needs the feature 'nosuchfeature' from "
                                             r"netml-features-nosuch 9, which is not installed"):
        fut.result()


def test_a_killed_worker_is_replaced_and_the_result_is_the_same(client, big):
    ref = Pipeline(detector=None).fit_extract([big])
    pids = client.run(os.getpid)
    killed = []

    def kill_when_holding_results():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            for addr, keys in client.has_what().items():
                if any("split_task" in str(k) for k in keys) and addr in pids:
                    os.kill(pids[addr], signal.SIGKILL)
                    killed.append(addr)
                    return
            time.sleep(0.005)

    thread = threading.Thread(target=kill_when_holding_results)
    thread.start()
    got = _on(client, Pipeline(detector=None)).fit_extract([big])
    thread.join()
    assert killed, "no worker was killed during extraction"
    assert got.X.tobytes() == ref.X.tobytes()
    _same_flows(got.flows, ref.flows)
    client.wait_for_workers(2, timeout=30)


def test_cli_learn_and_classify_with_workers_match(tmp_path, big):
    code, out, err = cli("learn", "-p", big, "-o", tmp_path / "a.netml", "--feature-file", tmp_path / "a.npz",
                         "--workers", "2")
    assert code == 0, err
    code, _, err = cli("learn", "-p", big, "-o", tmp_path / "b.netml", "--feature-file", tmp_path / "b.npz")
    assert code == 0, err
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert sorted(a.files) == sorted(b.files) and all(a[k].tobytes() == b[k].tobytes() for k in a.files)
    demo = DEMO / "demo.pcap"
    runs = [cli("classify", "-m", tmp_path / "b.netml", "-p", big, "-p", demo, "--report-all", "--format", "csv",
                *extra) for extra in ((), ("--workers", "2"))]
    assert [r[0] for r in runs] == [0, 0]
    assert runs[0][1] == runs[1][1] and len(runs[0][1].splitlines()) == 1 + 591 + 199  # header, every flow


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be a positive number of worker processes, got 0"),
    (["--scheduler", "no such thing"], "is not a scheduler address"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
])
def test_bad_dask_options_are_one_line(tmp_path, big, args, message):
    code, _, err = cli("learn", "extract", "-p", big, "--feature-file", tmp_path / "a.npz", *args)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreachable_scheduler_is_one_line(tmp_path, big, monkeypatch):
    monkeypatch.setattr("netml_core.distributed.CONNECT_TIMEOUT", 1)
    code, _, err = cli("classify", "-m", tmp_path / "none.netml", "-p", big, "--scheduler", "tcp://127.0.0.1:1")
    assert code != 0 and len(err.strip().splitlines()) == 1


def test_without_dask_installed_the_error_names_the_extra(tmp_path, big, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code, _, err = cli("learn", "extract", "-p", big, "--feature-file", tmp_path / "a.npz", "--workers", "2")
    assert code != 0 and "pip install 'netml[dask]'" in err and len(err.strip().splitlines()) == 1


def test_a_normal_run_imports_nothing_of_dask(tmp_path, big):
    code = ("import sys; from netml_core import cli; "
            f"rc = cli.main(['learn', 'extract', '-p', {big!r}, '--feature-file', {str(tmp_path / 'f.npz')!r}]); "
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip().splitlines()[-1] == "0 []"


def test_progress_on_stderr_counts_the_tasks(client, big, capsys):
    pipe = Pipeline(detector=None)
    pipe.dask = DaskRunner(client=client, slice_bytes=SLICE, progress=True)
    pipe.fit_extract([big])
    err = capsys.readouterr().err
    assert "netml: extract: 7/7 tasks on 2 workers" in err
    pipe = Pipeline(feature="iat", detector=None)
    pipe.dask = DaskRunner(client=client, slice_bytes=SLICE, progress=True)
    pipe.fit_extract([big])
    err = capsys.readouterr().err
    assert "netml: split: 7/7 tasks on 2 workers" in err and "netml: transform: 7/7 tasks on 2 workers" in err


def test_evaluate_with_workers_gives_the_same_results(client):
    from netml_core import evaluate as ev

    path = SHARED / "data" / "evalset-dev" / "scenarios.json"
    scenarios = ev.select_scenarios(ev.load_scenarios(str(need(path))), ["blend-masscan-udp"])
    kw = dict(detector_params={"ocsvm": {"nu": 0.1}})
    a = ev.run(scenarios, ["flowstats", "iat"], ["ocsvm"], **kw)
    b = ev.run(scenarios, ["flowstats", "iat"], ["ocsvm"], dask=DaskRunner(client=client, slice_bytes=SLICE), **kw)
    assert [r.error for r in a] == [None, None] == [r.error for r in b]
    assert [(r.n_train, r.n_flows, r.roc_auc, r.threshold) for r in a] == \
        [(r.n_train, r.n_flows, r.roc_auc, r.threshold) for r in b]


def test_worker_warnings_are_shown_once_as_in_one_process(client, big, caplog):
    damaged = str(need(SHARED / "data" / "corpus" / "files" / "dpkt__truncated_dns_2.pcap"))
    runs = []
    for dask in (None, DaskRunner(client=client, slice_bytes=SLICE)):
        caplog.clear()
        pipe = Pipeline(detector=None)
        pipe.dask = dask
        with caplog.at_level("WARNING", logger="netml"):
            X = pipe.fit_extract([damaged, big]).X
        runs.append((X.tobytes(), [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]))
    assert runs[0] == runs[1]
    assert len(runs[0][1]) == 1 and "damaged capture: file ends inside a record at byte 240" in runs[0][1][0]


def test_a_capture_missing_on_a_worker_names_the_worker(client, tmp_path):
    from netml_core.errors import CaptureError

    records = Pipeline(detector=None).records(("reader", "flow_splitter"))
    fut = client.submit(split_task, records, (0, str(tmp_path / "gone.pcap"), None, None, None), False, pure=False)
    with pytest.raises(CaptureError, match=r"gone.pcap: no such file \(on Dask worker tcp://\S+\)$"):
        fut.result()


def test_a_scheduler_without_workers_is_one_line(tmp_path, big, monkeypatch):
    monkeypatch.setattr("netml_core.distributed.CONNECT_TIMEOUT", 1)
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as empty:
        code, _, err = cli("learn", "extract", "-p", big, "--feature-file", tmp_path / "a.npz",
                           "--scheduler", empty.scheduler_address)
    assert code != 0 and "has no workers" in err and len(err.strip().splitlines()) == 1
