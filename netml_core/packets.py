"""``PacketTable``: one row per IPv4/IPv6 TCP/UDP packet, as equal-length numpy columns.

Readers produce it, splitters consume it. Packets that carry no 5-tuple (non-IP, ARP, ICMP,
non-first fragments, truncated headers, unknown link types) are not rows: they are counted in
``skipped`` by reason, so nothing downstream ever sees a fabricated packet.

Addresses use one fixed-width form for both IP versions: 16 bytes, IPv4 as IPv4-mapped IPv6
(``::ffff:a.b.c.d``), stored as two big-endian halves in a ``(n, 2) uint64`` array so that sorting,
grouping and comparing stay vectorised.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

#: column name -> (dtype, trailing shape)
COLUMNS: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
    "ts_ns": (np.dtype(np.int64), ()),  # nanoseconds since the epoch, lossless for ns captures
    "wire_len": (np.dtype(np.uint32), ()),  # original length on the wire (bytes), not caplen
    "ip_version": (np.dtype(np.uint8), ()),  # 4 or 6
    "proto": (np.dtype(np.uint8), ()),  # 6 TCP, 17 UDP
    "src": (np.dtype(np.uint64), (2,)),  # 16-byte address as two big-endian uint64 halves
    "dst": (np.dtype(np.uint64), (2,)),
    "sport": (np.dtype(np.uint16), ()),
    "dport": (np.dtype(np.uint16), ()),
    "tcp_flags": (np.dtype(np.uint8), ()),  # F S R P A U E C as bits 0..7; 0 for UDP
    "ttl": (np.dtype(np.uint8), ()),  # IPv4 TTL or IPv6 hop limit
}

#: high half of an IPv4-mapped address (::ffff:0:0/96)
V4_MAPPED_HI = np.uint64(0)
V4_MAPPED_LO_PREFIX = np.uint64(0xFFFF << 32)


@dataclass
class PacketTable:
    """Columnar packets plus what the reader saw but did not keep.

    ``skipped`` maps a reason (``non_ip``, ``fragment``, ``truncated``, ``unknown_linktype``,
    ``not_tcp_udp``, ...) to a packet count. ``damage`` holds one human sentence per kind of damage
    found in the file framing (cut record, absurd caplen, ...). ``link_types`` maps each DLT value
    seen to its number of records. ``records`` counts every record the framing yielded.
    """

    ts_ns: np.ndarray
    wire_len: np.ndarray
    ip_version: np.ndarray
    proto: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    ttl: np.ndarray
    source: str = ""
    format: str = ""
    link_types: dict[int, int] = field(default_factory=dict)
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.ts_ns)
        for name, (dtype, shape) in COLUMNS.items():
            col = np.asarray(getattr(self, name))
            if col.dtype != dtype:
                col = col.astype(dtype)
            if col.shape != (n, *shape):
                raise ValueError(f"column {name} has shape {col.shape}, expected {(n, *shape)}")
            setattr(self, name, col)

    def __len__(self) -> int:
        return len(self.ts_ns)

    @property
    def ts(self) -> np.ndarray:
        """Timestamps as float64 epoch seconds, rounded once (whole seconds are exact)."""
        sec, frac = np.divmod(self.ts_ns, 1_000_000_000)
        return sec.astype(np.float64) + frac / 1e9

    @classmethod
    def empty(cls, **meta) -> "PacketTable":
        cols = {name: np.zeros((0, *shape), dtype) for name, (dtype, shape) in COLUMNS.items()}
        return cls(**cols, **meta)

    def take(self, index) -> "PacketTable":
        """Rows ``index`` (mask, slice or integer array) with the same metadata."""
        cols = {name: getattr(self, name)[index] for name in COLUMNS}
        return PacketTable(**cols, **self._meta())

    def _meta(self) -> dict:
        return dict(
            source=self.source,
            format=self.format,
            link_types=dict(self.link_types),
            records=self.records,
            skipped=dict(self.skipped),
            damage=list(self.damage),
        )

    @classmethod
    def concat(cls, tables: Iterable["PacketTable"]) -> "PacketTable":
        """Join tables (batches of one capture, or several captures) and merge their counters."""
        tables = list(tables)
        if not tables:
            return cls.empty()
        cols = {name: np.concatenate([getattr(t, name) for t in tables]) for name in COLUMNS}
        link_types: dict[int, int] = {}
        skipped: dict[str, int] = {}
        damage: list[str] = []
        for t in tables:
            for k, v in t.link_types.items():
                link_types[k] = link_types.get(k, 0) + v
            for k, v in t.skipped.items():
                skipped[k] = skipped.get(k, 0) + v
            damage.extend(d for d in t.damage if d not in damage)
        sources = list(dict.fromkeys(t.source for t in tables))
        formats = list(dict.fromkeys(t.format for t in tables))
        return cls(
            **cols,
            source=",".join(sources),
            format=",".join(formats),
            link_types=link_types,
            records=sum(t.records for t in tables),
            skipped=skipped,
            damage=damage,
        )

    def counts(self) -> dict[str, int]:
        """IPv4/IPv6 x TCP/UDP packet counts, the figures tshark and ``netml inspect`` report."""
        out = {}
        for v in (4, 6):
            for p, pname in ((6, "tcp"), (17, "udp")):
                out[f"ipv{v}_{pname}"] = int(np.count_nonzero((self.ip_version == v) & (self.proto == p)))
        return out


def ip_to_words(addresses: Iterable[str]) -> np.ndarray:
    """Text addresses -> ``(n, 2) uint64`` (IPv4 becomes IPv4-mapped IPv6)."""
    out = []
    for a in addresses:
        ip = ipaddress.ip_address(a)
        if ip.version == 4:
            ip = ipaddress.IPv6Address("::ffff:" + str(ip))
        v = int(ip)
        out.append((v >> 64, v & 0xFFFFFFFFFFFFFFFF))
    return np.array(out, dtype=np.uint64).reshape(-1, 2)


def words_to_ip(words: np.ndarray) -> list[str]:
    """``(n, 2) uint64`` -> text addresses, IPv4-mapped ones printed as dotted quads."""
    words = np.asarray(words, dtype=np.uint64).reshape(-1, 2)
    out = []
    for hi, lo in words.tolist():
        if hi == 0 and (lo >> 32) == 0xFFFF:
            out.append(str(ipaddress.IPv4Address(lo & 0xFFFFFFFF)))
        else:
            out.append(str(ipaddress.IPv6Address((hi << 64) | lo)))
    return out
