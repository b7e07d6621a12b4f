"""``netml inspect``: describe a capture as a reader sees it, in the spirit of capinfos.

The counting is ``netml_core.inspection``: batch by batch, so that a large capture needs no more
memory than a batch and its distinct 5-tuples. ``--json`` prints one object whose keys are stable (documented in
the README): ``format``, ``link_types``, ``packets``, ``ipv4_tcp``, ``ipv4_udp``, ``ipv6_tcp``,
``ipv6_udp``, ``skipped``, ``damage``, ``first_ts``, ``last_ts``, ``flows``, plus ``source``,
``reader``, ``kept``, ``first_ts_ns``, ``last_ts_ns``, ``duration`` and ``conversations``.
"""

from __future__ import annotations

import datetime as _dt
import json

import click

from ..completion import complete_reader
from ..inspection import describe
from ..readers.linktypes import linktype_name
from ..registry import get_registry


def _iso(ts: float) -> str:
    try:
        return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):
        return "out of range"


def _exact(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{sec}.{frac:09d}"


def _text(info: dict) -> str:
    lt = ", ".join(f"{k} ({linktype_name(int(k))}): {v}" for k, v in info["link_types"].items())
    skipped = ", ".join(f"{k} {v}" for k, v in info["skipped"].items()) or "none"
    rows = [
        ("Capture", info["source"]),
        ("Reader", info["reader"]),
        ("Format", info["format"]),
        ("Link types", lt or "none"),
        ("Packets", f"{info['packets']} ({info['kept']} TCP/UDP kept)"),
        ("IPv4 TCP", info["ipv4_tcp"]),
        ("IPv4 UDP", info["ipv4_udp"]),
        ("IPv6 TCP", info["ipv6_tcp"]),
        ("IPv6 UDP", info["ipv6_udp"]),
        ("Skipped", skipped),
    ]
    if info["first_ts"] is not None:
        rows += [
            ("First packet", f"{_iso(info['first_ts'])} ({_exact(info['first_ts_ns'])})"),
            ("Last packet", f"{_iso(info['last_ts'])} ({_exact(info['last_ts_ns'])})"),
            ("Duration", f"{info['duration']:.6f} s"),
        ]
    rows += [("Flows", f"{info['flows']} (5-tuple, one direction); {info['conversations']} conversations")]
    rows += [("Damage", "none" if not info["damage"] else info["damage"][0])]
    rows += [("", d) for d in info["damage"][1:]]
    width = max(len(k) for k, _ in rows) + 1
    return "\n".join(f"{(k + ':') if k else '':<{width}} {v}" for k, v in rows)


@click.command("inspect", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--reader", "reader_name", default="native", show_default=True, metavar="NAME", shell_complete=complete_reader,
              help="Packet reader (see 'netml plugins list').")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (stable keys) instead of text.")
@click.option("-v", "--verbose", count=True, help="-v progress, -vv debug.")
@click.argument("capture", default="-", metavar="CAPTURE")
def inspect_cmd(reader_name: str, as_json: bool, verbose: int, capture: str) -> None:
    """Describe a capture as a reader sees it: format, link types, packet counts, damage, flows.

    \b
    netml inspect capture.pcapng
    netml inspect --reader scapy --json capture.pcap
    netml inspect - < capture.pcap
    """
    from .learn import setup_logging

    setup_logging(verbose)
    from ..progress import Progress

    reader = get_registry().create("reader", reader_name)
    progress = Progress(capture)  # on a terminal only
    try:
        info = describe(reader, capture, get_registry().get("reader", reader_name).name, on_batch=progress.update)
    finally:
        progress.close()
    click.echo(json.dumps(info, indent=2) if as_json else _text(info))
