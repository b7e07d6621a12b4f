"""`netml demo`: the synthetic capture is valid, deterministic, fair, and the default learn finds the attacks."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import dpkt
import numpy as np
import pytest

from netml_core import cli
from netml_core.demo import CSV_COLUMNS, LABELS, make_demo
from netml_core.labels import CsvLabels
from netml_core.metrics import roc_auc
from netml_core.packets import words_to_ip
from netml_core.pipeline import Pipeline
from netml_core.pcapwriter import MAGIC_NSEC, write_pcap_columns, write_pcap_frames
from netml_core.readers.native import NativeReader
from netml_core.splitter import NetmlFlowSplitter

# figures of the default seed (a change to the generator must update them on purpose)
N_PACKETS, N_TCP, N_UDP = 22668, 19625, 3043
N_ROWS = 3809
N_FLOWS, N_ANOMALOUS_FLOWS = 2138, 643


def _main(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "first-run"  # created by the command
    code, out, err = _main("demo", folder)
    assert code == 0, err
    assert f"({N_PACKETS} packets: {N_TCP} TCP, {N_UDP} UDP)" in out
    assert f"next: netml learn --pcap {folder / 'demo.pcap'} --label {folder / 'demo.csv'} --context" in out
    return folder


@pytest.fixture(scope="module")
def flows(demo_dir):
    packets = NativeReader().read(demo_dir / "demo.pcap")
    return NetmlFlowSplitter().fit(packets).split(packets)


def test_native_reader_reads_every_packet(demo_dir):
    packets = NativeReader().read(demo_dir / "demo.pcap")
    assert len(packets) == packets.records == N_PACKETS
    assert packets.counts() == {"ipv4_tcp": N_TCP, "ipv4_udp": N_UDP, "ipv6_tcp": 0, "ipv6_udp": 0}
    assert packets.skipped == {} and packets.damage == []
    assert packets.link_types == {1: N_PACKETS}
    assert np.all(np.diff(packets.ts_ns) >= 0)  # written in time order
    assert packets.ts[0] >= 1_700_000_000 and packets.ts[-1] - packets.ts[0] < 300


@pytest.mark.parametrize("reader", ["dpkt", "scapy"])
def test_reader_plugins_agree_with_native(demo_dir, reader):
    from netml_core.packets import COLUMNS
    from netml_core.registry import get_registry

    native = NativeReader().read(demo_dir / "demo.pcap")
    other = get_registry().create("reader", reader).read(str(demo_dir / "demo.pcap"))
    assert len(other) == N_PACKETS
    for column in COLUMNS:
        assert np.array_equal(getattr(other, column), getattr(native, column)), column


def test_dpkt_reads_the_same_packets(demo_dir):
    native = NativeReader().read(demo_dir / "demo.pcap")
    lengths, ttls, bad_sum = [], [], 0
    with open(demo_dir / "demo.pcap", "rb") as fh:
        for _, frame in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(frame).data
            lengths.append(len(frame))
            ttls.append(ip.ttl)
            stored = ip.sum
            ip.sum = 0
            bad_sum += dpkt.ip.IP(bytes(ip)).sum != stored  # dpkt recomputes the checksum on pack
    assert len(lengths) == N_PACKETS
    assert np.array_equal(np.array(lengths), native.wire_len)
    assert np.array_equal(np.array(ttls), native.ttl)
    assert bad_sum == 0


def test_tcp_streams_are_consistent(demo_dir):
    """Sequence numbers advance by payload (SYN/FIN count one, retransmitted SYNs repeat the ISN)
    and a SYN/ACK acknowledges the client's ISN + 1."""
    streams: dict[tuple, list] = {}
    with open(demo_dir / "demo.pcap", "rb") as fh:
        for _, frame in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(frame).data
            if isinstance(ip.data, dpkt.tcp.TCP):
                t = ip.data
                streams.setdefault((ip.src, ip.dst, t.sport, t.dport), []).append((t.seq, t.ack, t.flags, len(t.data)))
    checked = handshakes = 0
    for key, pkts in streams.items():
        for a, b in zip(pkts, pkts[1:]):
            if b[2] & dpkt.tcp.TH_SYN:
                assert b[0] == a[0], key  # retransmission
            else:
                assert b[0] == (a[0] + a[3] + bool(a[2] & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN))) % 2**32, key
            checked += 1
        first = pkts[0]
        if first[2] == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK:
            reverse = streams.get((key[1], key[0], key[3], key[2]))
            if reverse and reverse[0][2] == dpkt.tcp.TH_SYN:
                assert first[1] == (reverse[0][0] + 1) % 2**32
                handshakes += 1
    assert checked > 10_000 and handshakes > 300


