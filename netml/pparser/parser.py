"""``PCAP``: the original netml 0.7 parser API, as a thin facade over the plugin pipeline.

Scripts written for netml 0.x run unchanged::

    pcap = PCAP('data/demo.pcap', flow_ptks_thres=2, random_state=42, verbose=10)
    pcap.pcap2flows(q_interval=0.9)
    pcap.label_flows(label_file='data/demo.csv')
    pcap.flow2features('IAT', fft=False, header=False)
    pcap.features, pcap.labels, pcap.pcap2flows.tot_time

Underneath, packets come from the registry's ``native`` reader, flows from the ``netml`` splitter,
labels from ``CsvLabels`` and features from the feature plugins (``iat``, ``size``, ``stats``, ...),
so the numbers are the original's (flows, interval, width rule, values) without scapy and without
a Python object per packet. Packet sizes are the true wire lengths; netml 0.7 took scapy's
``len(pkt)``, which re-encodes a few LDAP/Kerberos packets shorter, so on such flows its size-based
features differ by a few bytes: ``PCAP(..., sizes='scapy')`` reproduces those numbers exactly.
Differences, on purpose: ``flows`` holds light ``FlowPackets`` views
(length, times, sizes) instead of scapy packets; errors are ``NetmlError`` one-liners (feature-type
errors are also ``ValueError``, as before). ``tot_time`` attributes are minutes, rounded to 4
decimals, set on the method after each call, as the original's timing decorator did.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from netml_core.errors import NetmlError, ParameterError
from netml_core.flowtable import FlowTable
from netml_core.packets import PacketTable, words_to_ip

log = logging.getLogger("netml.compat")

#: the original's feature types -> (feature plugin name); the FFT-* spellings select the same
#: series, the FFT itself is the ``fft`` flag (exactly as in netml 0.7.1)
FEAT_TYPES = {
    "IAT": "iat", "FFT-IAT": "iat",
    "SIZE": "size", "FFT-SIZE": "size",
    "IAT_SIZE": "iat_size", "FFT-IAT_SIZE": "iat_size",
    "STATS": "stats",
    "SAMP_NUM": "samp_num", "FFT-SAMP_NUM": "samp_num",
    "SAMP_SIZE": "samp_size", "FFT-SAMP_SIZE": "samp_size",
}


class CompatValueError(ParameterError, ValueError):
    """A bad argument; a ValueError too, as netml 0.x raised, and a one-line NetmlError."""


class FeatureTypeError(CompatValueError):
    """An unknown ``feat_type``."""


def timed(method):
    """Record the call's duration in minutes (4 decimals) as ``method.tot_time``, like netml 0.7."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        start = time.time()
        result = method(*args, **kwargs)
        wrapper.tot_time = float(f"{(time.time() - start) / 60:.4f}")
        return result

    return wrapper


class FlowPackets(Sequence):
    """The packets of one flow, as views on the packet columns (what ``len(pkts)`` and loops need).

    ``times`` are float64 epoch seconds, ``sizes`` wire lengths in bytes; item ``i`` is a dict of
    that packet's header fields.
    """

    def __init__(self, packets: PacketTable, index: np.ndarray):
        self._packets = packets
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return FlowPackets(self._packets, self.index[i])
        j = int(self.index[i])
        p = self._packets
        sec, ns = divmod(int(p.ts_ns[j]), 1_000_000_000)
        return {"time": sec + ns / 1e9, "length": int(p.wire_len[j]),
                "ttl": int(p.ttl[j]), "tcp_flags": int(p.tcp_flags[j])}

    @property
    def times(self) -> np.ndarray:
        return self._packets.ts[self.index]

    @property
    def sizes(self) -> np.ndarray:
        return self._packets.wire_len[self.index].astype(np.int64)

    def __repr__(self) -> str:
        return f"<FlowPackets {len(self)} packets>"


def _registry():
    from netml_core.registry import get_registry

    return get_registry()


def flow_ids(flows: FlowTable) -> list[tuple]:
    """The original's flow keys: ``(src_ip, dst_ip, sport, dport, proto)`` per flow."""
    src, dst = words_to_ip(flows.src), words_to_ip(flows.dst)
    return [(s, d, int(sp), int(dp), int(pr))
            for s, d, sp, dp, pr in zip(src, dst, flows.sport.tolist(), flows.dport.tolist(), flows.proto.tolist())]


def _with_scapy_sizes(packets: PacketTable, source) -> PacketTable:
    """The packets with scapy's ``len(pkt)`` as sizes: what netml 0.7 measured.

    scapy re-serialises each packet and re-encodes some (LDAP/Kerberos) payloads shorter than they
    were on the wire, so the original's size features differ from the true wire lengths on flows
    holding such packets. This is the opt-in path to those numbers; it dissects every packet with
    scapy (slow) and needs scapy installed.
    """
    try:
        from scapy.all import IP, TCP, UDP, PcapReader
    except ImportError:
        raise NetmlError("sizes='scapy' needs scapy: pip install scapy") from None
    from netml_core.packets import COLUMNS

    lengths = []
    path = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", source)
    with PcapReader(str(path)) as rd:
        for pkt in rd:
            if IP in pkt and (TCP in pkt or UDP in pkt):
                lengths.append(len(pkt))
    if len(lengths) != len(packets):
        raise NetmlError(f"scapy sees {len(lengths)} IPv4 TCP/UDP packets where the reader kept {len(packets)}; "
                         "use sizes='wire'")
    cols = {c: getattr(packets, c) for c in COLUMNS if c != "wire_len"}
    return PacketTable(**cols, wire_len=np.asarray(lengths), **packets._meta())


