"""Every reference matrix of netml 0.7.1 on the demo capture, reproduced through NativeReader.

netml took packet sizes from scapy's ``len(pkt)``, i.e. after re-serialising the packet, and scapy
re-encodes some LDAP/Kerberos messages shorter than they were on the wire. Timing features (IAT,
FFT-IAT, SAMP_NUM, IAT + header) match as read. Size-based ones match exactly once the capture's
sizes are replaced by scapy's; with the true wire lengths only the flows holding such a packet
differ, and only in their size values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from netml_core.labels import CsvLabels
from netml_core.packets import COLUMNS, PacketTable, words_to_ip
from netml_core.readers.native import NativeReader
from netml_core.registry import get_registry
from netml_core.splitter import NetmlFlowSplitter

from helpers import need

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo" / "demo.pcap"
CSV = SHARED / "data" / "netml-demo" / "demo.csv"
REF = SHARED / "reference" / "netml-0.7.1"

CONFIGS = {  # reference name -> (feature, params)
    "IAT": ("iat", {}),
    "SIZE": ("size", {}),
    "IAT_SIZE": ("iat_size", {}),
    "STATS": ("stats", {}),
    "SAMP_NUM": ("samp_num", {}),
    "SAMP_SIZE": ("samp_size", {}),
    "FFT-IAT": ("iat", {"fft": True}),
    "IAT_header": ("iat", {"header": True}),
}
SIZE_BASED = {"SIZE", "IAT_SIZE", "STATS", "SAMP_SIZE"}


@pytest.fixture(scope="module")
def demo():
    return NativeReader().read(str(need(DEMO)))


@pytest.fixture(scope="module")
def scapy_sized(demo):
    """The demo packets with netml's sizes: scapy's len(pkt) of each TCP/UDP packet."""
    from scapy.all import IP, TCP, UDP, PcapNgReader

    with PcapNgReader(str(DEMO)) as rd:
        lengths = np.array([len(p) for p in rd if IP in p and (TCP in p or UDP in p)])
    assert len(lengths) == len(demo)
    return PacketTable(**{c: getattr(demo, c) for c in COLUMNS if c != "wire_len"}, wire_len=lengths)


def _labelled_flows(packets):
    """netml's order of operations: pcap2flows(q_interval=0.9), label_flows(csv), drop unmatched."""
    sp = NetmlFlowSplitter(q_interval=0.9, flow_pkts_thres=2).fit(packets)
    flows = sp.split(packets)
    y = CsvLabels(need(CSV)).labels_for(flows)
    return sp, flows.subset(y >= 0), y[y >= 0], int((y < 0).sum())


def _extract(packets, config):
    name, params = CONFIGS[config]
    feature = get_registry().create("feature", name, dict(params))
    _, flows, y, _ = _labelled_flows(packets)
    return feature.fit(flows), feature.transform(flows), y, flows


def test_labelled_flows_and_labels_match_netml(demo):
    sp, flows, y, dropped = _labelled_flows(demo)
    assert sp.interval_ == pytest.approx(5.776507735252384, rel=1e-9)
    assert (len(flows), dropped) == (88, 196 - 88)
    keys = [[a, b, int(c), int(d), int(e)] for a, b, c, d, e in
            zip(words_to_ip(flows.src), words_to_ip(flows.dst), flows.sport, flows.dport, flows.proto)]
    assert keys == json.loads((REF / "fids_feature_order.json").read_text())
    assert y.tolist() == np.load(REF / "IAT_labels.npy").tolist()
    assert (int((y == 0).sum()), int((y == 1).sum())) == (73, 15)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_reference_matrix_reproduced(config, demo, scapy_sized):
    packets = scapy_sized if config in SIZE_BASED else demo
    feature, X, y, _ = _extract(packets, config)
    ref = np.load(need(REF / f"{config}_features.npy"))
    assert X.shape == ref.shape
    np.testing.assert_allclose(X, ref, rtol=0, atol=5e-7)
    assert y.tolist() == np.load(REF / f"{config}_labels.npy").tolist()
    assert len(feature.feature_names()) == X.shape[1]


@pytest.mark.parametrize("config", sorted(SIZE_BASED))
def test_wire_lengths_differ_only_in_flows_scapy_reencoded(config, demo, scapy_sized):
    _, X, _, flows = _extract(demo, config)
    _, Xs, _, flows_s = _extract(scapy_sized, config)
    ref = np.load(REF / f"{config}_features.npy")
    assert np.array_equal(flows.order, flows_s.order)
    reencoded = np.add.reduceat((demo.wire_len != scapy_sized.wire_len)[flows.order].astype(int),
                                flows.offsets[:-1]) > 0
    bad_rows = ~np.isclose(X, ref, rtol=0, atol=5e-7).all(axis=1)
    assert bad_rows.tolist() == reencoded.tolist()
    assert int(reencoded.sum()) == 10


def test_sampling_rate_and_dimensions_are_netml_s(demo):
    f, X, _, _ = _extract(demo, "SAMP_NUM")
    assert f.sampling_rate_ == pytest.approx(0.0012046575546264646, rel=1e-9)
    dims = {c: _extract(demo, c)[0].dim_ for c in ("IAT", "SIZE", "IAT_SIZE", "STATS")}
    assert dims == {"IAT": 71, "SIZE": 72, "IAT_SIZE": 143, "STATS": 12}
