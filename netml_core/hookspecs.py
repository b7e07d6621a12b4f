"""The hooks a netml plugin may implement (pluggy project ``netml``).

Each ``register_*`` hook receives ``register(name, factory, aliases=(), summary="")``; call it once
per component. ``factory`` is a class or a lazy ``"module:Class"`` string, so that listing plugins
never imports heavy libraries.
"""

import pluggy

hookspec = pluggy.HookspecMarker("netml")
hookimpl = pluggy.HookimplMarker("netml")


@hookspec
def register_readers(register):
    """Register packet readers (capture -> PacketTable)."""


@hookspec
def register_flow_splitters(register):
    """Register flow splitters (PacketTable -> FlowTable)."""


@hookspec
def register_features(register):
    """Register flow feature representations (FlowTable -> feature matrix)."""


@hookspec
def register_detectors(register):
    """Register novelty detectors (feature matrix -> anomaly scores)."""


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``netml`` CLI group ``cli``."""
