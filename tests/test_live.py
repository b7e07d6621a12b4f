"""Live input: a pipe hands over its records when the writer pauses, ``classify`` prints each
flow's verdict then (every format), and ``--follow`` reads a file as it is written and rotated.

Deadlines below only stop a hung test; what is asserted are counts, keys and scores.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from netml_core.pipeline import Pipeline
from netml_core.readers.live import TICK, LiveStream
from netml_core.readers.native import NativeReader

from helpers import SHARED, need

EVAL = SHARED / "data" / "evalset-dev" / "files"
CAPTURE = EVAL / "blend__demo+masscan-udp_test.pcap"  # classic pcap, 2567 packets over 3 minutes
DEADLINE = 60.0


def records(data: bytes) -> list[int]:
    """Byte offset of each record of a little-endian classic pcap, and the end."""
    offs, off = [], 24
    while off < len(data):
        offs.append(off)
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    return offs + [off]


def pcap_bytes(data: bytes, offs: list[int], lo: int, hi: int) -> bytes:
    """Header plus records ``lo:hi``."""
    return data[:24] + data[offs[lo]:offs[hi]]


@pytest.fixture(scope="module")
def data():
    return need(CAPTURE).read_bytes()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model whose flows end after 1 s without a packet (short enough for a live test)."""
    path = tmp_path_factory.mktemp("live") / "m.netml"
    pipe = Pipeline(flow_splitter_params={"idle_timeout": 1.0, "active_timeout": 10.0})
    ex = pipe.fit_extract([str(need(EVAL / "blend__demo_train.pcap"))])
    pipe.fit_detector(ex.X, fpr=0.01, random_state=42)
    pipe.save(path)
    return path


def _keys(result_or_rows) -> set:
    """(start, src, sport, dst, dport, score) of each flow, from a Classified or jsonl rows."""
    if isinstance(result_or_rows, list):
        return {(round(r["start"], 6), r["src"], r["sport"], r["dst"], r["dport"], r["score"]) for r in result_or_rows}
    from netml_core.packets import words_to_ip

    f = result_or_rows.flows
    return set(zip(np.round(f.first_ts, 6).tolist(), words_to_ip(f.src), f.sport.tolist(), words_to_ip(f.dst),
                   f.dport.tolist(), result_or_rows.scores.tolist()))


def test_a_pipe_hands_over_its_records_when_the_writer_pauses(data):
    offs = records(data)
    k = 700
    read_k = threading.Event()
    n_k = len(NativeReader().read(_file_like(pcap_bytes(data, offs, 0, k))))
    r, w = os.pipe()

    def writer():
        with os.fdopen(w, "wb", buffering=0) as out:
            out.write(pcap_bytes(data, offs, 0, k))
            read_k.wait(DEADLINE)  # an 8 MiB reader would never see these 700 records before the rest
            cut = offs[k + 10] + 20  # the next write ends inside a record: it waits for its remainder
            out.write(data[offs[k]:cut])
            time.sleep(4 * TICK)
            out.write(data[cut:])

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    batches, ticks, got = [], 0, 0
    for batch in NativeReader().iter_batches(LiveStream(r, "pipe"), 1_000_000):
        if len(batch) == 0:
            ticks += 1
        batches.append(batch)
        got += len(batch)
        if got >= n_k and not read_k.is_set():
            assert got == n_k and ticks == 0
            read_k.set()
    thread.join()
    os.close(r)
    whole = NativeReader().read(str(CAPTURE))
    assert got == len(whole) and whole.records == len(offs) - 1
    joined = [b for b in batches if len(b)]
    assert np.array_equal(np.concatenate([b.ts_ns for b in joined]), whole.ts_ns)
    assert np.array_equal(np.concatenate([b.src for b in joined]), whole.src)
    assert ticks >= 1  # the silence after the cut record was reported, and the record completed after it


class _Classify:
    """``netml classify`` in a subprocess with its stdout lines collected as they come."""

    def __init__(self, *argv, stdin=subprocess.PIPE):
        self.proc = subprocess.Popen([sys.executable, "-m", "netml_core.cli", "classify", *map(str, argv)],
                                     stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode())

    def wait_lines(self, n: int) -> int:
        end = time.monotonic() + DEADLINE
        while len(self.lines) < n and time.monotonic() < end and self.proc.poll() is None:
            time.sleep(0.05)
        return len(self.lines)

    def end(self, sig=None):
        if sig is not None:
            self.proc.send_signal(sig)
        elif self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(DEADLINE)
        self._t.join(DEADLINE)
        return self.proc.returncode, self.proc.stderr.read().decode()


