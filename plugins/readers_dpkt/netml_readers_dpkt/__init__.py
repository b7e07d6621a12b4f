"""netml reader plugin ``dpkt``: hook implementations only (dpkt is imported when the reader is used)."""

from netml_core import hookimpl


@hookimpl
def register_readers(register):
    register("dpkt", "netml_readers_dpkt.reader:DpktReader",
             summary="dpkt frames pcap/pcapng records, netml's numpy decoder reads the headers")
