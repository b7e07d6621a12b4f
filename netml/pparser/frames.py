"""``PCAP.pcap2pandas``: one DataFrame row per Ethernet frame, with netml 0.7's columns.

The original dissected every packet with scapy. Here the core's pcap/pcapng framers find the
records and the Ethernet/VLAN/IPv4/IPv6/TCP/UDP header fields are read for all frames at once with
numpy; only DNS packets (port 53, 5353, 5355, as scapy binds them) have their question and first
answer decoded one by one. Columns (sorted by name, as the original did): ``time`` (epoch s),
``datetime`` (local time, whole seconds), ``time_normed`` (s since the first frame), ``length``
(bytes on the wire), ``mac_src``/``mac_dst`` and their ``*_int``, ``ip_src``/``ip_dst`` and their
``*_int``, ``protocol`` ('TCP', 'UDP', 'ICMP' or None), ``port_src``/``port_dst``, ``is_dns``,
``dns_transaction_id``, ``dns_query``, ``dns_resp``.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

import numpy as np

from netml_core.errors import NetmlError
from netml_core.readers.decode import gather
from netml_core.readers.pcap import PcapFramer
from netml_core.readers.pcapng import PcapngFramer
from netml_core.readers.source import open_capture

HEAD = 96  # bytes per frame read for headers: Ethernet + VLAN + IPv6 + TCP
DNS_PORTS = (53, 5353, 5355)


def _be(cols: np.ndarray) -> np.ndarray:
    out = np.zeros(len(cols), dtype=np.int64)
    for j in range(cols.shape[1]):
        out = (out << 8) | cols[:, j].astype(np.int64)
    return out


def _at(head: np.ndarray, off: np.ndarray, width: int) -> np.ndarray:
    """Big-endian field of ``width`` bytes at per-row offset ``off`` (0 where past the head)."""
    rows = np.arange(len(head))
    cols = np.clip(off[:, None] + np.arange(width), 0, HEAD - 1)
    return _be(head[rows[:, None], cols])


def _records(source):
    with open_capture(source) as cap:
        framer = PcapFramer(cap.stream, 1 << 23) if cap.kind == "pcap" else PcapngFramer(cap.stream, 1 << 23)
        for batch in framer.batches():
            if len(batch) == 0:
                continue
            eth = batch.linktype == 1
            off, caplen = batch.data_off[eth], batch.caplen[eth]
            head = gather(batch.buf, off, HEAD).copy()
            head[np.arange(HEAD)[None, :] >= caplen[:, None]] = 0  # bytes past the record are not ours
            payload = [bytes(batch.buf[o:o + c]) for o, c in zip(off.tolist(), caplen.tolist())]
            yield batch.ts_ns[eth], batch.wire_len[eth], caplen, head, payload


def _dns_fields(data: bytes):
    """(transaction id, qtype, query name, first answer name, first answer rdata) of a DNS message."""
    if len(data) < 12:
        return None
    tid = int.from_bytes(data[0:2], "big")
    qd, an = int.from_bytes(data[4:6], "big"), int.from_bytes(data[6:8], "big")
    pos, qname, qtype = 12, None, None
    rrname = rdata = None
    try:
        if qd:
            qname, pos = _name(data, pos)
            qtype = int.from_bytes(data[pos:pos + 2], "big")
            pos += 4
        if an:
            rrname, pos = _name(data, pos)
            rtype = int.from_bytes(data[pos:pos + 2], "big")
            rdlen = int.from_bytes(data[pos + 8:pos + 10], "big")
            raw = data[pos + 10:pos + 10 + rdlen]
            if rtype == 1 and len(raw) == 4:
                rdata = str(ipaddress.IPv4Address(raw))
            elif rtype == 28 and len(raw) == 16:
                rdata = str(ipaddress.IPv6Address(raw))
    except (IndexError, ValueError):
        pass
    return tid, qtype, qname, rrname, rdata


def _name(data: bytes, pos: int, depth: int = 0) -> tuple[str, int]:
    labels = []
    while True:
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 == 0xC0:  # compression pointer
            if depth > 8:
                raise ValueError("pointer loop")
            target = ((n & 0x3F) << 8) | data[pos + 1]
            rest, _ = _name(data, target, depth + 1)
            labels.append(rest.rstrip("."))
            pos += 2
            break
        labels.append(data[pos + 1:pos + 1 + n].decode("utf-8", "replace"))
        pos += 1 + n
    return ".".join(x for x in labels if x) + ".", pos


def packets_dataframe(source):
    try:
        import pandas as pd
    except ImportError:
        raise NetmlError("pcap2pandas needs pandas: pip install pandas") from None
    parts = []
    for ts_ns, wire, caplen, head, payload in _records(source):
        n = len(ts_ns)
        etype = _be(head[:, 12:14])
        l3 = np.full(n, 14, np.int64)
        vlan = (etype == 0x8100) | (etype == 0x88A8)
        etype = np.where(vlan, _be(head[:, 16:18]), etype)
        l3 = np.where(vlan, 18, l3)
        v4 = (etype == 0x0800) & (caplen >= l3 + 20)
        v6 = (etype == 0x86DD) & (caplen >= l3 + 40)
        ihl = (_at(head, l3, 1) & 0x0F) * 4
        proto = np.where(v4, _at(head, l3 + 9, 1), np.where(v6, _at(head, l3 + 6, 1), -1))
        first_frag = ~v4 | ((_at(head, l3 + 6, 2) & 0x1FFF) == 0)
        l4 = np.where(v4, l3 + ihl, l3 + 40)
        has_ports = (v4 | v6) & np.isin(proto, (6, 17)) & first_frag & (caplen >= l4 + 4)
        sport = np.where(has_ports, _at(head, l4, 2), -1)
        dport = np.where(has_ports, _at(head, l4 + 2, 2), -1)
        src4, dst4 = _at(head, l3 + 12, 4), _at(head, l3 + 16, 4)
        mac_src, mac_dst = _be(head[:, 6:12]), _be(head[:, 0:6])
        tcp_hdr = (_at(head, l4 + 12, 1) >> 4) * 4
        dns = has_ports & (np.isin(sport, DNS_PORTS) | np.isin(dport, DNS_PORTS))
        dns_off = np.where(proto == 6, l4 + tcp_hdr + 2, l4 + 8)  # DNS over TCP has a length prefix
        sec, frac = np.divmod(ts_ns, 1_000_000_000)
        rows = {
            "time": sec + frac / 1e9,
            "length": wire,
            "mac_src": [":".join(f"{b:02x}" for b in int(m).to_bytes(6, "big")) for m in mac_src.tolist()],
            "mac_dst": [":".join(f"{b:02x}" for b in int(m).to_bytes(6, "big")) for m in mac_dst.tolist()],
            "mac_src_int": mac_src,
            "mac_dst_int": mac_dst,
        }
        ip_src, ip_dst, ip_src_int, ip_dst_int = [], [], [], []
        for i in range(n):
            if v4[i]:
                s, d = int(src4[i]), int(dst4[i])
            elif v6[i]:
                o = int(l3[i])
                s = int.from_bytes(bytes(head[i, o + 8:o + 24]), "big")
                d = int.from_bytes(bytes(head[i, o + 24:o + 40]), "big")
            else:
                ip_src.append(None), ip_dst.append(None), ip_src_int.append(None), ip_dst_int.append(None)
                continue
            conv = ipaddress.IPv4Address if v4[i] else ipaddress.IPv6Address
            ip_src.append(str(conv(s))), ip_dst.append(str(conv(d)))
            ip_src_int.append(s), ip_dst_int.append(d)
        rows.update(ip_src=ip_src, ip_dst=ip_dst, ip_src_int=ip_src_int, ip_dst_int=ip_dst_int)
        protocol = np.full(n, None, dtype=object)
        protocol[has_ports & (proto == 6)] = "TCP"
        protocol[has_ports & (proto == 17)] = "UDP"
        protocol[(v4 & (proto == 1)) | (v6 & (proto == 58))] = "ICMP"
        rows["protocol"] = protocol
        rows["port_src"] = [int(p) if p >= 0 else None for p in sport.tolist()]
        rows["port_dst"] = [int(p) if p >= 0 else None for p in dport.tolist()]
        is_dns = np.zeros(n, bool)
        tid, query, resp = [None] * n, [None] * n, [None] * n
        for i in np.flatnonzero(dns).tolist():
            fields = _dns_fields(payload[i][int(dns_off[i]):])
            if fields is None:
                continue
            tid[i] = fields[0]
            if fields[2] is not None or fields[3] is not None:
                is_dns[i] = True
                query[i] = fields[3] if fields[3] is not None else fields[2]
                resp[i] = fields[4]
        rows.update(is_dns=is_dns, dns_transaction_id=tid, dns_query=query, dns_resp=resp)
        parts.append(pd.DataFrame(rows))
    if not parts:
        raise NetmlError(f"no Ethernet frames in {getattr(source, 'name', source)}")
    df = pd.concat(parts, ignore_index=True)
    df["datetime"] = pd.to_datetime([datetime.fromtimestamp(int(t)) for t in df["time"]])
    df["time_normed"] = df["time"] - df["time"].iloc[0]
    df["dns_transaction_id"] = df["dns_transaction_id"].astype(pd.Int64Dtype())
    return df.sort_index(axis=1)
