"""Build a large capture for benchmarks: demo.pcap's packets repeated with shifted timestamps.

Writes ``big.pcap`` (classic, little endian, microseconds) and ``big.pcapng`` (one section, one
Ethernet interface, Enhanced Packet Blocks, microsecond resolution) with at least ``n_packets``
packets into a directory (default ``bench-data/``, git-ignored). Each repetition of the 6000 demo
packets is shifted by the demo's duration plus one second, so timestamps keep increasing.

    python benchmarks/make_capture.py [OUT_DIR] [--packets N]

Other benchmarks: ``from make_capture import make_captures``.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO.parent / "shared" / "data" / "netml-demo" / "demo.pcap"
sys.path.insert(0, str(REPO))


def demo_records(path: Path = DEMO):
    """(list of packet bytes, ts_ns array, wire_len array) of every record in ``path``."""
    from netml_core.readers.pcap import PcapFramer
    from netml_core.readers.pcapng import PcapngFramer
    from netml_core.readers.source import open_capture

    packets, ts, wire = [], [], []
    with open_capture(path) as cap:
        framer = PcapFramer(cap.stream) if cap.kind == "pcap" else PcapngFramer(cap.stream)
        for rb in framer.batches():
            buf = rb.buf.tobytes()
            for o, c in zip(rb.data_off.tolist(), rb.caplen.tolist()):
                packets.append(buf[o : o + c])
            ts.append(rb.ts_ns)
            wire.append(rb.wire_len)
    return packets, np.concatenate(ts), np.concatenate(wire)


def _template(packets, wire, kind: str):
    """One repetition as a byte array plus the byte offsets of each record's timestamp fields."""
    parts, ts_pos = [], []
    pos = 0
    for p, w in zip(packets, wire.tolist()):
        if kind == "pcap":
            rec = struct.pack("<IIII", 0, 0, len(p), w) + p
            ts_pos.append(pos)
        else:
            pad = (-len(p)) % 4
            blen = 32 + len(p) + pad
            rec = struct.pack("<IIIIIII", 6, blen, 0, 0, 0, len(p), w) + p + b"\0" * pad + struct.pack("<I", blen)
            ts_pos.append(pos + 12)
        parts.append(rec)
        pos += len(rec)
    return np.frombuffer(b"".join(parts), np.uint8).copy(), np.asarray(ts_pos, np.int64)


def _header(kind: str) -> bytes:
    if kind == "pcap":
        return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 262144) + struct.pack("<I", 20)
    return shb + idb


def write_capture(path: Path, kind: str, packets, ts_ns, wire, n_packets: int) -> Path:
    reps = -(-n_packets // len(packets))
    tmpl, ts_pos = _template(packets, wire, kind)
    us = ts_ns // 1000
    shift = int(us.max() - us.min()) + 1_000_000
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(_header(kind))
        for r in range(reps):
            t = us + r * shift
            if kind == "pcap":
                fields = np.stack([t // 1_000_000, t % 1_000_000], axis=1).astype("<u4")
            else:
                fields = np.stack([t >> 32, t & 0xFFFFFFFF], axis=1).astype("<u4")
            tmpl[ts_pos[:, None] + np.arange(8)] = fields.view(np.uint8).reshape(-1, 8)
            f.write(tmpl.tobytes())
    os.replace(tmp, path)
    return path


def make_captures(out_dir="bench-data", n_packets: int = 1_000_000, force: bool = False) -> dict[str, Path]:
    """``{"pcap": path, "pcapng": path}`` with at least ``n_packets`` packets each (reused if present)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pcap": out / "big.pcap", "pcapng": out / "big.pcapng"}
    stamp = out / f"big.{n_packets}.done"
    if not force and stamp.exists() and all(p.exists() for p in paths.values()):
        return paths
    packets, ts, wire = demo_records()
    for kind, p in paths.items():
        write_capture(p, kind, packets, ts, wire, n_packets)
    stamp.write_text("")
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default=str(REPO / "bench-data"))
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    for kind, p in make_captures(a.out_dir, a.packets, a.force).items():
        print(f"{kind}: {p} ({p.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
