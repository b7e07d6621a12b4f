"""``netml plugins list``: what is installed and what each plugin provides.

Reads only registration data: no component factory is resolved, so torch, scapy and scikit-learn
are never imported here.
"""

from __future__ import annotations

import json

import click

from ..registry import get_registry


@click.group()
def plugins() -> None:
    """Inspect installed netml plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array instead of a table.")
def list_plugins(as_json: bool) -> None:
    """List plugins: distribution, version, status and the components each provides."""
    reg = get_registry()
    rows = [p.as_dict() for p in reg.plugins.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES")]
    for r in rows:
        provides = ", ".join(f"{c['kind']}:{c['name']}" for c in r["provides"]) or "-"
        table.append((r["plugin"], r["distribution"] or "-", r["version"] or "-", r["status"], provides))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    for r in rows:
        if r["error"]:
            click.echo(f"{r['plugin']}: {r['status']}: {r['error']}", err=True)
