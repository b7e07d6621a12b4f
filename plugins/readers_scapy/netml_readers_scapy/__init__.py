"""netml reader plugin ``scapy``: hook implementations only (scapy is imported when the reader is used)."""

from netml_core import hookimpl


@hookimpl
def register_readers(register):
    register("scapy", "netml_readers_scapy.reader:ScapyReader",
             summary="scapy's raw pcap/pcapng readers frame records, netml's numpy decoder reads the headers")
