"""The core's own plugin: what needs nothing beyond numpy (native reader, default splitter)."""

from .hookspecs import hookimpl


@hookimpl
def register_readers(register):
    register("native", "netml_core.readers.native:NativeReader",
             summary="pcap/pcapng framing in Python, header decoding vectorised in numpy")


@hookimpl
def register_flow_splitters(register):
    register("meter", "netml_core.flowmeter:FlowMeterSplitter", aliases=("default", "flowmeter"),
             summary="flow-meter flows: idle/active timeouts, TCP close, both directions, every packet kept")
    register("netml", "netml_core.splitter:NetmlFlowSplitter",
             summary="the original netml's 5-tuple flows, timeouts and interval sub-flows (0.x parity)")
