"""Feature plugins: definitions on hand-made flows, netml's SAMP loop as oracle, fit-once reuse, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from netml_core.errors import NotFittedError, ParameterError
from netml_core.packets import PacketTable, ip_to_words
from netml_core.readers.native import NativeReader
from netml_core.registry import get_registry
from netml_core.series import NoFlowsToFitError
from netml_core.splitter import NetmlFlowSplitter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo" / "demo.pcap"
ANOMALY = SHARED / "data" / "netml-demo" / "srcIP_10.42.0.119_anomaly.pcap"
ALL = ("iat", "iat_size", "size", "stats", "samp_num", "samp_size")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"shared data missing: {path}", pytrace=False)
    return path


def feature(name, **params):
    return get_registry().create("feature", name, params)


def flows_of(*flows, proto=6):
    """One FlowTable from lists of (t_seconds, size[, tcp_flags, ttl]) packets, one list per flow."""
    rows = [(i, *p) for i, f in enumerate(flows) for p in f]
    n = len(rows)
    col = lambda k, d: np.array([r[k] if len(r) > k else d for r in rows])  # noqa: E731
    pt = PacketTable(
        ts_ns=np.round(col(1, 0) * 1e9).astype(np.int64), wire_len=col(2, 0), ip_version=np.full(n, 4),
        proto=np.full(n, proto), src=ip_to_words([f"10.0.0.{r[0] + 1}" for r in rows]),
        dst=ip_to_words(["10.9.9.9"] * n), sport=np.full(n, 1234), dport=np.full(n, 80),
        tcp_flags=col(3, 0), ttl=col(4, 64))
    return NetmlFlowSplitter(interval=1e9, flow_pkts_thres=1).split(pt)


# -- definitions ----------------------------------------------------------------------------------
def test_iat_size_and_iat_size_on_a_hand_made_flow():
    fl = flows_of([(0.0, 100), (1.0, 200), (3.5, 300)], [(0.0, 60), (0.25, 70)])
    iat = feature("iat", dim=4).fit(fl)
    assert iat.dim_ == 3
    assert iat.transform(fl).tolist() == [[1.0, 2.5, 0.0], [0.25, 0.0, 0.0]]
    assert feature("size", dim=2).fit(fl).transform(fl).tolist() == [[100, 200], [60, 70]]
    both = feature("iat_size", dim=3).fit(fl)
    assert both.dim_ == 5
    assert both.transform(fl).tolist() == [[1.0, 100, 2.5, 200, 300], [0.25, 60, 70, 0, 0]]
    assert both.feature_names() == ["iat_0", "size_0", "iat_1", "size_1", "iat_2"]


def test_dimension_is_the_floor_of_the_q_dim_quantile_of_packets_per_flow():
    fl = flows_of(*[[(k * 0.1, 60) for k in range(n)] for n in (2, 3, 4, 10)])
    # quantile([2, 3, 4, 10], 0.9) = 8.2 -> 8
    assert feature("size").fit(fl).dim_ == 8
    assert feature("iat").fit(fl).dim_ == 7
    assert feature("iat_size").fit(fl).dim_ == 15
    assert feature("samp_num").fit(fl).dim_ == 7
    assert feature("size", q_dim=0.5).fit(fl).dim_ == 3
    assert feature("stats").fit(fl).dim_ == 12


def test_stats_values():
    sizes = [60, 1500, 100, 40]
    fl = flows_of([(10.0, 60), (10.5, 1500), (11.0, 100), (12.0, 40)], [(5.0, 80), (5.0, 90)])
    X = feature("stats").fit(fl).transform(fl)
    q1, q2, q3 = np.quantile(sizes, [0.25, 0.5, 0.75])
    expect = [2.0, 2.0, 1700 / 2, np.mean(sizes), np.std(sizes), q1, q2, q3, 40, 1500, 4, 1700]
    np.testing.assert_allclose(X[0], expect, rtol=1e-15)
    # zero duration: both rates are 0, as netml has them
    np.testing.assert_allclose(X[1], [0, 0, 0, 85, 5, 82.5, 85, 87.5, 80, 90, 2, 170], rtol=1e-15)


def test_header_block_counts_tcp_flags_and_lists_ttls():
    F, S, R, P, A = 1, 2, 4, 8, 16
    fl = flows_of([(0, 60, S, 64), (1, 60, S | A, 63), (2, 60, A | P, 62), (3, 60, F | A, 61)])
    f = feature("iat", header=True, dim=3).fit(fl)  # iat width 2, so 8 flags + 2 TTLs + 2 IATs
    X = f.transform(fl)
    assert X.tolist() == [[1, 2, 0, 1, 3, 0, 0, 0, 64, 63, 1, 1]]
    assert f.feature_names()[:9] == ["tcp_F", "tcp_S", "tcp_R", "tcp_P", "tcp_A", "tcp_U", "tcp_E", "tcp_C", "ttl_0"]
    udp = flows_of([(0, 60, 0, 9), (1, 60, 0, 8)], proto=17)
    assert feature("size", header=True, dim=3).fit(udp).transform(udp).tolist() == [[0] * 8 + [9, 8, 0, 60, 60, 0]]


def test_fft_is_the_real_part_at_the_fitted_width():
    fl = flows_of([(0.0, 1), (0.5, 2), (2.0, 3), (2.1, 4)], [(0, 5), (1, 6)])
    f = feature("iat", fft=True, dim=3).fit(fl)
    X = f.transform(fl)
    np.testing.assert_allclose(X[0], np.real(np.fft.fft([0.5, 1.5], n=2)))  # cut to 2
    np.testing.assert_allclose(X[1], np.real(np.fft.fft([1.0], n=2)))  # padded to 2
    assert f.feature_names() == ["fft_iat_0", "fft_iat_1"]
    h = feature("iat", fft=True, header=True, dim=3).fit(fl).transform(fl)
    np.testing.assert_allclose(h[0, :10], np.real(np.fft.fft([0] * 8 + [64, 64])))


# -- SAMP against netml's own loop -----------------------------------------------------------------
def _netml_samp(times, sizes, rate, feature_kind):
    """netml 0.7.1 `_get_SAMP` for one flow, transcribed literally."""
    out, samp = [], -1
    for i in range(len(times)):
        if i == 0:
            current = times[0]
            samp = 1 if feature_kind == "num" else sizes[0]
            continue
        if times[i] - current <= rate:
            samp += 1 if feature_kind == "num" else sizes[i]
        else:
            current += rate
            out.append(samp)
            k = int(np.floor((times[i] - current) // rate))
            if k > 0:
                k = min(k, 500)
                out.extend([0] * k)
                current += k * rate
            if len(out) > 500:
                samp = -1
                out = out[:500]
                break
            samp = 1 if feature_kind == "num" else sizes[i]
    if samp > 0:
        out.append(samp)
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["num", "size"])
def test_samp_replays_netml_window_arithmetic(seed, kind):
    rng = np.random.default_rng(seed)
    base = 1_499_083_689.0
    flows = []
    for _ in range(60):
        n = int(rng.integers(2, 400))
        gaps = rng.choice([0, 1e-6, 3e-4, 1.1e-3, 5e-3, 0.9], size=n, p=[0.2, 0.2, 0.25, 0.2, 0.13, 0.02])
        t = np.round((base + np.cumsum(gaps)) * 1e6) / 1e6
        flows.append([(float(x), int(s)) for x, s in zip(t, rng.integers(40, 1500, n))])
    fl = flows_of(*flows)
    rate = 0.0012046575546264646
    for dim in (71, 700):  # 700 > netml's 500-window cap
        f = feature(f"samp_{kind}", sampling_rate=rate, dim=dim + 1).fit(fl)
        X = f.transform(fl)
        ts, sz = fl.column("ts"), fl.column("wire_len").astype(int).tolist()
        for i in range(len(fl)):
            a, b = fl.offsets[i], fl.offsets[i + 1]
            v = _netml_samp(ts[a:b].tolist(), sz[a:b], rate, kind)
            v = v[:dim] + [0] * (dim - len(v))
            assert X[i].tolist() == v, i


def test_samp_learns_its_rate_from_flow_durations():
    fl = flows_of(*[[(0.0, 60), (d, 60)] for d in (0.1, 0.2, 0.4, 0.8, 1.6)])
    f = feature("samp_size").fit(fl)
    assert f.sampling_rate_ == pytest.approx(np.quantile([0.1, 0.2, 0.4, 0.8, 1.6], 0.3))
    assert feature("samp_size", q_samp=0.5).fit(fl).sampling_rate_ == pytest.approx(0.4)
    zero = flows_of([(1.0, 60), (1.0, 60)], [(2.0, 60), (2.0, 60)])
    with pytest.raises(ParameterError, match="sampling rate"):
        feature("samp_num").fit(zero)


# -- fitted once, reused ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_and_anomaly():
    sp = NetmlFlowSplitter().fit(NativeReader().read(str(_need(DEMO))))
    train = sp.split(NativeReader().read(str(DEMO)))
    other = sp.split(NativeReader().read(str(_need(ANOMALY))))
    return train, other


@pytest.mark.parametrize("name", ALL)
def test_width_and_rate_learned_on_training_flows_are_reused(name, demo_and_anomaly):
    train, other = demo_and_anomaly
    f = feature(name).fit(train)
    state = dict(f.get_state())
    X = f.transform(other)
    assert X.shape == (len(other), len(f.feature_names()))
    assert f.get_state() == state  # transform learned nothing
    refit = feature(name).fit(other)
    if name != "stats":
        assert refit.dim_ != f.dim_  # netml would have changed the width here
    assert np.isfinite(X).all()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("fft, header", [(False, False), (True, True)])
def test_state_round_trips_through_json(name, fft, header, demo_and_anomaly):
    train, other = demo_and_anomaly
    f = feature(name, fft=fft, header=header).fit(train)
    state = json.loads(json.dumps(f.get_state()))
    g = feature(name, fft=fft, header=header).set_state(state)
    assert np.array_equal(f.transform(other), g.transform(other))
    assert all(type(v) in (int, float) for v in state.values())


def test_bidirectional_flows_feed_the_same_features():
    # dpkt's http.pcap: one HTTP conversation (16 + 18 packets), one 2-packet DNS exchange, 7 more
    packets = NativeReader().read(str(_need(SHARED / "data" / "corpus" / "files" / "dpkt__http.pcap")))
    uni = NetmlFlowSplitter(interval=1e6).split(packets)
    bi = NetmlFlowSplitter(interval=1e6, direction="bi").split(packets)
    assert uni.n_pkts.tolist() == [16, 18, 3, 4] and bi.n_pkts.tolist() == [34, 2, 7]
    reverse = np.add.reduceat(bi.direction.astype(int), bi.offsets[:-1])
    assert reverse.tolist() == [18, 1, 4]  # per-direction counts are there for features
    assert feature("iat").fit(bi).transform(bi).shape == (3, 27)  # floor(quantile([34, 2, 7], .9)) - 1
    X = feature("iat", dim=34).fit(bi).transform(bi)
    assert X.shape == (3, 33) and (X >= 0).all()
    np.testing.assert_allclose(X.sum(axis=1), bi.last_ts - bi.first_ts, rtol=1e-12)


# -- errors and registration ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, params, word", [
    ("iat", {"fft": "yes"}, "fft"), ("size", {"q_dim": 0}, "q_dim"), ("stats", {"header": 1}, "header"),
    ("samp_num", {"q_samp": 2}, "q_samp"), ("samp_size", {"sampling_rate": -1}, "sampling_rate"),
    ("iat_size", {"dim": 0}, "dim"), ("iat", {"nope": 1}, "nope"),
])
def test_bad_parameters_are_one_line_errors(name, params, word):
    with pytest.raises(ParameterError) as exc:
        feature(name, **params)
    assert word in str(exc.value) and "\n" not in str(exc.value)


def test_transform_before_fit_and_fit_on_no_flows():
    fl = flows_of([(0, 60), (1, 60)])
    with pytest.raises(NotFittedError):
        feature("iat").transform(fl)
    with pytest.raises(NoFlowsToFitError):
        feature("size").fit(fl.subset(np.zeros(1, dtype=bool)))


def test_each_feature_comes_from_its_own_plugin_distribution():
    reg = get_registry()
    expect = {"iat": "netml-features-iat", "iat_size": "netml-features-iat", "size": "netml-features-size",
              "stats": "netml-features-stats", "samp_num": "netml-features-samp",
              "samp_size": "netml-features-samp"}
    for name, dist in expect.items():
        assert reg.plugin_of("feature", name).distribution == dist
        assert reg.plugin_of("feature", name).status == "ok"
        assert reg.component_class("feature", name).param_defaults()["fft"] is False


def test_header_works_on_a_raw_ip_capture(tmp_path):
    # netml read TTLs as pkt.payload.ttl and raised on raw-IP links (no Ethernet layer); here the
    # header block comes from the packet columns, whatever the link type.
    from netml_core.pcapwriter import build_frames, write_pcap_frames

    n = 4
    flags = np.array([0x02, 0x12, 0x10, 0x11])  # S, SA, A, FA
    hdr, hdr_len = build_frames(np.full(n, 0x0A000001, np.uint32), np.full(n, 0x0A000002, np.uint32),
                                np.full(n, 40000), np.full(n, 443), np.full(n, 6), flags,
                                np.array([64, 63, 62, 61]), np.full(n, 74))
    frames = [bytes(hdr[i, 14:hdr_len[i]]) + bytes(74 - int(hdr_len[i])) for i in range(n)]  # drop Ethernet
    path = tmp_path / "raw.pcap"
    write_pcap_frames(path, np.arange(n) * 1_000_000_000, frames, linktype=101)
    packets = NativeReader().read(str(path))
    assert packets.link_types == {101: 4} and len(packets) == 4
    flows = NetmlFlowSplitter(interval=100.0).split(packets)
    X = feature("size", header=True, dim=4).fit(flows).transform(flows)
    assert X.tolist() == [[1, 2, 0, 0, 3, 0, 0, 0, 64, 63, 62, 61, 60, 60, 60, 60]]
