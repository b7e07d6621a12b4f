"""Turning framed record batches into bounded PacketTable batches: shared by every reader.

A reader supplies an iterator of ``RecordBatch`` (its own framing); this module decodes each one,
re-cuts the result into tables of at most ``max_packets`` rows, stamps source and format, and emits
the single warning line about damage at the end of the capture.
"""

from __future__ import annotations

import logging
from typing import Iterable, Iterator

from ..packets import COLUMNS, PacketTable
from .decode import decode, known_linktype
from .linktypes import linktype_name
from .records import RecordBatch

log = logging.getLogger("netml.readers")

#: ``skipped`` reasons that come from damaged framing (the decoder's reasons are normal traffic)
FRAMING_DROPS = ("cut_record", "absurd_caplen", "bad_block", "no_interface", "bad_timestamp", "spb_unsupported")


def packet_batches(records: Iterable[RecordBatch], max_packets: int, source: str, fmt,
                   extra_damage=lambda: [], live: bool = False) -> Iterator[PacketTable]:
    """Decode ``records`` and yield tables of at most ``max_packets`` packets (at least one table).

    ``live``: each record batch is one arrival of a live source, so its packets are handed over
    now instead of waiting for ``max_packets``; an empty record batch (the source is silent) gives
    an empty table, a tick.

    ``fmt`` is the format string or a callable giving it at the end (pcapng learns ``+spb`` late).
    Counters (records, link types, skipped, damage) ride on the table that is yielded when they are
    found, so ``PacketTable.concat`` of all batches gives the capture's totals.
    """
    max_packets = max(1, int(max_packets))
    pending: list[PacketTable] = []
    n_pending = 0
    damage_seen: list[str] = []
    skipped_total: dict[str, int] = {}
    link_types: dict[int, int] = {}
    yielded = False

    def stamp(t: PacketTable) -> PacketTable:
        t.source = source
        t.format = fmt() if callable(fmt) else fmt
        return t

    for rb in records:
        table = decode(rb)
        for d in table.damage:
            if d not in damage_seen:
                damage_seen.append(d)
        for k, v in table.skipped.items():
            skipped_total[k] = skipped_total.get(k, 0) + v
        for k, v in table.link_types.items():
            link_types[k] = link_types.get(k, 0) + v
        pending.append(table)
        n_pending += len(table)
        while n_pending >= max_packets:
            joined = PacketTable.concat(pending)
            out = joined.take(slice(0, max_packets))
            rest = _rows(joined, slice(max_packets, None))
            pending, n_pending = [rest], len(rest)
            yielded = True
            yield stamp(out)
        if live and n_pending:
            joined = PacketTable.concat(pending) if len(pending) > 1 else pending[0]
            pending, n_pending = [], 0
            yielded = True
            yield stamp(joined)
        elif live and len(rb) == 0:
            yield stamp(PacketTable.empty())  # a tick
    for d in extra_damage():
        if d not in damage_seen:
            damage_seen.append(d)
            if pending:
                pending[-1].damage.append(d)
            else:
                pending.append(PacketTable.empty(damage=[d]))
    if pending and (n_pending or not yielded or any(_has_meta(t) for t in pending)):
        yield stamp(PacketTable.concat(pending))
    elif not yielded:
        yield stamp(PacketTable.empty())
    if damage_seen:
        dropped = ", ".join(f"{v} {k}" for k, v in sorted(skipped_total.items())
                            if k in FRAMING_DROPS)
        log.warning("%s: damaged capture: %s%s", source, "; ".join(damage_seen),
                    f" (dropped: {dropped})" if dropped else "")
    warn_unknown_linktypes(source, link_types, skipped_total.get("unknown_linktype", 0))


def warn_unknown_linktypes(source: str, link_types: dict[int, int], skipped: int) -> None:
    """One warning line naming (number and name) the link types whose packets were all skipped."""
    if not skipped:
        return
    unknown = sorted(lt for lt in link_types if not known_linktype(lt))
    if unknown:
        names = ", ".join(f"{lt} ({linktype_name(lt)})" for lt in unknown)
        count = sum(link_types[lt] for lt in unknown)
        log.warning("%s: link type %s not supported by netml: %d record%s skipped (unknown_linktype)",
                    source, names, count, "" if count == 1 else "s")
    inner = skipped - sum(link_types[lt] for lt in unknown)
    if inner > 0:
        log.warning("%s: %d record%s inside PPI/PKTAP headers carry a link type netml does not decode: "
                    "skipped (unknown_linktype)", source, inner, "" if inner == 1 else "s")


def read_whole(batches: Iterable[PacketTable]) -> PacketTable:
    """One table from a reader's batches, without copying when there is only one."""
    tables = list(batches)
    return tables[0] if len(tables) == 1 else PacketTable.concat(tables)


#: ``max_packets`` for ``read()``: never cut, so the columns are assembled exactly once
UNBOUNDED = 1 << 62


def _rows(table: PacketTable, index) -> PacketTable:
    """Rows of ``table`` without its counters (they were already handed out)."""
    cols = {name: getattr(table, name)[index] for name in COLUMNS}
    return PacketTable(**cols)


def _has_meta(t: PacketTable) -> bool:
    return bool(t.records or t.skipped or t.damage or t.link_types)


