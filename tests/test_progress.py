"""The progress line: what it says, and that it stays off stderr unless stderr is a terminal."""

from __future__ import annotations

import io

from netml_core.packets import PacketTable
from netml_core.progress import Progress

from helpers import SHARED, cli, need


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _batch(at):
    b = PacketTable.empty()
    b.bytes_read = at
    return b


def test_the_line_gives_packets_rate_share_and_eta(tmp_path):
    f = tmp_path / "c.pcap"
    f.write_bytes(b"\0" * 4_000_000)
    p = Progress(f, stream=_Tty())
    assert p.enabled and p.total == 4_000_000
    p.packets, p.bytes = 1_234_567, 1_000_000
    assert p.line(0.5) == "netml: 1,234,567 packets  1 MB  2.0 MB/s  25%  ETA 0:01"
    stdin = Progress("-", stream=_Tty())
    stdin.packets, stdin.bytes = 10, 3_000_000
    assert stdin.total is None and stdin.line(1.0) == "netml: 10 packets  3 MB  3.0 MB/s"


def test_updates_are_written_on_a_terminal_and_cleared():
    out = _Tty()
    p = Progress(None, stream=out)
    p.update(_batch(2_000_000))
    assert out.getvalue().startswith("\r\x1b[Knetml: 0 packets  2 MB")
    p.close()
    assert out.getvalue().endswith("\r\x1b[K")
    quiet = _Tty()
    q = Progress(None, enabled=False, stream=quiet)
    q.update(_batch(1))
    q.close()
    assert quiet.getvalue() == ""
    assert not Progress(None, stream=io.StringIO()).enabled  # a pipe or a file: nothing


def test_no_progress_line_when_stderr_is_not_a_terminal(tmp_path):
    capture = need(SHARED / "data" / "netml-demo" / "demo.pcap")
    code, _, err = cli("learn", "extract", "-p", capture, "--feature-file", tmp_path / "f.npz")
    assert code == 0 and "\r" not in err and "packets  " not in err