def test_classify_prints_a_quiet_links_flows_on_the_wall_clock(model, data, tmp_path):
    """The writer stops after 1500 packets: every flow of them is printed (their idle timeout
    passes on the wall clock), with the verdicts classify gives that prefix as a whole capture."""
    offs = records(data)
    prefix = tmp_path / "prefix.pcap"
    prefix.write_bytes(pcap_bytes(data, offs, 0, 1500))
    pipe, _ = Pipeline.load(model)
    expected = _keys(pipe.classify(str(prefix)))
    run = _Classify("-m", model, "--report-all", "--format", "jsonl")
    run.proc.stdin.write(prefix.read_bytes())
    run.proc.stdin.flush()
    assert run.wait_lines(len(expected)) == len(expected) > 500
    assert _keys([json.loads(line) for line in run.lines]) == expected
    code, err = run.end()
    assert code == 0, err


@pytest.mark.parametrize("fmt, header", [("table", 1), ("csv", 1), ("jsonl", 0)])
def test_without_the_wall_clock_only_packet_times_end_flows(model, data, fmt, header):
    """Each format prints the flows ended by the packets so far while the writer pauses, and the
    whole capture's flows once it is closed."""
    offs = records(data)
    pipe, _ = Pipeline.load(model)
    state = pipe.flow_splitter.stream()
    ended = len(state.push(pipe.read(_file_like(pcap_bytes(data, offs, 0, 1500)))))
    whole = len(pipe.classify(str(CAPTURE)).flows)
    run = _Classify("-m", model, "--report-all", "--format", fmt, "--no-wall-clock")
    run.proc.stdin.write(pcap_bytes(data, offs, 0, 1500))
    run.proc.stdin.flush()
    assert run.wait_lines(header + ended) == header + ended > 500
    time.sleep(6 * TICK + 1.0)  # longer than the idle timeout: still nothing more without the wall clock
    assert len(run.lines) == header + ended
    run.proc.stdin.write(data[offs[1500]:])
    code, err = run.end()
    assert code == 0, err
    assert len(run.lines) == header + whole and f"netml classify: {whole} flows" in err


def _file_like(b: bytes):
    import io

    return io.BytesIO(b)


def _grow(path, chunks, pause=0.05):
    with open(path, "ab") as fh:
        for c in chunks:
            fh.write(c)
            fh.flush()
            time.sleep(pause)


def _pieces(b: bytes, n: int) -> list[bytes]:
    step = -(-len(b) // n)
    return [b[i:i + step] for i in range(0, len(b), step)]  # cuts fall inside records


@pytest.mark.parametrize("rotation", ["rename", "truncate"])
def test_follow_reads_a_growing_rotated_file_like_the_whole_capture(model, data, tmp_path, rotation):
    """The capture is written slowly in two files (the second after a rotation: moved away, or
    truncated in place); --follow gives every flow of the whole capture, flows across the two files
    included, and SIGTERM ends it with the open flows printed and exit 0."""
    offs = records(data)
    path = tmp_path / "live.pcap"
    first, second = pcap_bytes(data, offs, 0, 1200), pcap_bytes(data, offs, 1200, len(offs) - 1)
    pipe, _ = Pipeline.load(model)
    expected = _keys(pipe.classify(str(CAPTURE)))
    by_packets = len(pipe.flow_splitter.stream().push(pipe.read(str(CAPTURE))))
    path.write_bytes(first[:100])  # the header and part of a record
    run = _Classify("-m", model, "--report-all", "--format", "jsonl", "--no-wall-clock", "--follow", path,
                    stdin=subprocess.DEVNULL)
    _grow(path, _pieces(first[100:], 8))
    from_first = len(pipe.flow_splitter.stream().push(pipe.read(_file_like(first))))
    assert run.wait_lines(from_first) == from_first > 100  # the first file is being followed
    if rotation == "rename":
        os.rename(path, tmp_path / "live.pcap.1")
        time.sleep(0.2)
        _grow(path, _pieces(second, 8))
    else:
        time.sleep(0.3)
        path.write_bytes(b"")  # copytruncate: same file, shorter
        time.sleep(0.5)
        _grow(path, _pieces(second, 8))
    got = run.wait_lines(by_packets)
    code, err = run.end(signal.SIGTERM)
    assert got == by_packets, err
    assert code == 0, err
    assert _keys([json.loads(line) for line in run.lines]) == expected
    assert f"netml classify: {len(expected)} flows" in err and "interrupted" in err
