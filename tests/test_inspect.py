"""``netml inspect``: run the command, assert the numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

KEYS = {"format", "link_types", "packets", "ipv4_tcp", "ipv4_udp", "ipv6_tcp", "ipv6_udp", "skipped",
        "damage", "first_ts", "last_ts", "flows"}


@pytest.fixture(scope="module")
def demo(shared_dir):
    return shared_dir / "data" / "netml-demo" / "demo.pcap"


@pytest.mark.parametrize("reader", ["native", "dpkt", "scapy"])
def test_inspect_json_on_demo(run_cli, demo, reader):
    r = run_cli("inspect", "--reader", reader, "--json", demo)
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert KEYS <= set(info)
    assert info["format"] == "pcapng" and info["link_types"] == {"1": 6000}
    assert (info["packets"], info["ipv4_tcp"], info["ipv4_udp"], info["ipv6_tcp"], info["ipv6_udp"]) == (6000, 3386, 2598, 0, 0)
    assert info["skipped"] == {"not_tcp_udp": 16} and info["damage"] == []
    assert info["first_ts"] == 1499083689.815552 and info["last_ts"] == 1499083863.012087
    assert info["flows"] == 188  # the original netml's 188 flows before interval splitting
    assert info["reader"] == reader and r.stderr == ""


def test_inspect_text_on_corpus_file(run_cli, shared_dir):
    path = shared_dir / "data" / "corpus" / "files" / "nDPI__dns_fragmented.pcap"
    r = run_cli("inspect", path)
    assert r.exit_code == 0
    lines = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)
    assert lines["Format"].strip() == "pcap"
    assert lines["IPv4 TCP"].strip() == "10" and lines["IPv6 UDP"].strip() == "31"
    assert "fragment" in lines["Skipped"]


def test_inspect_reports_damage_once_and_exits_zero(run_cli, shared_dir):
    path = shared_dir / "data" / "corpus" / "files" / "PcapPlusPlus__fuzzregr_igmplayer"
    r = run_cli("inspect", "--json", path)
    assert r.exit_code == 0
    info = json.loads(r.stdout)
    assert info["packets"] == 2 and info["skipped"]["absurd_caplen"] == 1
    assert len(info["damage"]) == 1
    warn = [line for line in r.stderr.splitlines() if line]
    assert len(warn) == 1 and warn[0].startswith("netml: ") and "damaged capture" in warn[0]


def test_inspect_not_a_capture_is_one_line(run_cli, tmp_path):
    p = tmp_path / "notes.pcap"
    p.write_text("just text\n")
    r = run_cli("inspect", p)
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"netml: error: {p}: not a pcap or pcapng capture (starts with 6a 75 73 74)"]
    r = run_cli("inspect", "--reader", "nosuch", p)
    assert r.exit_code == 2 and "unknown reader 'nosuch'" in r.stderr and "native" in r.stderr


def test_inspect_reads_stdin(demo):
    out = subprocess.run([sys.executable, "-m", "netml_core.cli", "inspect", "--json", "-"],
                         stdin=open(demo, "rb"), capture_output=True, check=True)
    info = json.loads(out.stdout)
    assert info["source"] == "<stdin>" and info["packets"] == 6000 and info["flows"] == 188


def _corpus(shared_dir):
    data = shared_dir / "data"
    return sorted((data / "corpus" / "files").iterdir()) + sorted((data / "netml-demo").glob("*.pcap*"))


def _describe_or_error(fn):
    from netml_core.errors import NetmlError

    try:
        return fn()
    except NetmlError as exc:
        return f"error: {exc}"


def test_inspect_streamed_equals_whole_capture_on_corpus(shared_dir):
    """Batch by batch (7 packets, the default batch) and the whole capture read at once give the
    same --json object and text on every corpus capture, damaged and multi-link-type ones included."""
    from netml_core.commands.inspect import _text
    from netml_core.inspection import describe, describe_tables
    from netml_core.registry import get_registry

    reader = get_registry().create("reader", "native")
    files = _corpus(shared_dir)
    damaged = multi_link = errors = 0
    for path in files:
        whole = _describe_or_error(lambda: describe_tables([reader.read(path)], "native"))
        for batch in (7, 65_536):
            streamed = _describe_or_error(lambda: describe(reader, path, "native", batch_packets=batch))
            assert streamed == whole, (path.name, batch)
            if isinstance(whole, dict):
                assert _text(streamed) == _text(whole)
        if isinstance(whole, str):
            errors += 1
            continue
        damaged += bool(whole["damage"])
        multi_link += len(whole["link_types"]) > 1
    assert len(files) >= 100 and damaged >= 10 and multi_link >= 2 and errors < 10


def test_flow_key_set_merges_batches_exactly():
    """Keys added in many small batches (with repeats across batches) count as np.unique of all."""
    from netml_core.segments import RowSet

    rng = np.random.default_rng(7)
    rows = rng.integers(0, 50, (200_000, 5)).astype(np.uint64)
    rows[:, 1:] = rows[:, 1:] % 3
    s = RowSet(5)
    for at in range(0, len(rows), 1000):
        s.add(np.unique(rows[at:at + 1000], axis=0))
    assert len(s.unique()) == len(np.unique(rows, axis=0))
