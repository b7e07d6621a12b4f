"""Classic pcap writer: from raw frames, or from packet columns built into Ethernet/IPv4 frames.

Why: ``netml demo`` and the tests need captures that any reader (ours, dpkt, scapy, tshark) opens,
made without a Python object per packet. ``write_pcap_columns`` lays every header of every packet
into one ``uint8`` buffer with numpy scatter writes, checksums included, and writes the file
atomically (temp file + ``os.replace``), so a crash never leaves half a capture behind.

Units: timestamps are integer nanoseconds since the epoch; lengths are bytes on the wire
(Ethernet header included, FCS excluded).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .atomic import atomic_output

LINKTYPE_ETHERNET = 1
MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D

ETH_LEN = 14
IP_LEN = 20
UDP_LEN = 8
TCP_LEN = 20
#: longest TCP header (SYNs carry options: MSS then NOP padding, up to this length)
TCP_MAX_LEN = 60
HDR_MAX = ETH_LEN + IP_LEN + TCP_MAX_LEN

TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}


def _file_header(linktype: int, snaplen: int, nanosecond: bool) -> bytes:
    magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
    hdr = np.zeros(1, dtype=[("magic", "<u4"), ("vmaj", "<u2"), ("vmin", "<u2"), ("zone", "<i4"),
                             ("sigfigs", "<u4"), ("snaplen", "<u4"), ("linktype", "<u4")])
    hdr[0] = (magic, 2, 4, 0, 0, snaplen, linktype)
    return hdr.tobytes()


def _record_headers(ts_ns: np.ndarray, caplen: np.ndarray, wire_len: np.ndarray, nanosecond: bool) -> np.ndarray:
    rec = np.zeros(len(ts_ns), dtype=[("sec", "<u4"), ("frac", "<u4"), ("incl", "<u4"), ("orig", "<u4")])
    sec, frac = np.divmod(np.asarray(ts_ns, dtype=np.int64), 1_000_000_000)
    if not nanosecond:
        frac = frac // 1000
    rec["sec"], rec["frac"], rec["incl"], rec["orig"] = sec, frac, caplen, wire_len
    return rec


def atomic_write(path, chunks: Sequence) -> None:
    """Write ``chunks`` (bytes or uint8 arrays) to ``path`` atomically."""
    with atomic_output(path, what="file") as fh:
        for chunk in chunks:
            fh.write(memoryview(chunk).cast("B") if isinstance(chunk, np.ndarray) else chunk)


def write_pcap_frames(path, ts_ns, frames: Sequence[bytes], *, linktype: int = LINKTYPE_ETHERNET,
                      nanosecond: bool = False, snaplen: int = 65535, wire_len=None) -> None:
    """Write already-built link-layer ``frames`` (bytes each) with their timestamps (ns)."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    if len(ts_ns) != len(frames):
        raise ValueError(f"{len(ts_ns)} timestamps for {len(frames)} frames")
    lengths = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
    wire = lengths if wire_len is None else np.asarray(wire_len, dtype=np.int64)
    caplen = np.minimum(lengths, snaplen)
    rec = _record_headers(ts_ns, caplen, wire, nanosecond)
    body = bytearray(_file_header(linktype, snaplen, nanosecond))
    for r, f, c in zip(rec, frames, caplen.tolist()):
        body += r.tobytes()
        body += f[:c]
    atomic_write(path, [bytes(body)])


def _put(buf: np.ndarray, pos: np.ndarray, values, width: int) -> None:
    """Scatter ``values`` big-endian, ``width`` bytes each, at byte positions ``pos`` of ``buf``."""
    v = np.asarray(values, dtype=np.uint64)
    for j in range(width):
        buf[pos + j] = ((v >> np.uint64(8 * (width - 1 - j))) & np.uint64(0xFF)).astype(np.uint8)


