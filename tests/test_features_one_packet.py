"""One-packet flows: every feature gives a finite, defined row for them and can be fitted with them.

netml 0.x dropped flows of fewer than 2 packets; flow-meter splitting keeps them (a port scan is
thousands of them). The rows below are written out by hand for a one-packet TCP SYN and a 2-packet
flow, for every feature and variant (plain, fft, header, fft + header). Widths and SAMP's window
length are learned from the flows of 2+ packets (what 0.x learned from), with a fixed fallback when
every training flow has one packet. Flow tables are built here directly (one 5-tuple = one flow),
since netml's own splitter drops one-packet flows.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import SHARED, need
from netml_core import segments as seg
from netml_core.errors import ParameterError
from netml_core.flowtable import FlowTable
from netml_core.packets import PacketTable, ip_to_words
from netml_core.readers.native import NativeReader
from netml_core.registry import get_registry
from netml_core.series import base_dimension, learning_flows
from netml_features_samp.samp import DEFAULT_SAMPLING_RATE, window_sums

ALL = ("iat", "iat_size", "size", "stats", "samp_num", "samp_size")
VARIANTS = {"plain": (False, False), "fft": (True, False), "header": (False, True), "fft+header": (True, True)}
BLEND = SHARED / "data" / "evalset-dev" / "files" / "blend__demo+masscan-udp_test.pcap"
CORPUS = SHARED / "data" / "corpus" / "files"
F, S, R, P, A = 1, 2, 4, 8, 16


def feature(name, variant="plain", **params):
    fft, header = VARIANTS[variant]
    return get_registry().create("feature", name, dict(params, fft=fft, header=header))


def flow_table(packets: PacketTable) -> FlowTable:
    """One flow per directional 5-tuple over the whole capture, one-packet flows included."""
    order = seg.stable_argsort(packets.ts_ns)
    ports = (packets.sport.astype(np.uint64) << np.uint64(16)) | packets.dport.astype(np.uint64)
    key = (ports << np.uint64(8)) | packets.proto.astype(np.uint64)
    perm, offsets = seg.group_rows([packets.src, packets.dst, key], order=order)
    head = perm[offsets[:-1]]
    return FlowTable(packets=packets, order=perm, offsets=offsets, src=packets.src[head],
                     dst=packets.dst[head], sport=packets.sport[head], dport=packets.dport[head],
                     proto=packets.proto[head], ip_version=packets.ip_version[head])


def flows_of(*flows, proto=6):
    """FlowTable from lists of (t_seconds, size, tcp_flags, ttl) packets, one list per flow."""
    rows = [(i, *p) for i, f in enumerate(flows) for p in f]
    n = len(rows)
    col = lambda k: np.array([r[k] for r in rows])  # noqa: E731
    return flow_table(PacketTable(
        ts_ns=np.round(col(1) * 1e9).astype(np.int64), wire_len=col(2), ip_version=np.full(n, 4),
        proto=np.full(n, proto), src=ip_to_words([f"10.0.0.{r[0] + 1}" for r in rows]),
        dst=ip_to_words(["10.9.9.9"] * n), sport=np.full(n, 1234), dport=np.full(n, 80),
        tcp_flags=col(3), ttl=col(4)))


#: a one-packet flow (a SYN probe) and a 2-packet flow
ONE = [(10.0, 60, S, 64)]
TWO = [(20.0, 100, S | A, 63), (20.5, 1500, A, 62)]
STATS_ONE = [0, 0, 0, 60, 0, 60, 60, 60, 60, 60, 1, 60]
STATS_TWO = [0.5, 4, 3200, 800, 700, 450, 800, 1150, 100, 1500, 2, 1600]

#: fitted on (ONE, TWO): widths from TWO alone (base 2 packets), window length = TWO's 0.5 s
#: name -> (dim_, row of ONE, row of TWO)
LEARNED = {
    "iat": (1, [0], [0.5]),
    "iat_size": (3, [60, 0, 0], [0.5, 100, 1500]),
    "size": (2, [60, 0], [100, 1500]),
    "stats": (12, STATS_ONE, STATS_TWO),
    "samp_num": (1, [1], [2]),  # 20.5 - 20.0 <= 0.5: both packets in the first window
    "samp_size": (1, [60], [1600]),
}
#: real part of the FFT of the rows above, written out for the short ones
LEARNED_FFT = {
    "iat": ([0], [0.5]),
    "iat_size": ([60, 60, 60], [1600.5, 0.5 - 800, 0.5 - 800]),
    "size": ([60, 60], [1600, -1400]),
    "samp_num": ([1], [2]),
    "samp_size": ([60], [1600]),
}


def header(flag_counts, ttls, width):
    """8 flag counts (F, S, R, P, A, U, E, C), then the TTLs zero-padded / cut to ``width``."""
    return list(flag_counts) + (list(ttls) + [0] * width)[:width]


def fft(row):
    return np.real(np.fft.fft(np.asarray(row, dtype=np.float64)))


# -- exact rows ---------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ALL)
def test_rows_of_a_one_packet_and_a_two_packet_flow(name, variant):
    fl = flows_of(ONE, TWO)
    assert fl.n_pkts.tolist() == [1, 2]
    f = feature(name, variant).fit(fl)
    dim, one, two = LEARNED[name]
    assert f.dim_ == dim
    if name.startswith("samp"):
        assert f.sampling_rate_ == 0.5
    fft_on, header_on = VARIANTS[variant]
    if fft_on:
        one, two = LEARNED_FFT[name] if name in LEARNED_FFT else (fft(one), fft(two))
    if header_on:
        h_one = header([0, 1, 0, 0, 0, 0, 0, 0], [64], dim)  # one SYN, TTL 64
        h_two = header([0, 1, 0, 0, 2, 0, 0, 0], [63, 62], dim)  # SYN+ACK then ACK
        if fft_on:
            h_one, h_two = fft(h_one), fft(h_two)
        one, two = [*h_one, *one], [*h_two, *two]
    X = f.transform(fl)
    assert X.shape == (2, len(f.feature_names()))
    if fft_on:
        np.testing.assert_allclose(X, [one, two], rtol=1e-12, atol=1e-9)
    else:
        assert X.tolist() == [list(map(float, one)), list(map(float, two))]


#: explicit width (dim=4 packets) and window length (0.25 s): the zero padding shows
PADDED = {
    "iat": ([0, 0, 0], [0.5, 0, 0]),
    "iat_size": ([60, 0, 0, 0, 0, 0, 0], [0.5, 100, 1500, 0, 0, 0, 0]),
    "size": ([60, 0, 0, 0], [100, 1500, 0, 0]),
    "stats": (STATS_ONE, STATS_TWO),
    "samp_num": ([1, 0, 0], [1, 0, 1]),  # TWO: a packet, an empty window, a packet
    "samp_size": ([60, 0, 0], [100, 0, 1500]),
}


@pytest.mark.parametrize("name", ALL)
def test_rows_at_an_explicit_width_are_zero_padded(name):
    fl = flows_of(ONE, TWO)
    params = {"sampling_rate": 0.25} if name.startswith("samp") else {}
    X = feature(name, dim=4, **params).fit(fl).transform(fl)
    assert X.tolist() == [list(map(float, r)) for r in PADDED[name]]
    H = feature(name, "header", dim=4, **params).fit(fl).transform(fl)
    width = len(PADDED[name][0])
    assert H[:, :8 + width].tolist() == [header([0, 1, 0, 0, 0, 0, 0, 0], [64], width),
                                         header([0, 1, 0, 0, 2, 0, 0, 0], [63, 62], width)]


def test_a_one_packet_udp_flow_has_no_flags_and_one_ttl():
    fl = flows_of([(5.0, 90, 0, 1)], [(6.0, 120, 0, 1), (6.25, 130, 0, 1)], proto=17)
    f = feature("size", "header").fit(fl)
    assert f.transform(fl).tolist() == [[0] * 8 + [1, 0, 90, 0], [0] * 8 + [1, 1, 120, 130]]


# -- fitting -------------------------------------------------------------------------------------
ONLY_ONE = [[(10.0, 60, S, 64)], [(10.001, 60, S, 64)], [(10.002, 74, S, 64)]]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ALL)
def test_fitting_on_only_one_packet_flows(name, variant):
    train = flows_of(*ONLY_ONE)
    f = feature(name, variant).fit(train)
    # base dimension 1: every series keeps one column (IAT's 1 - 1 = 0 is clamped to 1)
    assert f.dim_ == (12 if name == "stats" else 1)
    if name.startswith("samp"):
        assert f.sampling_rate_ == DEFAULT_SAMPLING_RATE == 1.0  # no duration to learn from
    X = f.transform(train)
    assert X.shape == (3, len(f.feature_names())) and np.isfinite(X).all()
    later = f.transform(flows_of(TWO))  # a longer flow seen after training
    assert later.shape == (1, X.shape[1]) and np.isfinite(later).all()
    if variant == "plain":
        expect = {"iat": [[0], [0], [0]], "iat_size": [[60], [60], [74]], "size": [[60], [60], [74]],
                  "samp_num": [[1], [1], [1]], "samp_size": [[60], [60], [74]],
                  "stats": [STATS_ONE, STATS_ONE, [0, 0, 0, 74, 0, 74, 74, 74, 74, 74, 1, 74]]}[name]
        assert X.tolist() == expect
        # TWO cut to one column; SAMP with the 1 s fallback window: both packets in the first
        assert later.tolist() == [{"iat": [0.5], "iat_size": [0.5], "size": [100], "samp_num": [2],
                                   "samp_size": [1600], "stats": STATS_TWO}[name]]


def test_an_explicit_sampling_rate_overrides_the_fallback():
    f = feature("samp_num", sampling_rate=0.25, dim=4).fit(flows_of(*ONLY_ONE))
    assert f.sampling_rate_ == 0.25 and f.transform(flows_of(TWO)).tolist() == [[1, 0, 1]]


def test_widths_and_window_are_learned_from_the_flows_of_two_or_more_packets():
    scan = [[(1.0 + k, 60, S, 64)] for k in range(9)]
    fl = flows_of(*scan, [(0, 60, S, 64), (0.2, 60, A, 64), (0.6, 60, A, 64)],
                  [(0, 60, S, 64), (1, 60, A, 64), (2, 60, A, 64), (3, 60, A, 64), (4, 60, A, 64)])
    n = fl.n_pkts
    assert learning_flows(n).tolist() == [False] * 9 + [True, True]
    # over all flows the 0.9 quantile would be 1 (11 flows, 9 of one packet); over 3 and 5: 4.8
    assert base_dimension(n, 0.9) == 4 and base_dimension([1, 1, 1], 0.9) == 1
    multi = fl.subset(n >= 2)
    for name in ALL:
        assert feature(name).fit(fl).get_state() == feature(name).fit(multi).get_state(), name
    assert feature("size").fit(fl).dim_ == 4
    assert feature("samp_num").fit(fl).sampling_rate_ == pytest.approx(np.quantile([0.6, 4.0], 0.3))


def test_zero_duration_multi_packet_flows_still_give_no_window():
    # netml 0.x behaviour kept: flows of 2+ packets whose durations quantile to 0 are an error
    # (one-packet flows beside them change nothing); an explicit rate works
    fl = flows_of(ONE, [(1.0, 60, A, 64), (1.0, 60, A, 64)], [(2.0, 60, A, 64), (2.0, 60, A, 64)])
    with pytest.raises(ParameterError, match="sampling rate"):
        feature("samp_num").fit(fl)
    f = feature("samp_size", sampling_rate=0.1).fit(fl)
    assert f.transform(fl).tolist() == [[60], [120], [120]]


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_window_sums_refuses_a_window_of_no_length(rate):
    ts = np.array([1.0, 1.0, 2.0])
    with pytest.raises(ParameterError, match="sampling rate"):
        window_sums(ts, None, np.array([0, 1, 3]), rate, 3)


# -- real captures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blend():
    return flow_table(NativeReader().read(str(need(BLEND))))


def test_blend_capture_has_the_scan_as_one_packet_flows(blend):
    n = blend.n_pkts
    assert len(blend) == 1111 and (n == 1).sum() == 1001  # the UDP scan; 110 normal 5-tuples
    scan = blend.subset(n == 1)
    assert set(scan.proto.tolist()) == {17} and set(scan.sport.tolist()) == {51436}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ALL)
def test_every_feature_is_finite_on_the_blend_capture(name, variant, blend):
    n = blend.n_pkts
    f = feature(name, variant).fit(blend)
    # learned on the 110 flows of 2+ packets alone, as netml 0.x would have
    assert f.get_state() == feature(name, variant).fit(blend.subset(n >= 2)).get_state()
    X = f.transform(blend)
    assert X.shape == (len(blend), len(f.feature_names())) and np.isfinite(X).all()
    only = feature(name, variant).fit(blend.subset(n == 1))  # training on the scan alone works too
    Y = only.transform(blend)
    assert Y.shape == (len(blend), len(only.feature_names())) and np.isfinite(Y).all()
    if variant == "plain":
        one = X[n == 1]
        sizes = blend.subset(n == 1).column("wire_len").astype(np.float64)
        expect = {"iat": 0 * sizes, "iat_size": sizes, "size": sizes, "samp_num": 1 + 0 * sizes,
                  "samp_size": sizes, "stats": 0 * sizes}[name]
        assert one[:, 0].tolist() == expect.tolist()
        if name != "stats":
            assert not one[:, 1:].any()  # zero-padded
        else:
            assert (one[:, 10] == 1).all() and (one[:, 11] == sizes).all()


def test_every_feature_is_finite_on_the_corpus():
    files = sorted(need(CORPUS).iterdir())
    assert len(files) > 50
    checked = 0
    for path in files:
        try:
            packets = NativeReader().read(str(path))
        except Exception:  # not a capture for netml (see test_readers_corpus); nothing to split
            continue
        if len(packets) == 0:
            continue
        fl = flow_table(packets)
        for name in ALL:
            try:
                f = feature(name, "fft+header").fit(fl)
            except ParameterError as exc:  # flows of 2+ packets all within one clock tick
                assert name.startswith("samp") and "sampling rate" in str(exc), (path.name, exc)
                f = feature(name, "fft+header", sampling_rate=1.0).fit(fl)
            X = f.transform(fl)
            assert X.shape == (len(fl), len(f.feature_names())), (path.name, name)
            assert np.isfinite(X).all(), (path.name, name)
        checked += 1
    assert checked > 50
