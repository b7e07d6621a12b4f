"""Alerts per host: the summary of anomalous flows by source or destination, and `classify --group`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netml_core.alerts import describe, host_alerts
from netml_core.flowmeter import FlowMeterSplitter

from helpers import cli, packet_table

S, A, R = 0x02, 0x10, 0x04


def _pt(rows):
    return packet_table(rows)


def test_a_scan_and_a_flood_each_become_one_line():
    scan = [(0.1 * k, "10.0.0.7", 40000, "10.0.0.1", k + 1, 6, S) for k in range(20)]
    refused = [(0.1 * k + 0.01, "10.0.0.1", k + 1, "10.0.0.7", 40000, 6, R | A) for k in range(0, 20, 4)]
    flood = [(5.0 + 0.01 * k, f"172.16.{k}.9", 1000 + k, "10.0.0.2", 80, 6, S) for k in range(30)]
    normal = [(1.0, "10.0.0.3", 5000, "10.0.0.4", 53, 17, 0), (1.1, "10.0.0.4", 53, "10.0.0.3", 5000, 17, 0)]
    flows = FlowMeterSplitter().split(_pt(scan + refused + flood + normal))
    assert len(flows) == 51
    is_normal = flows.dport == 53
    scores = np.where(is_normal, 0.0, 1.0) + np.arange(len(flows)) * 1e-3
    Z = np.zeros((len(flows), 2))
    Z[:, 1] = np.where(flows.dport == 80, -7.0, 3.0)
    by_src = host_alerts(flows, scores, ~is_normal, Z, ["a", "b"])
    scanner = [a for a in by_src if a["host"] == "10.0.0.7"][0]
    assert (scanner["flows"], scanner["dsts"], scanner["dports"]) == (20, 1, 20)
    assert scanner["unanswered"] == pytest.approx(15 / 20) and scanner["first"] == pytest.approx(0.0)
    assert scanner["last"] == pytest.approx(1.9) and (scanner["furthest"], scanner["furthest_z"]) == ("b", 3.0)
    assert len(by_src) == 31  # 30 spoofed sources of one flow each
    by_dst = host_alerts(flows, scores, ~is_normal, Z, ["a", "b"], by="dst")
    victim = [a for a in by_dst if a["host"] == "10.0.0.2"][0]
    assert (victim["flows"], victim["dsts"], victim["dports"], victim["unanswered"]) == (30, 30, 1, 1.0)
    assert victim["furthest_z"] == -7.0
    assert describe(victim).startswith("10.0.0.2: 30 anomalous flows from 30 addresses, 1 port in 0.3 s, "
                                       "100% unanswered; max score ")
    assert by_dst[0]["max_score"] == max(a["max_score"] for a in by_dst)
    # by="host": each flow under the end with more anomalous flows: the scanner and the victim, no more
    by_host = host_alerts(flows, scores, ~is_normal, Z, ["a", "b"], by="host")
    assert [(a["by"], a["host"], a["flows"], a["dsts"]) for a in by_host] == [
        ("dst", "10.0.0.2", 30, 30), ("src", "10.0.0.7", 20, 1)]
    assert by_host[0]["max_score"] > by_host[1]["max_score"]
    assert host_alerts(flows, scores, np.zeros(len(flows), dtype=bool)) == []


def test_classify_group_host_and_dst_on_the_demo(tmp_path):
    code, _, err = cli("demo", tmp_path / "d")
    assert code == 0, err
    code, _, err = cli("learn", "-p", tmp_path / "d" / "demo.pcap", "-l", tmp_path / "d" / "demo.csv", "--context",
                       "--algorithm", "knn", "-o", tmp_path / "m.netml")
    assert code == 0, err
    code, out, err = cli("classify", "-m", tmp_path / "m.netml", "-p", tmp_path / "d" / "demo.pcap",
                         "--group", "host", "--format", "jsonl")
    assert code == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    # one line for the scanner (each flow under its source), one for the flood's victim (under it,
    # not one per forged source), and at most a few stray flows
    scanner = [a for a in alerts if a["host"] == "192.168.10.5"][0]
    assert scanner["by"] == "src" and scanner["dsts"] >= 150 and scanner["dports"] == 2, scanner
    victim = [a for a in alerts if a["host"] == "192.168.10.50"][0]
    assert victim["by"] == "dst" and victim["dsts"] >= 250 and victim["dports"] == 1, victim
    assert len(alerts) <= 6, alerts
    assert sum(a["flows"] for a in alerts) == int(err.split()[4])  # every anomaly is in one host line
    code, out, err = cli("classify", "-m", tmp_path / "m.netml", "-p", tmp_path / "d" / "demo.pcap", "--group", "src")
    assert code == 0, err
    assert len(out.splitlines()) > 250  # by source, each forged source of the flood is a line
    code, out, err = cli("classify", "-m", tmp_path / "m.netml", "-p", tmp_path / "d" / "demo.pcap",
                         "--group", "dst")
    assert code == 0, err
    first = out.splitlines()[0]
    assert "192.168.10.50: " in first and " anomalous flows from " in first and "furthest from training: " in first
