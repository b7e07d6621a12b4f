"""Label sources: the CICIDS2017 CSV matched like netml's label_flows, constant labels, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from netml_core.errors import NetmlError
from netml_core.labels import ConstantLabels, CsvLabels, LabelError
from netml_core.packets import PacketTable, ip_to_words
from netml_core.readers.native import NativeReader
from netml_core.splitter import NetmlFlowSplitter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo" / "demo.pcap"
CSV = SHARED / "data" / "netml-demo" / "demo.csv"
REF = SHARED / "reference" / "netml-0.7.1"

HEADER = "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, Label\n"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"shared data missing: {path}", pytrace=False)
    return path


def _flows(keys):
    """Two packets per (src, sport, dst, dport, proto) key, one flow each, in the given order."""
    rows = [k for k in keys for _ in range(2)]
    n = len(rows)
    pt = PacketTable(
        ts_ns=np.arange(n) * 1000, wire_len=np.full(n, 60), ip_version=[6 if ":" in r[0] else 4 for r in rows],
        proto=[r[4] for r in rows], src=ip_to_words([r[0] for r in rows]), dst=ip_to_words([r[2] for r in rows]),
        sport=[r[1] for r in rows], dport=[r[3] for r in rows], tcp_flags=np.zeros(n), ttl=np.full(n, 64))
    return NetmlFlowSplitter(interval=1.0).split(pt)


def test_demo_csv_labels_the_88_flows_netml_labelled():
    lab = CsvLabels(_need(CSV))
    assert (lab.rows, lab.bad_rows, lab.n_normal, lab.n_anomaly) == (5020, 0, 4518, 502)
    packets = NativeReader().read(str(_need(DEMO)))
    flows = NetmlFlowSplitter().fit_split(packets)
    y = lab.labels_for(flows)
    assert y.dtype == np.int64 and len(y) == 196
    assert (int((y == -1).sum()), int((y == 0).sum()), int((y == 1).sum())) == (108, 73, 15)
    assert y[y >= 0].tolist() == np.load(_need(REF / "IAT_labels.npy")).tolist()


def test_matching_is_directional_and_the_last_row_wins(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text(HEADER + "\n".join([
        "a, 10.0.0.1, 1000, 10.0.0.2, 80, 6, t, BENIGN",
        "b, 10.0.0.1, 1000, 10.0.0.2, 80, 6, t, DoS Hulk",   # same 5-tuple: overrides
        "c, 10.0.0.3, 53, 10.0.0.4, 5353, 17, t, benign",
        "d, 10.0.0.4, 5353, 10.0.0.3, 53, 17, t, Bot",        # reverse direction: its own key
        "e, 2001:db8::1, 443, 2001:db8::2, 50000, 6, t, normal",
        "f, 10.0.0.9, x, 10.0.0.2, 80, 6, t, BENIGN",          # bad port: skipped, counted
        "g, 10.0.0.9, Infinity, 10.0.0.2, 80, 6, t, BENIGN",   # another one
        "h, 10.0.0.9, 81.0, 10.0.0.2, 80, 6, t, BENIGN",       # '81.0' reads as 81, as pandas had it
        ",,,,,,,",                                              # blank CICIDS tail row: ignored
    ]) + "\n")
    lab = CsvLabels(csv)
    assert (lab.rows, lab.bad_rows, lab.n_keys) == (8, 2, 5)
    assert (lab.n_normal, lab.n_anomaly) == (4, 2)
    flows = _flows([
        ("10.0.0.1", 1000, "10.0.0.2", 80, 6),
        ("10.0.0.3", 53, "10.0.0.4", 5353, 17),
        ("10.0.0.4", 5353, "10.0.0.3", 53, 17),
        ("10.0.0.2", 80, "10.0.0.1", 1000, 6),    # reverse of the first: not in the CSV
        ("10.0.0.1", 1000, "10.0.0.2", 80, 17),   # other protocol
        ("2001:db8:0:0::1", 443, "2001:db8::2", 50000, 6),
        ("10.0.0.9", 81, "10.0.0.2", 80, 6),
    ])
    assert lab.labels_for(flows).tolist() == [1, 0, 1, -1, -1, 0, 0]


def test_constant_labels():
    flows = _flows([("1.1.1.1", 1, "2.2.2.2", 2, 6), ("1.1.1.1", 3, "2.2.2.2", 2, 6)])
    assert ConstantLabels(1).labels_for(flows).tolist() == [1, 1]
    assert ConstantLabels(0).labels_for(flows).dtype == np.int64
    with pytest.raises(LabelError):
        ConstantLabels(2)


@pytest.mark.parametrize("content, words", [
    (None, "cannot read label file"),
    (b"", "is empty"),
    (b"Flow ID, Source IP, Label\nx,1.2.3.4,BENIGN\n", "missing column(s) ' Destination IP', ' Source Port'"),
    (HEADER.encode(), "has a header but no rows"),
    (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(range(256)) * 4, "not"),
    (HEADER.encode() + b"a, 1.2.3.4, 1, 5.6.7.8, 2, 6, t, BE\x00NIGN\n", "not a CSV (binary content)"),
    (HEADER.encode() + b"a, not-an-ip, 1, 5.6.7.8, 2, 6, t, BENIGN\n", "none of its 1 rows"),
])
def test_bad_label_files_are_one_line_errors(tmp_path, content, words):
    path = tmp_path / "labels.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LabelError) as exc:
        CsvLabels(path)
    msg = str(exc.value)
    assert isinstance(exc.value, NetmlError) and words in msg and "\n" not in msg


def test_a_capture_is_not_a_label_file():
    with pytest.raises(LabelError, match="demo.pcap is not a CSV"):
        CsvLabels(_need(DEMO))
    text = SHARED / "reference" / "netml-0.7.1" / "README.md"
    with pytest.raises(LabelError, match="README.md is not a CICIDS2017 flow CSV: missing column"):
        CsvLabels(_need(text))


def test_quoted_csv_is_parsed_as_csv(tmp_path):
    csv = tmp_path / "quoted.csv"
    csv.write_text(HEADER + 'a,10.0.0.1,1000,10.0.0.2,80,6,"7/7/2017 9:00, am","Web Attack, XSS"\n'
                   '"b",10.0.0.3,53,10.0.0.4,5353,17,t,"BENIGN"\n')
    lab = CsvLabels(csv)
    flows = _flows([("10.0.0.1", 1000, "10.0.0.2", 80, 6), ("10.0.0.3", 53, "10.0.0.4", 5353, 17)])
    assert (lab.rows, lab.bad_rows) == (2, 0) and lab.labels_for(flows).tolist() == [1, 0]
