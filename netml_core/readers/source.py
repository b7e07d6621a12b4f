"""Open a capture source and sniff what it is from its first bytes, never from its name.

A source is a path (``str`` / ``Path``), ``-`` for standard input, or a binary file object. Standard
input and pipes are not seekable, so the bytes used for sniffing are kept and handed back in front
of the stream (``Prefixed``) instead of seeking back. gzip is undone on the fly (stdlib);
zstd only when the ``zstandard`` package happens to be installed.
"""

from __future__ import annotations

import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CaptureError
from .live import LiveStream, is_live_fd

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False),  # little endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", False),  # big endian, microseconds
    b"\x4d\x3c\xb2\xa1": ("<", True),  # little endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", True),  # big endian, nanoseconds
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Prefixed:
    """A read-only byte stream: ``prefix`` first, then ``stream`` (for sniffed, unseekable input)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            head, self._prefix = self._prefix, b""
            if n is None or n < 0:
                return head + _read_all(self._stream)
            if len(head) >= n:
                self._prefix = head[n:]
                return head[:n]
            return head + read_exactly(self._stream, n - len(head))
        if n is None or n < 0:
            return _read_all(self._stream)
        return read_exactly(self._stream, n)

    def read_some(self, n: int) -> bytes | None:
        """What a live stream has (``LiveStream.read_some``); a whole chunk from any other stream."""
        if self._prefix:
            head, self._prefix = self._prefix[:n], self._prefix[n:]
            return head
        return read_chunk(self._stream, n)

    @property
    def live(self) -> bool:
        return bool(getattr(self._stream, "live", False))

    def readable(self) -> bool:
        return True

    def unwrap(self):
        """The underlying stream once the sniffed prefix has been consumed (fewer Python layers)."""
        return self if self._prefix else self._stream


def _read_all(stream) -> bytes:
    parts = []
    while True:
        b = stream.read(1 << 20)
        if not b:
            return b"".join(parts)
        parts.append(b)


def read_exactly(stream, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at end of stream (pipes and gzip may return short reads)."""
    data = stream.read(n)
    if data is None:
        data = b""
    if len(data) >= n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_chunk(stream, n: int) -> bytes | None:
    """The framers' next chunk: ``n`` bytes from a file; from a live stream what has arrived when
    the writer pauses, ``None`` after a silence (a tick), ``b""`` at the end."""
    some = getattr(stream, "read_some", None)
    return some(n) if some is not None else read_exactly(stream, n)


@dataclass
class Capture:
    """An opened, sniffed capture: ``kind`` is ``pcap`` or ``pcapng``; ``stream`` starts at byte 0."""

    name: str
    kind: str
    stream: Prefixed
    compression: str = ""  # "" or "gzip" / "zstd"
    _owned: BinaryIO | None = None
    _decompressor: object = None

    @property
    def live(self) -> bool:
        """Bytes arrive over time (a pipe, a followed file): batches are handed over at pauses."""
        return self.stream.live

    def position(self) -> int:
        """Bytes of the capture file (or live stream) read so far: progress only."""
        if self._owned is not None:
            try:
                return self._owned.tell()
            except (OSError, ValueError):
                return 0
        return int(getattr(getattr(self.stream, "_stream", None), "bytes_read", 0))

    def stream_damage(self) -> list[str]:
        """Damage found below the capture format (a broken gzip stream), as sentences."""
        err = getattr(self._decompressor, "error", "")
        return [err] if err else []

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def source_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return "<stdin>" if str(source) == "-" else str(source)
    return str(getattr(source, "name", "<stream>"))


def _fileno(stream) -> int:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return -1


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def open_capture(source) -> Capture:
    """Open ``source`` and sniff it; raises ``CaptureError`` (one line) if it is not a capture."""
    name = source_name(source)
    owned = None
    if isinstance(source, (str, os.PathLike)):
        if str(source) == "-":
            if sys.stdin is None:
                raise CaptureError("<stdin>: there is no standard input (it is closed)")
            if _is_terminal(sys.stdin):  # reading would wait for typed bytes forever
                raise CaptureError("<stdin> is a terminal, not a capture: redirect one (< FILE) or name the file")
            stream = sys.stdin.buffer
            if is_live_fd(_fileno(sys.stdin)):  # tcpdump -w - | netml ...: read as bytes arrive
                stream = LiveStream(_fileno(sys.stdin), "<stdin>")
        else:
            path = Path(source)
            try:
                stream = owned = open(path, "rb")
            except FileNotFoundError:
                raise CaptureError(f"{name}: no such file") from None
            except IsADirectoryError:
                raise CaptureError(f"{name}: is a directory, not a capture") from None
            except OSError as exc:
                raise CaptureError(f"{name}: cannot open: {exc.strerror or exc}") from None
    elif hasattr(source, "read"):
        stream = source
    else:
        raise CaptureError(f"cannot read a capture from a {type(source).__name__}")
    try:
        return _sniff(name, stream, owned)
    except BaseException:
        if owned is not None:
            owned.close()
        raise


