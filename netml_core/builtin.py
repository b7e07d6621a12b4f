"""The core's own plugin: what needs nothing beyond numpy (native reader, default splitter)."""

from .hookspecs import hookimpl


@hookimpl
def register_readers(register):
    register("native", "netml_core.readers.native:NativeReader",
             summary="pcap/pcapng framing in Python, header decoding vectorised in numpy")


@hookimpl
def register_flow_splitters(register):
    register("netml", "netml_core.splitter:NetmlFlowSplitter", aliases=("default",),
             summary="the original netml's 5-tuple flows, timeouts and interval sub-flows")
