"""netml core: data types, plugin host and pipeline for flow-based novelty detection on captures."""

from importlib import metadata as _metadata

from .hookspecs import hookimpl
from .errors import NetmlError

try:
    __version__ = _metadata.version("netml")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = ["hookimpl", "NetmlError", "__version__"]
