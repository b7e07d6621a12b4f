"""A progress line on stderr for long reads: packets, MB/s, and the ETA when the size is known.

Hand-rolled (no dependency): one ``\\r``-rewritten line, at most five times a second, only when
stderr is a terminal (never in a pipe or a log file) and not ``-q``. The reader stamps each batch
with ``bytes_read`` (position in the capture file); the total is the file's size when the source is
a regular file (not stdin, not ``--follow``).
"""

from __future__ import annotations

import os
import sys
import time


class Progress:
    """``update(batch)`` per packet batch read; ``clear()`` before other output; ``close()`` at the end."""

    INTERVAL = 0.2

    def __init__(self, source=None, enabled: bool | None = None, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = _is_tty(self.stream)
        self.enabled = enabled
        self.total = _size(source)
        self.packets = 0
        self.bytes = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, batch) -> None:
        if not self.enabled:
            return
        self.packets += len(batch)
        self.bytes = max(self.bytes, int(getattr(batch, "bytes_read", 0) or 0))
        now = time.monotonic()
        if now - self._last >= self.INTERVAL:
            self._last = now
            self._write(self.line(now - self.start))

    def line(self, elapsed: float) -> str:
        """``1,234,567 packets  412 MB  85.3 MB/s  37%  ETA 0:12`` (size and ETA when known)."""
        rate = self.bytes / elapsed / 1e6 if elapsed > 0 else 0.0
        parts = [f"{self.packets:,} packets", f"{self.bytes / 1e6:,.0f} MB", f"{rate:,.1f} MB/s"]
        if self.total and self.bytes:
            done = min(1.0, self.bytes / self.total)
            parts.append(f"{done:.0%}")
            if rate > 0:
                left = int(max(0.0, (self.total - self.bytes) / (rate * 1e6)))
                parts.append(f"ETA {left // 60}:{left % 60:02d}")
        return "netml: " + "  ".join(parts)

    def clear(self) -> None:
        if self._shown:
            self._write("")
            self._shown = False

    def close(self) -> None:
        self.clear()

    def _write(self, text: str) -> None:
        try:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
            return
        self._shown = bool(text)


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _size(source) -> int | None:
    """Bytes of a regular file source, else None (stdin, a pipe, a followed file: no ETA)."""
    if not isinstance(source, (str, os.PathLike)) or str(source) == "-":
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    import stat

    return st.st_size if stat.S_ISREG(st.st_mode) else None
