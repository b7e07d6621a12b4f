"""Label sources: which flows are normal (0) and which are anomalies (1).

``CsvLabels`` reads the CICIDS2017 flow CSV (CICFlowMeter output, column names with a leading
space such as ``' Source IP'``, ``' Label'``) and labels a flow when its directional 5-tuple
(source IP, destination IP, source port, destination port, protocol) appears in the CSV, exactly as
the original netml's ``label_flows`` does: ``BENIGN``/``NORMAL`` (any case) is 0, any other label 1,
and when a 5-tuple appears on several rows the last row wins. ``FlowTsvLabels`` reads the plain
flow-label TSV of evaluation sets (``src sport dst dport proto label``, label 1 = attack, 0 =
normal; ``netml evaluate``). ``ConstantLabels`` gives every flow the same label (``--pcap-normal``
/ ``--pcap-abnormal``, whole-capture labels of a scenario).

``labels_for(flows)`` returns one int64 per flow, -1 where the source knows nothing about the
flow; callers drop those flows and report how many. A bidirectional flow (``flows.direction`` is
set: the flow holds both directions, ``src`` sent its first packet) is looked up under its forward
and its reverse 5-tuple, and gets the larger known label (an attack in either direction makes the
conversation an attack; -1 only if neither is known). Directional flows are looked up exactly as
netml 0.x did. ``labels_for_keys`` labels bare directional 5-tuples (the evaluation's coverage
counts the labelled 5-tuples of a capture's packets, whether or not a flow kept them).
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


#: flow-label TSV columns (``FlowTsvLabels``), in the order evaluation sets write them
TSV_COLUMNS = ("src", "sport", "dst", "dport", "proto", "label")
#: a flow-label TSV larger than this is refused: the table is held in memory as a dict
MAX_TSV_BYTES = 256 << 20
#: longest TSV line accepted (a 5-tuple and a label take well under 200 characters)
MAX_TSV_LINE = 4096


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

    def labels_for_keys(self, src, dst, sport, dport, proto) -> np.ndarray:
        """``value`` for each directional 5-tuple (every 5-tuple of the capture is labelled)."""
        return np.full(len(sport), self.value, dtype=np.int64)

    def __repr__(self) -> str:
        return f"ConstantLabels({self.value})"


class _TupleTable:
    """Lookup shared by the file label sources: ``_table`` maps a directional 5-tuple key
    ``(src_hi, src_lo, dst_hi, dst_lo, sport, dport, proto)`` to 0/1."""

    _table: dict[tuple, int]

    @property
    def n_keys(self) -> int:
        return len(self._table)

    def labels_for(self, flows: FlowTable) -> np.ndarray:
        """0/1 per flow whose 5-tuple is in the file, -1 for the others.

        Directional flows: their 5-tuple, as netml 0.x matched. Bidirectional flows (``two_way``):
        the larger of the forward and the reverse 5-tuple's labels, so a conversation is labelled
        whichever direction the file lists, and is an attack if either is.
        """
        if len(flows) == 0:
            return np.zeros(0, dtype=np.int64)
        forward = self.labels_for_keys(flows.src, flows.dst, flows.sport, flows.dport, flows.proto)
        if not flows.two_way:  # a FlowTable or the FlowKeys of streamed flows
            return forward
        reverse = self.labels_for_keys(flows.dst, flows.src, flows.dport, flows.sport, flows.proto)
        return np.maximum(forward, reverse)

    def labels_for_keys(self, src, dst, sport, dport, proto) -> np.ndarray:
        """0/1 per directional 5-tuple (address columns as ``(n, 2) uint64`` words), -1 if unknown.

        One dict look-up per key: the table is a Python dict, and the keys are few next to packets.
        """
        n = len(sport)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        keys = zip(
            map(tuple, np.asarray(src).tolist()),
            map(tuple, np.asarray(dst).tolist()),
            np.asarray(sport).tolist(),
            np.asarray(dport).tolist(),
            np.asarray(proto).tolist(),
        )
        get = self._table.get
        return np.fromiter(
            (get((*s, *d, sp, dp, p), -1) for s, d, sp, dp, p in keys), dtype=np.int64, count=n
        )


class CsvLabels(_TupleTable):
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

    def __repr__(self) -> str:
        return f"CsvLabels({self.path!r})"


class FlowTsvLabels(_TupleTable):
    """Labels from a flow-label TSV: header ``src sport dst dport proto label`` (tab-separated, any
    column order, extra columns ignored), one directional 5-tuple per row, label 1 attack, 0 normal.

    Evaluation labels must be exact, so unlike ``CsvLabels`` a malformed row is an error naming its
    line, not a skipped row. A 5-tuple listed twice with different labels is an attack (the larger
    label wins; ``conflicts`` counts such keys). After loading: ``rows``, ``n_keys``,
    ``n_normal``/``n_attack`` (distinct 5-tuples of each class).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._table: dict[tuple, int] = {}
        self.rows = self.conflicts = 0
        self._load()

    @property
    def n_attack(self) -> int:
        return sum(self._table.values())

    @property
    def n_normal(self) -> int:
        return len(self._table) - self.n_attack

    def _load(self) -> None:
        name = os.path.basename(self.path)
        text = _read_tsv_text(self.path, name)
        lines = text.splitlines()
        if not lines or not lines[0].strip():
            raise LabelError(f"label file {name} is empty")
        header = [h.strip().lower() for h in lines[0].split("\t")]
        missing = [c for c in TSV_COLUMNS if c not in header]
        if missing:
            raise LabelError(f"label file {name} is not a flow-label TSV: missing column(s) "
                             f"{', '.join(missing)} (header must be tab-separated: {' '.join(TSV_COLUMNS)})")
        where = [header.index(c) for c in TSV_COLUMNS]
        width = max(where) + 1
        table, addr_cache, rows, conflicting = self._table, {}, 0, set()
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < width:
                raise LabelError(f"label file {name}, line {number}: {len(fields)} field(s), expected {width} "
                                 "tab-separated")
            src, sport, dst, dport, proto, label = (fields[i].strip() for i in where)
            key = (*_tsv_addr(src, "src", name, number, addr_cache), *_tsv_addr(dst, "dst", name, number, addr_cache),
                   _tsv_int(sport, "sport", 0xFFFF, name, number), _tsv_int(dport, "dport", 0xFFFF, name, number),
                   _tsv_int(proto, "proto", 0xFF, name, number))
            if label not in ("0", "1"):
                raise LabelError(f"label file {name}, line {number}: label must be 0 (normal) or 1 (attack), "
                                 f"got {label[:40]!r}")
            value, old = int(label), table.get(key)
            if old is not None and old != value:
                conflicting.add(key)
            table[key] = value if old is None else max(old, value)
            rows += 1
        self.rows, self.conflicts = rows, len(conflicting)
        if rows == 0:
            raise LabelError(f"label file {name} has a header but no rows")

    def __repr__(self) -> str:
        return f"FlowTsvLabels({self.path!r})"


