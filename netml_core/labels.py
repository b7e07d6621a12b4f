"""Label sources: which flows are normal (0) and which are anomalies (1).

``CsvLabels`` reads the CICIDS2017 flow CSV (CICFlowMeter output, column names with a leading
space such as ``' Source IP'``, ``' Label'``) and labels a flow when its directional 5-tuple
(source IP, destination IP, source port, destination port, protocol) appears in the CSV, exactly as
the original netml's ``label_flows`` does: ``BENIGN``/``NORMAL`` (any case) is 0, any other label 1,
and when a 5-tuple appears on several rows the last row wins. ``ConstantLabels`` gives every flow
the same label (``--pcap-normal`` / ``--pcap-abnormal``).

``labels_for(flows)`` returns one int64 per flow, -1 where the source knows nothing about the
flow; callers drop those flows and report how many.
"""

from __future__ import annotations

import csv
import ipaddress
import os

import numpy as np

from .errors import NetmlError
from .flowtable import FlowTable
from .packets import ip_to_words

#: labels read as normal traffic (compared upper-case), as in netml 0.7.1
NORMAL_LABELS = ("BENIGN", "NORMAL")

#: CSV column (without its leading space) -> role
REQUIRED_COLUMNS = ("Source IP", "Destination IP", "Source Port", "Destination Port", "Protocol", "Label")


class LabelError(NetmlError):
    """A label file that cannot be used (missing, not a CSV, lacks the CICIDS2017 columns)."""


class ConstantLabels:
    """Every flow gets ``value`` (0 normal, 1 anomaly)."""

    def __init__(self, value: int):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in (0, 1):
            raise LabelError(f"a constant label must be 0 (normal) or 1 (anomaly), got {value!r}")
        self.value = int(value)

    def labels_for(self, flows: FlowTable) -> np.ndarray:
        return np.full(len(flows), self.value, dtype=np.int64)

    def __repr__(self) -> str:
        return f"ConstantLabels({self.value})"


class CsvLabels:
    """Labels from a CICIDS2017-format CSV, matched on the directional 5-tuple.

    After loading, ``rows`` counts data rows, ``bad_rows`` the rows skipped because a port,
    protocol or address did not parse, ``n_normal``/``n_anomaly`` the rows of each class and
    ``n_keys`` the distinct 5-tuples.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._table: dict[tuple, int] = {}
        self.rows = self.bad_rows = self.n_normal = self.n_anomaly = 0
        self._load()

    @property
    def n_keys(self) -> int:
        return len(self._table)

    def _load(self) -> None:
        name = os.path.basename(self.path)
        try:
            with open(self.path, "rb") as raw:
                head = raw.read(1 << 16)
            fh = open(self.path, newline="", encoding="utf-8-sig", errors="replace")
        except OSError as exc:
            raise LabelError(f"cannot read label file {self.path}: {exc.strerror or exc}") from None
        if b"\x00" in head:
            fh.close()
            raise LabelError(f"label file {name} is not a CSV (binary content)")
        addr_cache: dict[str, tuple[int, int] | None] = {}
        try:
            with fh:
                header = next(csv.reader([fh.readline()]), None)
                if not header:
                    raise LabelError(f"label file {name} is empty")
                where = {h.strip(): i for i, h in enumerate(header)}
                missing = [c for c in REQUIRED_COLUMNS if c not in where]
                if missing:
                    raise LabelError(
                        f"label file {name} is not a CICIDS2017 flow CSV: missing column(s) "
                        + ", ".join(repr(" " + c) for c in missing))
                i_src, i_dst, i_sport, i_dport, i_proto, i_label = (where[c] for c in REQUIRED_COLUMNS)
                width = max(i_src, i_dst, i_sport, i_dport, i_proto, i_label) + 1
                # CICFlowMeter never quotes: split lines in C; a file with quotes gets the csv module
                rows = csv.reader(fh) if b'"' in head else (ln.rstrip("\r\n").split(",") for ln in fh)
                table, rows_seen, bad, normal = self._table, 0, 0, 0
                for row in rows:
                    if len(row) < width:
                        if any(f.strip() for f in row):
                            rows_seen += 1
                            bad += 1
                        continue  # blank line (CICIDS files end with some)
                    if not (row[i_src].strip() or row[i_label].strip()):
                        continue  # a row of empty fields: blank too
                    rows_seen += 1
                    src = _addr(row[i_src], addr_cache)
                    dst = _addr(row[i_dst], addr_cache)
                    try:
                        sport, dport, proto = _int(row[i_sport]), _int(row[i_dport]), _int(row[i_proto])
                    except (ValueError, OverflowError):
                        src = None
                    if src is None or dst is None:
                        bad += 1
                        continue
                    label = 0 if row[i_label].strip().upper() in NORMAL_LABELS else 1
                    normal += label == 0
                    table[(*src, *dst, sport, dport, proto)] = label  # last row wins
        except csv.Error as exc:
            raise LabelError(f"label file {name} is not a readable CSV: {exc}") from None
        self.rows, self.bad_rows, self.n_normal = rows_seen, bad, normal
        self.n_anomaly = rows_seen - bad - normal
        if self.rows == 0:
            raise LabelError(f"label file {name} has a header but no rows")
        if not self._table:
            raise LabelError(f"label file {name}: none of its {self.rows} rows has a usable 5-tuple")

    def labels_for(self, flows: FlowTable) -> np.ndarray:
        """0/1 per flow whose directional 5-tuple is in the CSV, -1 for the others."""
        n = len(flows)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        keys = zip(
            map(tuple, flows.src.tolist()),
            map(tuple, flows.dst.tolist()),
            flows.sport.tolist(),
            flows.dport.tolist(),
            flows.proto.tolist(),
        )
        get = self._table.get
        return np.fromiter(
            (get((*s, *d, sp, dp, p), -1) for s, d, sp, dp, p in keys), dtype=np.int64, count=n
        )

    def __repr__(self) -> str:
        return f"CsvLabels({self.path!r})"


def _int(text: str) -> int:
    """A port or protocol number; pandas would have read '80.0' as 80 too."""
    try:
        return int(text)
    except ValueError:
        return int(float(text))


def _addr(text: str, cache: dict) -> tuple[int, int] | None:
    """Address text -> the PacketTable's two 64-bit words (IPv4 as IPv4-mapped), None if bad."""
    hit = cache.get(text, False)
    if hit is not False:
        return hit
    try:
        ipaddress.ip_address(text.strip())
        words = ip_to_words([text.strip()])[0]
        value = (int(words[0]), int(words[1]))
    except ValueError:
        value = None
    cache[text] = value
    return value
