"""One exception family for everything a user can cause.

The CLI turns a ``NetmlError`` into a single line on stderr and a non-zero exit code; any other
exception is a bug and only shows its traceback with ``--debug``.
"""


class NetmlError(Exception):
    """A user-facing error carrying a one-line message."""

    exit_code = 2


class CaptureError(NetmlError):
    """The input is not a readable capture (not pcap/pcapng, unreadable, empty)."""


class UnknownComponentError(NetmlError):
    """A reader/splitter/feature/detector name that no installed plugin provides."""


class ParameterError(NetmlError):
    """A component parameter that does not exist or has a bad value."""


class ModelFileError(NetmlError):
    """A model file that is missing, not a netml model, truncated, too new or needs a missing plugin."""


class NotAModelError(ModelFileError):
    """A readable zip that is not a netml model (e.g. a features file); callers may try other readers."""


class NotFittedError(NetmlError):
    """A component was used before ``fit``."""
