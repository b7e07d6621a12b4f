"""``netml inspect``: run the command, assert the numbers."""

from __future__ import annotations

import json
import subprocess
import sys

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