class PCAP:
    """Parse a capture into flows, label them and turn them into feature rows (netml 0.7 API)."""

    def __init__(self, pcap_file, *, flow_ptks_thres=2, verbose=0, random_state=42, reader="native",
                 sizes="wire"):
        if sizes not in ("wire", "scapy"):
            raise CompatValueError(f"sizes must be 'wire' or 'scapy', got {sizes!r}")
        self.pcap_file = pcap_file
        self.sizes = sizes
        self.flow_ptks_thres = flow_ptks_thres
        self.verbose = verbose
        self.random_state = random_state
        self.reader = reader
        self.labels = None
        self.df = None
        self.q_interval = 0.9
        self._packets: PacketTable | None = None
        self._flows: FlowTable | None = None

    # -- packets -----------------------------------------------------------------------------
    def _read(self) -> PacketTable:
        if self._packets is None:
            reader = _registry().create("reader", self.reader)
            self._packets = reader.read(self.pcap_file)
            if self.sizes == "scapy":
                self._packets = _with_scapy_sizes(self._packets, self.pcap_file)
            if self.verbose:
                log.info("%s: %d TCP/UDP packets", self.pcap_file, len(self._packets))
        return self._packets

    # -- flows -------------------------------------------------------------------------------
    @timed
    def pcap2flows(self, interval=0.0, q_interval=0.9, *, tcp_timeout=600, udp_timeout=600):
        """Extract 5-tuple flows and split them into sub-flows by ``interval`` seconds.

        ``interval > 0`` is used as given; otherwise it is the ``q_interval`` quantile of the flow
        durations, as in the original. Sets ``flows``, ``interval`` (and ``q_interval``).
        """
        if not (interval and interval > 0) and not (q_interval and 0 < q_interval <= 1):
            raise CompatValueError(f"q_interval must be in (0, 1]! Current q_interval is {q_interval}.")
        params = {"tcp_timeout": float(tcp_timeout), "udp_timeout": float(udp_timeout),
                  "flow_pkts_thres": int(self.flow_ptks_thres)}
        if interval and interval > 0:
            params["interval"] = float(interval)
        else:
            params["q_interval"] = float(q_interval)
            self.q_interval = q_interval
        packets = self._read()
        splitter = _registry().create("flow_splitter", "netml", params)
        self._splitter = splitter.fit(packets)
        self._set_flows(splitter.split(packets))
        self.interval = float(splitter.interval_)
        if self.verbose:
            log.info("%d flows, interval %.6f s", len(self._flows), self.interval)

    def _set_flows(self, flows: FlowTable) -> None:
        self._flows = flows
        self.fids = flow_ids(flows)
        offs = flows.offsets
        self.flows = [(fid, FlowPackets(flows.packets, flows.order[a:b]))
                      for fid, a, b in zip(self.fids, offs[:-1].tolist(), offs[1:].tolist())]

    @property
    def flow_durations(self) -> list[float]:
        self._require_flows()
        return (self._flows.last_ts - self._flows.first_ts).tolist()

    def _require_flows(self) -> None:
        if self._flows is None:
            raise NetmlError("no flows yet: call pcap2flows() first")

    # -- labels ------------------------------------------------------------------------------
    @timed
    def label_flows(self, label_file=None, label=0):
        """Label flows from a CICIDS2017 CSV (flows it does not list are dropped) or with ``label``."""
        self._require_flows()
        if label_file:
            from netml_core.labels import CsvLabels

            # the original CLI passed open files: read those by their name
            source = label_file if isinstance(label_file, (str, os.PathLike)) else getattr(label_file, "name", label_file)
            y = CsvLabels(source).labels_for(self._flows)
            keep = y >= 0
            if self.verbose:
                log.info("labelled flows: %d; not in the label file: %d", keep.sum(), (~keep).sum())
            self._set_flows(self._flows.subset(keep))
            self.labels = y[keep].astype(int)
        else:
            self.labels = np.full(len(self._flows), int(label), dtype=int)

    # -- features ----------------------------------------------------------------------------
    @timed
    def flow2features(self, feat_type="IAT", *, fft=False, header=False):
        """Feature rows of the current flows: ``features`` is ``(n_flows, dim)`` float64."""
        self._require_flows()
        name = FEAT_TYPES.get(str(feat_type).upper())
        if name is None:
            raise FeatureTypeError(f"feat_type ({feat_type}) is not correct! known: {', '.join(FEAT_TYPES)}")
        if len(self._flows) == 0:
            raise NetmlError(f"no flows in {self.pcap_file} to extract features from")
        self.feat_type = feat_type
        feature = _registry().create("feature", name, {"fft": bool(fft), "header": bool(header),
                                                        "q_dim": float(self.q_interval)})
        self.feature = feature
        self.features = np.asarray(feature.fit(self._flows).transform(self._flows), dtype=float)
        self.dim = int(feature.dim_)

    # -- one row per packet ------------------------------------------------------------------
    @timed
    def pcap2pandas(self):
        """``df``: one row per packet with the original's columns (see ``netml.pparser.frames``)."""
        from .frames import packets_dataframe

        self.df = packets_dataframe(self.pcap_file)
        return None

    # -- the model's view --------------------------------------------------------------------
    @property
    def flow_table(self) -> FlowTable:
        """The current flows as a ``FlowTable`` (after labelling, the labelled ones)."""
        self._require_flows()
        return self._flows
