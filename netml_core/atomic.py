"""Atomic output: write beside the target, then ``os.replace``.

Every file netml writes (models, features files, captures, reports) goes through here, so an
interrupted or failed run never leaves half a file where a user expects a whole one, nor a
temporary file beside it: the temporary file is removed by a ``finally``, which Ctrl-C and (through
the CLI's handler) SIGTERM run, and signals are held while it is created so that it always has a
name to be removed by.
"""

from __future__ import annotations

import os
import signal
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
        with _signals_held():  # an interrupt between creating the file and naming it would leak it
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


@contextmanager
def _signals_held() -> Iterator[None]:
    """Delay SIGINT and SIGTERM for the block (they are delivered, and raise, right after it)."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = mask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


def atomic_write(path, data: bytes, **kwargs) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path, **kwargs) as fh:
        fh.write(data)


def check_writable(path, what: str, folder: bool = False) -> None:
    """One-line ``NetmlError`` now if ``path`` cannot be written later (a folder given for a file,
    a read-only or missing location), by creating and removing a temporary file in its nearest
    existing folder: nothing is left behind, and missing folders are still created only on success.
    An existing file is replaced only if netml wrote it as ``what`` (``model file`` or ``features
    file``): an option must never overwrite a file it did not create (a label CSV given as
    ``--feature``)."""
    path = os.fspath(path)
    if path == "-":
        raise NetmlError(f"cannot write the {what} to stdout ('-'): give a path")
    target = Path(path)
    if target.is_dir() and not folder:
        raise NetmlError(f"cannot write {what} {path}: it is a folder")
    if not folder and target.exists() and not _is_netml_output(target, what):
        raise NetmlError(f"refusing to overwrite {path}: it exists and is not a netml {what} "
                         "(remove it or choose another path)")
    if folder and target.exists() and not target.is_dir():
        raise NetmlError(f"cannot write {what} {path}: it is a file")
    parent = target if folder and target.is_dir() else target.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NetmlError(f"cannot write {what} {path}: {parent} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise NetmlError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def _is_netml_output(path: Path, what: str) -> bool:
    """Whether ``path`` is a file netml wrote as ``what`` (a model or features zip), so that
    replacing it is expected; read from the zip directory only."""
    import zipfile

    member = "manifest.json" if what == "model file" else "format.npy"
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return path.is_file()  # an empty file holds nothing to lose
        with zipfile.ZipFile(path) as zf:
            return member in zf.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