def _fold_checksum(total: np.ndarray) -> np.ndarray:
    total = total.astype(np.uint64)
    for _ in range(3):
        total = (total & np.uint64(0xFFFF)) + (total >> np.uint64(16))
    return (~total.astype(np.uint16)).astype(np.uint16)


def _word_sum(hdr: np.ndarray, start: int, stop: np.ndarray) -> np.ndarray:
    """Sum of big-endian 16-bit words of ``hdr[:, start:stop_i]`` per row (stop_i even)."""
    words = hdr[:, start:HDR_MAX].astype(np.uint64)
    words = (words[:, 0::2] << np.uint64(8)) | words[:, 1::2]
    keep = np.arange(words.shape[1])[None, :] < ((stop - start) // 2)[:, None]
    return np.where(keep, words, 0).sum(axis=1)


def build_frames(src, dst, sport, dport, proto, tcp_flags, ttl, frame_len, *, seq=None, ack=None,
                 ip_id=None, window=None, src_mac=None, dst_mac=None) -> tuple[np.ndarray, np.ndarray]:
    """Ethernet + IPv4 + TCP/UDP headers for every packet, vectorised.

    ``src``/``dst`` are IPv4 addresses as ``uint32``; ``frame_len`` is the whole frame in bytes
    (at least the headers; the rest is zero payload). A TCP SYN's header grows to fill its frame
    (up to 60 bytes) with an MSS option and NOPs, as real SYNs carry options rather than data.
    Returns ``(headers, header_len)``: an ``(n, 94) uint8`` matrix and the used width
    of each row. IPv4, TCP and UDP checksums are correct for the zero payload.
    """
    n = len(frame_len)
    src = np.asarray(src, dtype=np.uint64)
    dst = np.asarray(dst, dtype=np.uint64)
    proto = np.asarray(proto, dtype=np.uint64)
    flags = np.asarray(tcp_flags, dtype=np.uint64)
    frame_len = np.asarray(frame_len, dtype=np.int64)
    is_tcp = proto == 6
    is_syn = is_tcp & ((flags & np.uint64(0x02)) != 0)
    # a SYN's options fill the frame up to 60 header bytes (Linux SYN: 74-byte frame, Windows: 66)
    syn_hdr = np.clip((frame_len - ETH_LEN - IP_LEN) // 4 * 4, TCP_LEN, TCP_MAX_LEN)
    l4_hdr = np.where(is_tcp, np.where(is_syn, syn_hdr, TCP_LEN), UDP_LEN)
    hdr_len = ETH_LEN + IP_LEN + l4_hdr
    if np.any(frame_len < hdr_len):
        raise ValueError("frame_len shorter than the packet headers")
    zeros = np.zeros(n, dtype=np.uint64)
    src_mac = (np.uint64(0x020000000000) | src) if src_mac is None else np.asarray(src_mac, np.uint64)
    dst_mac = (np.uint64(0x020000000000) | dst) if dst_mac is None else np.asarray(dst_mac, np.uint64)

    hdr = np.zeros((n, HDR_MAX), dtype=np.uint8)
    flat = hdr.reshape(-1)
    base = np.arange(n, dtype=np.int64) * HDR_MAX
    _put(flat, base + 0, dst_mac, 6)
    _put(flat, base + 6, src_mac, 6)
    _put(flat, base + 12, np.full(n, 0x0800), 2)
    ip = base + ETH_LEN
    ip_total = frame_len - ETH_LEN
    _put(flat, ip + 0, np.full(n, 0x45), 1)
    _put(flat, ip + 2, ip_total, 2)
    _put(flat, ip + 4, zeros if ip_id is None else ip_id, 2)
    _put(flat, ip + 6, np.full(n, 0x4000), 2)  # don't fragment
    _put(flat, ip + 8, ttl, 1)
    _put(flat, ip + 9, proto, 1)
    _put(flat, ip + 12, src, 4)
    _put(flat, ip + 16, dst, 4)
    ip_sum = _word_sum(hdr, ETH_LEN, np.full(n, ETH_LEN + IP_LEN))
    _put(flat, ip + 10, _fold_checksum(ip_sum), 2)

    l4 = ip + IP_LEN
    l4_len = ip_total - IP_LEN
    _put(flat, l4 + 0, sport, 2)
    _put(flat, l4 + 2, dport, 2)
    # TCP fields (UDP rows are overwritten below where they overlap)
    _put(flat, l4 + 4, zeros if seq is None else seq, 4)
    _put(flat, l4 + 8, zeros if ack is None else ack, 4)
    _put(flat, l4 + 12, (l4_hdr // 4) << 4, 1)
    _put(flat, l4 + 13, flags, 1)
    _put(flat, l4 + 14, np.full(n, 64240) if window is None else window, 2)
    syn_rows = np.flatnonzero(is_syn & (l4_hdr >= TCP_LEN + 4))
    opt = l4[syn_rows] + TCP_LEN
    _put(flat, opt, np.full(len(syn_rows), 0x020405B4), 4)  # MSS 1460
    opt_len = (l4_hdr[syn_rows] - TCP_LEN)
    for k in range(4, TCP_MAX_LEN - TCP_LEN):
        rows = k < opt_len
        flat[opt[rows] + k] = 0x01  # NOP padding
    udp_rows = np.flatnonzero(~is_tcp)
    for k in range(4, TCP_LEN):
        flat[l4[udp_rows] + k] = 0
    _put(flat, l4[udp_rows] + 4, l4_len[udp_rows], 2)

    pseudo = ((src >> np.uint64(16)) + (src & np.uint64(0xFFFF)) + (dst >> np.uint64(16))
              + (dst & np.uint64(0xFFFF)) + proto + l4_len.astype(np.uint64))
    l4_sum = _word_sum(hdr, ETH_LEN + IP_LEN, hdr_len) + pseudo
    csum = _fold_checksum(l4_sum)
    csum_off = np.where(is_tcp, 16, 6)
    csum = np.where(~is_tcp & (csum == 0), 0xFFFF, csum)  # UDP: 0 means "no checksum"
    _put(flat, l4 + csum_off, csum, 2)
    return hdr, hdr_len


def write_pcap_columns(path, ts_ns, src, dst, sport, dport, proto, tcp_flags, ttl, frame_len, *,
                       nanosecond: bool = False, snaplen: int = 65535, **frame_fields) -> int:
    """Write one Ethernet/IPv4 frame per row of the columns (see ``build_frames``); returns bytes written.

    Payload bytes are zeros; ``snaplen`` cuts records (the record keeps the original length).
    """
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    frame_len = np.asarray(frame_len, dtype=np.int64)
    n = len(ts_ns)
    hdr, hdr_len = build_frames(src, dst, sport, dport, proto, tcp_flags, ttl, frame_len, **frame_fields)
    caplen = np.minimum(frame_len, snaplen)
    rec = _record_headers(ts_ns, caplen, frame_len, nanosecond)
    rec_bytes = rec.view(np.uint8).reshape(n, 16)
    starts = np.zeros(n, dtype=np.int64)
    if n:
        np.cumsum(16 + caplen[:-1], out=starts[1:])
    body = np.zeros(int(starts[-1] + 16 + caplen[-1]) if n else 0, dtype=np.uint8)
    col16 = np.arange(16)
    body[(starts[:, None] + col16).reshape(-1)] = rec_bytes.reshape(-1)
    width = np.minimum(hdr_len, caplen)
    cols = np.arange(HDR_MAX)[None, :]
    mask = cols < width[:, None]
    pos = (starts + 16)[:, None] + cols
    body[pos[mask]] = hdr[mask]
    head = _file_header(LINKTYPE_ETHERNET, snaplen, nanosecond)
    atomic_write(path, [head, body])
    return len(head) + len(body)
