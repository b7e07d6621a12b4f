"""Live sources: a pipe, or a capture file being written (``--follow``), read as bytes arrive.

A file on disk is read in 8 MiB chunks; a live source cannot wait for 8 MiB (a quiet link takes
hours to send that), so ``LiveStream.read_some`` returns what has arrived as soon as the writer
pauses (``PAUSE``) or ``LINGER`` after the first byte, whichever comes first, and ``None`` when
nothing came for ``TICK`` seconds: the reader then yields an empty batch, a *tick*, so that the
consumer can end flows on the wall clock while the link is quiet. A record cut by the pause is
carried by the framer until its remainder arrives.

``Follow(path)`` is a source that reads a file as it grows, like ``tail -F``: at the end of the
data it waits for more; when the path names a new file (new inode) or the file shrank (truncated
and rewritten) it finishes the old file's records and opens the new one, header included.
"""

from __future__ import annotations

import os
import select
import stat
import time
from typing import Iterator

from ..errors import CaptureError

#: a writer silent this long has paused: hand over what arrived (seconds)
PAUSE = 0.05
#: a steady writer: hand over what arrived at least this often (seconds)
LINGER = 0.25
#: no byte for this long: a tick (an empty batch) so that the wall clock can end quiet flows
TICK = 0.25
#: how often a followed file is polled for growth (seconds)
POLL = 0.02


def is_live_fd(fd: int) -> bool:
    """A pipe or a socket (``tcpdump -w - | netml classify``): bytes arrive over time."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class LiveStream:
    """Bytes of a pipe or a growing file, read as they arrive (see the module docstring)."""

    live = True

    def __init__(self, fd: int, name: str, follow: "Follow | None" = None) -> None:
        self.fd, self.name, self.follow = fd, name, follow
        self.pipe = follow is None
        self._eof = False
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        """Exactly ``n`` bytes (fewer only at the end): used for headers, waits through pauses."""
        parts, got = [], 0
        while n < 0 or got < n:
            piece = self.read_some((1 << 20) if n < 0 else n - got)
            if piece is None:
                continue
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def read_some(self, n: int) -> bytes | None:
        """Up to ``n`` bytes, as soon as the writer pauses; ``None`` after ``TICK`` s of silence;
        ``b""`` at the end (the pipe closed, or the followed file was replaced and is read out)."""
        if self._eof:
            return b""
        first = self._next(n, TICK)
        if not first:
            self._eof = first == b""
            return first
        parts, got = [first], len(first)
        start = time.monotonic()
        while got < n:
            left = LINGER - (time.monotonic() - start)
            if left <= 0:
                break
            more = self._next(n - got, min(PAUSE, left))
            if more is None:
                break
            if not more:
                self._eof = True
                break
            parts.append(more)
            got += len(more)
        self.bytes_read += got
        return b"".join(parts)

    def _next(self, n: int, timeout: float) -> bytes | None:
        """Bytes that arrive within ``timeout`` s; ``None`` if none did; ``b""`` at the end."""
        deadline = time.monotonic() + timeout
        while True:
            data = self._now(n)
            if data is not None:
                return data
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self.pipe:
                select.select([self.fd], [], [], left)
            else:
                time.sleep(min(POLL, left))

    def _now(self, n: int) -> bytes | None:
        if self.pipe:
            ready, _, _ = select.select([self.fd], [], [], 0)
            return os.read(self.fd, n) if ready else None
        data = os.read(self.fd, n)
        if data:
            return data
        if self.follow.replaced(self.fd):
            return os.read(self.fd, n)  # what the writer added before it moved on; b"" ends this file
        return None

    def readable(self) -> bool:
        return True


class Follow:
    """A capture file followed as it is written and rotated (``netml classify --follow FILE``)."""

    def __init__(self, path) -> None:
        self.path = os.fspath(path)
        self.name = self.path
        self.files = 0  # files opened so far (1 + rotations)

    def __repr__(self) -> str:
        return f"Follow({self.path!r})"

    def streams(self) -> Iterator[LiveStream]:
        """One ``LiveStream`` per file that appears at the path, each until it is replaced."""
        while True:
            fd = self._open()
            try:
                self.files += 1
                yield LiveStream(fd, self.path, follow=self)
            finally:
                os.close(fd)

    def _open(self) -> int:
        """The file at the path; waits for it when it is missing only after a rotation."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                if not self.files:
                    raise CaptureError(f"{self.path}: no such file") from None
                time.sleep(POLL)  # rotated away, the new file not yet created
                continue
            except IsADirectoryError:
                raise CaptureError(f"{self.path}: is a directory, not a capture") from None
            except OSError as exc:
                raise CaptureError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.close(fd)
                raise CaptureError(f"{self.path}: is a directory, not a capture")
            return fd

    def replaced(self, fd: int) -> bool:
        """The path names another file now, or this file shrank below what was read (rewritten)."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False  # moved away and not yet recreated: keep waiting on the old one
        mine = os.fstat(fd)
        if now.st_ino != mine.st_ino or now.st_dev != mine.st_dev:
            return True
        return mine.st_size < os.lseek(fd, 0, os.SEEK_CUR)
