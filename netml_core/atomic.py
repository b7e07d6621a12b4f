"""Atomic output: write beside the target, then ``os.replace``.

Every file netml writes (models, features files, captures, reports) goes through here, so an
interrupted or failed run never leaves half a file where a user expects a whole one.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from .errors import NetmlError


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_output(path, *, what: str = "file", error: type[NetmlError] = NetmlError,
                  make_parents: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary handle on a temp file that replaces ``path`` only if the block succeeds.

    OS errors (no such folder, permission, disk full) become one-line ``error``\\s naming ``what``.
    """
    target = Path(path)
    tmp = None
    try:
        if make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise error(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write(path, data: bytes, **kwargs) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path, **kwargs) as fh:
        fh.write(data)
