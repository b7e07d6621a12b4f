"""``netml demo DIR``: write the built-in synthetic capture and its labels for a first run."""

from __future__ import annotations

import click

from ..demo import DEFAULT_SEED, make_demo


@click.command("demo")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--seed", type=click.IntRange(min=0), default=DEFAULT_SEED, show_default=True,
              help="Random seed; the same seed always writes the same bytes.")
def demo(directory: str, seed: int) -> None:
    """Write DIR/demo.pcap and DIR/demo.csv: four minutes of a small LAN with labelled attacks.

    Normal traffic (DNS, web sessions, NTP, broadcast chatter, SSH and chat sessions, visitors of
    the office web server, failed connections) plus a scan and sweep, a SYN flood, C2 beaconing, a
    slow upload (exfiltration) and a DNS tunnel, labelled in CICIDS2017 CSV columns so that
    `netml learn --pcap DIR/demo.pcap --label DIR/demo.csv --context` runs. Each scan probe and
    flood SYN looks like a normal failed connection: --context (host context) is what finds them.
    """
    info = make_demo(directory, seed=seed)
    kinds = ", ".join(f"{k} {v}" for k, v in info["by_label"].items() if k != "BENIGN")
    click.echo(f"wrote {info['pcap']} ({info['packets']} packets: {info['tcp']} TCP, {info['udp']} UDP)")
    click.echo(f"wrote {info['csv']} ({info['rows']} flow rows, {info['anomalous_rows']} anomalous: {kinds})")
    click.echo(f"next: netml learn --pcap {info['pcap']} --label {info['csv']} --context -o model.netml")
