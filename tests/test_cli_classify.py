"""`netml classify`: output formats, stdin, and one-line errors for every bad model or capture."""

from __future__ import annotations

import csv
import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import cli, demo_data

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    data = demo_data()
    path = tmp_path_factory.mktemp("classify") / "model.dat"
    code, _, err = cli("learn", "-p", data / "demo.pcap", "-l", data / "demo.csv", "--feature", "stats",
                       "--splitter", "netml", "-o", path)
    assert code == 0, err
    return path


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def _summary(err: str) -> tuple[int, int]:
    line = [ln for ln in err.splitlines() if ln.startswith("netml classify:")][-1]
    words = line.split()
    return int(words[2]), int(words[4])  # "netml classify: N flows, M anomalies (...)"


def test_formats_agree_and_flag_scores_above_threshold(model):
    data = demo_data()
    threshold = _manifest(model)["components"]["detector"]["state"]["threshold_"]
    code, out, err = cli("classify", "--model", model, "--pcap", data / "demo.pcap", "--format", "jsonl",
                         "--report-all")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 196
    assert set(rows[0]) >= {"start", "end", "src", "sport", "dst", "dport", "proto", "score", "anomaly"}
    assert {r["proto"] for r in rows} == {"TCP", "UDP"}
    assert all(r["start"] <= r["end"] for r in rows)
    flagged = [r for r in rows if r["anomaly"]]
    assert all((r["score"] > threshold) == r["anomaly"] for r in rows)
    assert 0 < len(flagged) < 196
    assert _summary(err) == (196, len(flagged))

    code, out, err = cli("classify", "--model", model, "--pcap", data / "demo.pcap", "--format", "csv",
                         "--report-all")
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 196
    assert [float(r["score"]) for r in table] == [r["score"] for r in rows]  # full precision in both
    assert [r["anomaly"] for r in table] == [str(int(r["anomaly"])) for r in rows]

    # the default prints anomalies only, as an aligned table with a header
    code, out, err = cli("classify", "--model", model, "--pcap", data / "demo.pcap")
    lines = out.splitlines()
    assert lines[0].split() == ["START", "END", "FLOW", "PROTO", "SCORE", "VERDICT"]
    assert len(lines) == 1 + len(flagged)
    assert all(line.endswith("ANOMALY") for line in lines[1:])
    first = flagged[0]
    assert f"{first['src']}:{first['sport']} \u2192 {first['dst']}:{first['dport']}" in lines[1]
    assert _summary(err) == (196, len(flagged))

    code, out, _ = cli("classify", "--model", model, "--pcap", data / "demo.pcap", "--report-all")
    verdicts = [line.split()[-1] for line in out.splitlines()[1:]]
    assert verdicts.count("ANOMALY") == len(flagged) and verdicts.count("normal") == 196 - len(flagged)