def test_scapy_sees_valid_transport_checksums(demo_dir):
    from scapy.all import IP, PcapReader

    checked = 0
    with PcapReader(str(demo_dir / "demo.pcap")) as reader:
        for pkt in reader:
            l4 = pkt[IP].payload
            stored = l4.chksum
            fresh = pkt.__class__(bytes(pkt))
            del fresh[IP].payload.chksum
            fresh = fresh.__class__(bytes(fresh))
            assert fresh[IP].payload.chksum == stored, pkt.summary()
            checked += 1
            if checked == 400:
                break
    assert checked == 400


def test_same_seed_same_bytes_other_seed_other_capture(demo_dir, tmp_path):
    again = make_demo(tmp_path / "again")
    assert (tmp_path / "again" / "demo.pcap").read_bytes() == (demo_dir / "demo.pcap").read_bytes()
    assert (tmp_path / "again" / "demo.csv").read_bytes() == (demo_dir / "demo.csv").read_bytes()
    assert again["packets"] == N_PACKETS and again["rows"] == N_ROWS
    other = make_demo(tmp_path / "other", seed=1)
    assert other["packets"] != N_PACKETS


def test_label_csv_has_cicids_columns_and_every_kind(demo_dir):
    with open(demo_dir / "demo.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == CSV_COLUMNS
    assert " Source IP" in rows[0] and " Label" in rows[0] and rows[0][0] == "Flow ID"
    body = rows[1:]
    assert len(body) == N_ROWS
    kinds = {r[-1] for r in body}
    assert kinds == set(LABELS)
    # both directions of a conversation carry the same label and the same Flow ID
    by_id: dict[str, set] = {}
    for r in body:
        by_id.setdefault(r[0], set()).add(r[-1])
    assert all(len(v) == 1 for v in by_id.values())


def test_every_flow_is_labelled_through_the_label_reader(demo_dir, flows):
    labels = CsvLabels(str(demo_dir / "demo.csv")).labels_for(flows)
    assert len(flows) == N_FLOWS
    assert np.count_nonzero(labels == -1) == 0
    assert np.count_nonzero(labels == 1) == N_ANOMALOUS_FLOWS


def test_no_single_header_field_separates_the_classes(demo_dir, flows):
    labels = CsvLabels(str(demo_dir / "demo.csv")).labels_for(flows)
    first = flows.order[flows.offsets[:-1]]
    ttl = flows.packets.ttl[first]
    service = np.minimum(flows.sport, flows.dport)
    normal, anomalous = labels == 0, labels == 1
    for name, field in (("ttl", ttl), ("service port", service), ("protocol", flows.proto)):
        shared = np.isin(field[anomalous], field[normal])
        assert shared.mean() >= 0.8, f"{name} alone separates {1 - shared.mean():.0%} of the anomalies"
    # the attacks ride on ports that normal traffic uses too
    for port in (53, 80, 443):
        assert np.any(normal & (service == port)) and np.any(anomalous & (service == port))


def test_learn_with_context_finds_the_attacks(demo_dir, tmp_path):
    code, out, err = _main("learn", "--pcap", demo_dir / "demo.pcap", "--label", demo_dir / "demo.csv", "--context",
                           "--output", tmp_path / "model.dat", "--report", tmp_path / "report")
    assert code == 0, err
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["roc_auc"] >= 0.97, metrics
    assert "feature=flowstats+context" in out and "algorithm=knn" in out  # knn: the context default


def _kind_auc(demo_dir, pipe) -> dict[str, float]:
    """ROC AUC of each attack kind's flows against the normal flows, trained on the normal flows."""
    ex = pipe.fit_extract([demo_dir / "demo.pcap"], [CsvLabels(str(demo_dir / "demo.csv"))])
    pipe.fit_detector(ex.X[ex.y == 0], random_state=42)
    scores = pipe.score(ex.X)
    kinds = _flow_kinds(demo_dir, ex.flows)
    normal = scores[kinds == "BENIGN"]
    return {kind: roc_auc(np.r_[np.zeros(len(normal)), np.ones(np.count_nonzero(kinds == kind))],
                          np.r_[normal, scores[kinds == kind]]) for kind in ("PortScan", "DoS-SYNflood")}


def _flow_kinds(demo_dir, flows) -> np.ndarray:
    table = {}
    with open(demo_dir / "demo.csv", newline="") as fh:
        for row in list(csv.reader(fh))[1:]:
            table[(row[1].strip(), int(row[2]), row[3].strip(), int(row[4]))] = row[-1].strip()
    src, dst = words_to_ip(flows.src), words_to_ip(flows.dst)
    return np.array([table.get((s, int(sp), d, int(dp)), "?") for s, sp, d, dp in
                     zip(src, flows.sport, dst, flows.dport)], dtype=object)


def test_scan_and_flood_need_host_context(demo_dir):
    """Each scan probe and flood SYN is shaped like a normal failed connection: per-flow features
    rank them little or no better than chance; their hosts' recent flows give them away."""
    alone = _kind_auc(demo_dir, Pipeline(feature="flowstats", detector="knn"))
    with_context = _kind_auc(demo_dir, Pipeline(feature="context", feature_params={"base": "flowstats"},
                                                detector="knn"))
    assert alone["PortScan"] < 0.6 and alone["DoS-SYNflood"] < 0.85, alone
    assert min(with_context.values()) >= 0.97, with_context


def test_demo_into_a_file_is_one_line_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    code, out, err = _main("demo", target)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- the pcap writer -----------------------------------------------------------------------------

def _ip(text):
    a, b, c, d = map(int, text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def test_column_writer_snaplen_and_nanoseconds(tmp_path):
    path = tmp_path / "cut.pcap"
    ts = np.array([1_600_000_000_000_000_001, 1_600_000_000_500_000_002])
    write_pcap_columns(path, ts, [_ip("10.0.0.1")] * 2, [_ip("10.0.0.2")] * 2, [1000, 53], [53, 1000],
                       [17, 17], [0, 0], [64, 63], [1000, 80], nanosecond=True, snaplen=60)
    raw = path.read_bytes()
    assert int.from_bytes(raw[:4], "little") == MAGIC_NSEC
    packets = NativeReader().read(path)
    assert packets.ts_ns.tolist() == ts.tolist()
    assert packets.wire_len.tolist() == [1000, 80]  # original length kept when the record is cut
    assert packets.ttl.tolist() == [64, 63] and packets.sport.tolist() == [1000, 53]
    assert len(raw) == 24 + 2 * 16 + 60 + 60


def test_frame_writer_round_trip(tmp_path):
    frames = [bytes(dpkt.ethernet.Ethernet(data=dpkt.ip.IP(p=17, data=dpkt.udp.UDP(sport=5, dport=7, data=b"hi")))),
              bytes(range(60))]
    write_pcap_frames(tmp_path / "f.pcap", [10**18, 10**18 + 1000], frames)
    with open(tmp_path / "f.pcap", "rb") as fh:
        got = [(ts, buf) for ts, buf in dpkt.pcap.Reader(fh)]
    assert [b for _, b in got] == frames
    assert got[1][0] - got[0][0] == pytest.approx(1e-6, abs=1e-7)