def _read_tsv_text(path: str, name: str) -> str:
    """The whole TSV as text, refusing what cannot be a label file (too big, binary, not UTF-8)."""
    text = read_bounded_text(path, name, what="label file", kind="a TSV", limit=MAX_TSV_BYTES, error=LabelError)
    longest = max((len(ln) for ln in text.splitlines()), default=0)
    if longest > MAX_TSV_LINE:
        raise LabelError(f"label file {name} has a line of {longest} characters (at most {MAX_TSV_LINE}): "
                         "not a flow-label TSV")
    return text


def read_bounded_text(path: str, name: str, *, what: str, kind: str, limit: int,
                      error: type[NetmlError] = NetmlError) -> str:
    """A small untrusted text file (labels, scenarios) whole, or a one-line ``error``: not a regular
    file (a FIFO or a device would block or never end), larger than ``limit`` bytes, binary, not
    UTF-8. ``name`` is how messages after the open call the file."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise error(f"{what} {path} is not a regular file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{what} {name} is larger than {limit >> 20} MiB")
    if b"\x00" in data[: 1 << 16]:
        raise error(f"{what} {name} is not {kind} (binary content)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {name} is not UTF-8 text (byte {exc.start})") from None


def _tsv_int(text: str, column: str, high: int, name: str, number: int) -> int:
    """A port or protocol number in [0, high]; anything else names the line."""
    if not (text.isascii() and text.isdigit()) or int(text) > high:
        raise LabelError(f"label file {name}, line {number}: {column} must be an integer 0-{high}, "
                         f"got {text[:40]!r}")
    return int(text)


def _tsv_addr(text: str, column: str, name: str, number: int, cache: dict) -> tuple[int, int]:
    """An address, or a one-line error naming the line."""
    value = _addr(text, cache)
    if value is None:
        raise LabelError(f"label file {name}, line {number}: {column} is not an IP address: {text[:60]!r}")
    return value


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