def test_stdin_and_a_second_capture(model, tmp_path):
    data = demo_data()
    with open(data / "srcIP_10.42.0.119_anomaly.pcap", "rb") as fh:
        proc = subprocess.run([sys.executable, "-m", "netml_core.cli", "classify", f"--model={model}",
                               "--format", "csv", "--report-all"], stdin=fh, capture_output=True, cwd=tmp_path,
                              timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    code, out, _ = cli("classify", "--model", model, "--pcap", data / "srcIP_10.42.0.119_anomaly.pcap",
                       "--format", "csv", "--report-all")
    piped = proc.stdout.decode().replace("<stdin>", str(data / "srcIP_10.42.0.119_anomaly.pcap"))
    assert piped == out
    n_flows, n_anom = _summary(proc.stderr.decode())
    assert n_flows == len(out.splitlines()) - 1 > 50


def _one_line(*argv) -> str:
    code, out, err = cli(*argv)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _rezip(src: Path, dst: Path, edit) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "manifest.json":
                m = json.loads(data)
                edit(m)
                data = json.dumps(m).encode()
            zout.writestr(item.filename, data)
    return dst


def test_model_file_errors(model, tmp_path):
    data = demo_data()
    pcap = data / "demo.pcap"
    assert "does not exist" in _one_line("classify", "--model", tmp_path / "nope.dat", "--pcap", pcap)
    (tmp_path / "text.dat").write_text("just text\n")
    assert "not a netml model" in _one_line("classify", "--model", tmp_path / "text.dat", "--pcap", pcap)
    # a model file of the original netml (a pickle): refused, not unpickled
    (tmp_path / "orig.dat").write_bytes(pickle.dumps({"model": "OCSVM"}, protocol=4))
    assert "pickle" in _one_line("classify", "--model", tmp_path / "orig.dat", "--pcap", pcap)
    raw = model.read_bytes()
    (tmp_path / "cut.dat").write_bytes(raw[: len(raw) * 2 // 3])
    assert "truncated" in _one_line("classify", "--model", tmp_path / "cut.dat", "--pcap", pcap)

    def newer(m):
        m["format_version"] = 99
    line = _one_line("classify", "--model", _rezip(model, tmp_path / "new.dat", newer), "--pcap", pcap)
    assert "format version 99" in line and "upgrade" in line

    def missing_plugin(m):
        m["components"]["detector"].update(name="quantumsvm", distribution="netml-models-quantumsvm")
    line = _one_line("classify", "--model", _rezip(model, tmp_path / "plug.dat", missing_plugin), "--pcap", pcap)
    assert "quantumsvm" in line and "pip install netml-models-quantumsvm" in line


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_crafted_pickle_model_is_refused_without_running(model, tmp_path):
    data = demo_data()
    marker = tmp_path / "code-ran"
    npz = io.BytesIO()
    np.savez(npz, **{"detector.state.evil": np.array([_Payload(marker)], dtype=object)})
    with zipfile.ZipFile(model) as zin, zipfile.ZipFile(tmp_path / "evil.dat", "w") as zout:
        zout.writestr("manifest.json", zin.read("manifest.json"))
        zout.writestr("arrays.npz", npz.getvalue())
    line = _one_line("classify", "--model", tmp_path / "evil.dat", "--pcap", data / "demo.pcap")
    assert "refused" in line and "pickle" in line
    assert not marker.exists()


def _pcap(path: Path, n_packets: int) -> Path:
    """A classic pcap of ``n_packets`` UDP packets, each in its own flow (so no flow has 2 packets)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(n_packets):
        udp = struct.pack("!HHHH", 1000 + i, 53, 8 + 4, 0) + b"abcd"
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp
        frame = b"\x00\x11\x22\x33\x44\x55" + b"\x66\x77\x88\x99\xaa\xbb" + b"\x08\x00" + ip
        out.append(struct.pack("<IIII", 1_600_000_000 + i, 0, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def test_capture_errors(model, tmp_path):
    (tmp_path / "notes.txt").write_text("this is not a capture\n")
    line = _one_line("classify", "--model", model, "--pcap", tmp_path / "notes.txt")
    assert "not a pcap" in line
    line = _one_line("classify", "--model", model, "--pcap", _pcap(tmp_path / "lonely.pcap", 3))
    assert "no flows" in line and "lonely.pcap" in line
    line = _one_line("classify", "--model", model, "--pcap", tmp_path / "absent.pcap")
    assert "absent.pcap" in line


def test_damaged_component_state_is_one_line(model, tmp_path):
    data = demo_data()

    def drop_scaler_state(m):
        m["components"]["scaler"]["state"] = {}
    line = _one_line("classify", "--model", _rezip(model, tmp_path / "s.dat", drop_scaler_state), "--pcap",
                     data / "demo.pcap")
    assert "scaler" in line and "damaged" in line

    def bad_param(m):
        m["components"]["detector"]["params"]["nu"] = "lots"
    line = _one_line("classify", "--model", _rezip(model, tmp_path / "p.dat", bad_param), "--pcap",
                     data / "demo.pcap")
    assert "nu" in line


def test_output_is_the_0x_name_of_the_model_and_is_said_so(model, tmp_path):
    data = demo_data()
    code, out, err = cli("classify", "-o", model, "-p", data / "demo.pcap")
    assert code == 0 and err.splitlines()[0].startswith("netml: note: -o/--output names the model to read here")
    code, out, err = cli("classify", "-m", model, "-o", model, "-p", data / "demo.pcap")
    assert code == 2 and out == "" and "give the model once, with -m/--model" in err
    code, out, err = cli("classify", "-p", data / "demo.pcap")
    assert code == 2 and "missing -m/--model" in err


def test_table_names_the_capture_when_there_are_several(model):
    data = demo_data()
    code, out, err = cli("classify", "-m", model, "-p", data / "demo.pcap", "-p", data / "srcIP_10.42.0.119_anomaly.pcap",
                         "--report-all")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("VERDICT  CAPTURE")
    assert {line.split()[-1] for line in lines[1:]} == {"demo.pcap", "srcIP_10.42.0.119_anomaly.pcap"}
    code, out, _ = cli("classify", "-m", model, "-p", data / "demo.pcap")
    assert out.splitlines()[0].endswith("VERDICT")