def _sniff(name: str, stream, owned, compression: str = "") -> Capture:
    try:
        head = read_exactly(stream, 4)
    except OSError as exc:
        raise CaptureError(f"{name}: cannot read: {exc}") from None
    if isinstance(head, str):
        raise CaptureError(f"{name}: opened in text mode; a binary stream is needed")
    body = Prefixed(head, stream)
    if head in PCAP_MAGICS:
        return Capture(name, "pcap", body, compression, owned)
    if head == PCAPNG_MAGIC:
        return Capture(name, "pcapng", body, compression, owned)
    if not compression and head[:2] == GZIP_MAGIC:
        gz = _GzipStream(body)
        cap = _sniff(name, gz, owned, "gzip")
        cap._decompressor = gz
        return cap
    if not compression and head == ZSTD_MAGIC:
        try:
            import zstandard  # optional: only if the user has it
        except ImportError:
            raise CaptureError(
                f"{name}: zstd-compressed capture; decompress it first (zstd -d) or install 'zstandard'"
            ) from None
        reader = zstandard.ZstdDecompressor().stream_reader(body)
        return _sniff(name, reader, owned, "zstd")
    if not head:
        raise CaptureError(f"{name}: empty file, not a pcap or pcapng capture")
    what = f" ({compression}-compressed)" if compression else ""
    raise CaptureError(f"{name}: not a pcap or pcapng capture{what} (starts with {head.hex(' ')})")


class _GzipStream:
    """gzip decompression whose damage (bad data, bad CRC, cut member) ends the stream instead of
    raising, keeping every byte that decompresses before it.

    zlib is fed 16 KiB of compressed input at a time with a cap on the output of each call, so a
    gzip bomb never holds more than one read's worth of output. When zlib refuses a piece, the
    piece is fed again one byte at a time from the state before it, so the output up to the damaged
    byte is kept (``GzipFile`` decompresses 128 KiB at a time and lost a whole small file to a bit
    flipped near its end). Concatenated members are read in turn; zero padding after the last
    member is ignored, as gzip does.
    """

    FEED = 16 << 10

    def __init__(self, raw) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b""  # compressed bytes read but not yet consumed
        self._spill = b""  # output decompressed but not yet handed out
        self._done = False
        self._started = False  # the current member has consumed input
        self.error = ""

    def read(self, n: int = -1) -> bytes:
        parts: list[bytes] = []
        got = 0
        while n is None or n < 0 or got < n:
            want = 1 << 20 if n is None or n < 0 else min(1 << 20, n - got)
            piece = self._next(want)
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def _next(self, limit: int) -> bytes:
        """At most ``limit`` decompressed bytes; b"" at the end of the stream."""
        if self._spill:
            out, self._spill = self._spill[:limit], self._spill[limit:]
            return out
        while not self._done:
            if not self._input:
                self._input = self._raw.read(self.FEED) or b""
                if not self._input:
                    self._done = True
                    if self._started and not self._d.eof:
                        self.error = ("gzip stream damaged (it ends before the end of its last member): "
                                      "the packets before it are kept")
                    return b""
            before = self._d.copy()
            data, self._input = self._input[:self.FEED], self._input[self.FEED:]
            try:
                out = self._d.decompress(data, limit)
            except zlib.error as exc:
                self._done = True
                self.error = f"gzip stream damaged ({exc}): the packets before it are kept"
                self._spill = _inflate_until_error(before, data)
                out, self._spill = self._spill[:limit], self._spill[limit:]
                return out
            self._started = True
            if self._d.eof:  # what follows the member is in unused_data (unconsumed_tail may repeat it)
                self._input = self._d.unused_data + self._input
                self._next_member()
            else:
                self._input = self._d.unconsumed_tail + self._input
            if out:
                return out
        return b""

    def _next_member(self) -> None:
        """After a member's end: another member, zero padding, or bytes that are not gzip."""
        rest = self._input
        while True:
            rest = rest.lstrip(b"\0")
            if rest or self._raw is None:
                break
            more = self._raw.read(self.FEED)
            if not more:
                break
            rest = more
        self._input = rest
        if not rest:
            self._done = True
        elif rest[:2] == GZIP_MAGIC:
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._started = False
        else:
            self._done = True
            self.error = "bytes that are not gzip follow the compressed capture: ignored"


def _inflate_until_error(d, data: bytes, cap: int = 64 << 20) -> bytes:
    """What ``d`` gives for ``data`` fed byte by byte, up to the byte zlib refuses."""
    out = bytearray()
    for i in range(len(data)):
        try:
            out += d.decompress(data[i:i + 1])
        except zlib.error:
            break
        if len(out) > cap:
            break
    return bytes(out)
