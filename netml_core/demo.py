"""A deterministic synthetic capture with labelled anomalies, for a first run without external data.

``make_demo(directory)`` writes ``demo.pcap`` (classic pcap, Ethernet/IPv4) and ``demo.csv`` (the
CICIDS2017 label columns that ``--label`` reads, ``BENIGN`` = normal). Four minutes of a small office
LAN: ten hosts (Windows, Linux, macOS TTLs) doing DNS lookups, HTTPS/HTTP sessions with handshakes,
slow-start bursts, delayed ACKs and keep-alive reuse, NTP, NetBIOS/mDNS/SSDP broadcast chatter, SSH
and chat sessions that last the whole capture, outside clients of the office web server, and the
connections that fail on any network (refused, unanswered, cancelled, half-open); and five attacks:
a connect() scan and sweep from an infected workstation, a spoofed SYN flood (seen through the
victim's SYN/ACK retransmissions), HTTPS beaconing to a C2 server, a bulk upload (exfiltration) and
a DNS tunnel.

Fairness: attack traffic uses the same ports (53, 80, 443), the same hosts and the same TTL mix as
normal traffic, so no single header field separates the classes; what differs is how the flows
behave in time and size. The scan and the flood go further: each of their flows is shaped like a
normal failed connection (same OS stacks, same retransmission timers), so only their number and
spread in time, per host, gives them away (``--context``). Generation is numpy with a fixed seed:
the same call gives the same bytes.
Units: seconds and bytes on the wire (Ethernet frame without FCS).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import NetmlError
from .pcapwriter import atomic_write, write_pcap_columns

DEFAULT_SEED = 20171
BASE_TS = 1_700_000_000  # 2023-11-14 22:13:20 UTC
DURATION = 240.0  # seconds of traffic

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
SYNACK, PSHACK, FINACK, RSTACK = SYN | ACK, PSH | ACK, FIN | ACK, RST | ACK
TCP, UDP = 6, 17
MSS_FRAME = 1514  # full Ethernet frame of a 1460-byte TCP segment
ACK_FRAME = 54

CSV_COLUMNS = ["Flow ID", " Source IP", " Source Port", " Destination IP", " Destination Port",
               " Protocol", " Timestamp", " Flow Duration", " Total Fwd Packets",
               " Total Backward Packets", "Total Length of Fwd Packets",
               " Total Length of Bwd Packets", " Label"]

#: label names in the CSV, CICIDS2017 style
LABELS = ("BENIGN", "PortScan", "DoS-SYNflood", "Bot-Beacon", "Exfiltration", "DNS-Tunnel")


def ip(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def ip_text(value: int) -> str:
    return ".".join(str((int(value) >> s) & 0xFF) for s in (24, 16, 8, 0))


@dataclass
class Host:
    addr: int
    ttl: int  # TTL as seen at the capture point (initial TTL minus hops)
    syn_frame: int  # SYN frame length of its TCP stack (options differ per OS)


class _Capture:
    """Accumulates packet columns and the conversations (directional 5-tuple pairs) they belong to."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                                  ("ts", "src", "dst", "sport", "dport", "proto", "flags", "ttl", "size", "conv")}
        self.convs: list[tuple] = []  # (client, server, cport, sport, proto, label)
        self._ports: dict[int, list[int]] = {}

    def port(self, host: Host) -> int:
        """A fresh ephemeral port of ``host`` (never reused, so every conversation has its own 5-tuple)."""
        pool = self._ports.get(host.addr)
        if not pool:
            pool = list(self.rng.permutation(np.arange(49152, 65536)))
            self._ports[host.addr] = pool
        return int(pool.pop())

    def conv(self, client: Host, server: Host, cport: int, sport: int, proto: int, label: int) -> int:
        self.convs.append((client, server, int(cport), int(sport), proto, label))
        return len(self.convs) - 1

    def add(self, conv: int, ts, from_client, flags, size) -> None:
        ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
        n = len(ts)
        client, server, cport, sport, proto, _ = self.convs[conv]
        fc = np.broadcast_to(np.asarray(from_client, dtype=bool), (n,))
        self.cols["ts"].append(ts)
        self.cols["src"].append(np.where(fc, client.addr, server.addr))
        self.cols["dst"].append(np.where(fc, server.addr, client.addr))
        self.cols["sport"].append(np.where(fc, cport, sport))
        self.cols["dport"].append(np.where(fc, sport, cport))
        self.cols["proto"].append(np.full(n, proto))
        self.cols["flags"].append(np.broadcast_to(np.asarray(flags), (n,)).astype(np.int64))
        self.cols["ttl"].append(np.where(fc, client.ttl, server.ttl))
        self.cols["size"].append(np.broadcast_to(np.asarray(size), (n,)).astype(np.int64))
        self.cols["conv"].append(np.full(n, conv))

    def table(self) -> dict[str, np.ndarray]:
        cols = {k: np.concatenate(v) for k, v in self.cols.items()}
        keep = (cols["ts"] >= 0) & (cols["ts"] < DURATION + 60)
        cols = {k: v[keep] for k, v in cols.items()}
        order = np.argsort(cols["ts"], kind="stable")
        return {k: v[order] for k, v in cols.items()}


# -- traffic models ------------------------------------------------------------------------------

def _tcp_session(cap: _Capture, client: Host, server: Host, dport: int, t0: float, rtt: float,
                 requests: list[tuple[int, int]], think: np.ndarray, label: int = 0,
                 close_after: float | None = None, upload: bool = False) -> float:
    """One TCP connection: handshake, request/response exchanges, FIN close. Returns its end time.

    ``requests`` holds (request frame bytes, response segments). With ``upload`` the client sends the
    segments (bulk upload) and the server only ACKs. Segments leave in slow-start bursts (10, 20, 40,
    ... segments per RTT) and the receiver ACKs every second segment.
    """
    rng = cap.rng
    c = cap.conv(client, server, cap.port(client), dport, TCP, label)
    cap.add(c, t0, True, SYN, client.syn_frame)
    cap.add(c, t0 + rtt, False, SYNACK, server.syn_frame)
    t = t0 + rtt + rng.uniform(2e-5, 2e-4)
    cap.add(c, t, True, ACK, ACK_FRAME)
    cwnd = 10
    for j, (req, segs) in enumerate(requests):
        if j:
            t += think[j - 1]
        t += rng.uniform(1e-5, 1e-3)
        cap.add(c, t, True, PSHACK, req)
        t += rtt + rng.exponential(0.02)  # server processing
        # segment k of the response goes out in burst b = the slow-start round it falls in
        k = np.arange(segs)
        bursts = np.searchsorted(np.cumsum(cwnd * 2 ** np.arange(12)), k, side="right")
        gap = MSS_FRAME * 8 / rng.uniform(5e7, 4e8)  # serialisation at 50-400 Mbit/s
        seg_ts = t + bursts * rtt + k * gap + rng.uniform(0, gap / 4, segs)
        sizes = np.full(segs, MSS_FRAME)
        sizes[-1] = rng.integers(120, MSS_FRAME + 1)
        flags = np.full(segs, ACK)
        flags[-1] = PSHACK
        cap.add(c, seg_ts, upload, flags, sizes)
        acks = seg_ts[1::2] + rng.uniform(5e-5, 3e-4, len(seg_ts[1::2])) + (rtt / 2 if upload else 0)
        cap.add(c, acks, not upload, ACK, ACK_FRAME)
        t = float(max(seg_ts[-1], acks[-1] if len(acks) else 0))
        cwnd = min(cwnd * 2 ** int(bursts[-1] + 1), 80)
    t += close_after if close_after is not None else rng.exponential(0.3)
    closer = bool(rng.random() < 0.6)
    cap.add(c, t, closer, FINACK, ACK_FRAME)
    cap.add(c, t + rtt, not closer, FINACK, ACK_FRAME)
    cap.add(c, t + rtt + rng.uniform(1e-5, 1e-4), closer, ACK, ACK_FRAME)
    return t + rtt


def _web(cap: _Capture, clients: list[Host], servers: list[Host], local: Host) -> None:
    rng = cap.rng
    for client in clients:
        starts = np.cumsum(rng.exponential(7.0, 60))
        for t0 in starts[starts < DURATION - 5]:
            r = rng.random()
            if r < 0.08:
                server, dport, rtt = local, 80, rng.uniform(2e-4, 1e-3)
            else:
                server = servers[rng.integers(len(servers))]
                dport = 80 if r < 0.18 else 443
                rtt = float(rng.lognormal(np.log(0.035), 0.5))
            n_req = int(min(1 + rng.geometric(0.55) - 1, 5))
            reqs = [(int(rng.integers(300, 1300)), int(np.clip(rng.lognormal(1.6, 1.1), 1, 150)))
                    for _ in range(n_req)]
            think = rng.exponential(0.8, max(n_req - 1, 1))
            _tcp_session(cap, client, server, dport, float(t0), rtt, reqs, think,
                         close_after=float(rng.choice([rng.exponential(0.2), rng.uniform(3, 20)])))


def _dns(cap: _Capture, clients: list[Host], resolver: Host, dual_stack: set[int]) -> None:
    """Lookups: dual-stack hosts ask A then AAAA from one socket (2-packet flows), others A only."""
    rng = cap.rng
    for client in clients:
        starts = np.cumsum(rng.exponential(3.0, 120))
        starts = starts[starts < DURATION]
        for t0 in starts:
            c = cap.conv(client, resolver, cap.port(client), 53, UDP, 0)
            qlen = int(rng.integers(70, 100))
            rtt = float(rng.lognormal(np.log(0.006), 0.9))
            n_q = 2 if client.addr in dual_stack else 1
            # the AAAA query follows the A answer (resolver option single-request)
            q_ts = t0 + np.array([0.0, rtt + rng.uniform(1e-4, 1e-3)])[:n_q]
            cap.add(c, q_ts, True, 0, qlen)
            answers = qlen + np.array([16 * rng.integers(1, 5), 28 * rng.integers(0, 3)])[:n_q]
            cap.add(c, q_ts + rtt * rng.uniform(0.9, 1.1, n_q), False, 0, answers)


def _ntp(cap: _Capture, clients: list[Host], server: Host) -> None:
    rng = cap.rng
    for client in clients:
        c = cap.conv(client, server, 123, 123, UDP, 0)
        ts = rng.uniform(0, 64) + np.arange(0, DURATION, 64.0) + rng.normal(0, 0.5, len(np.arange(0, DURATION, 64.0)))
        cap.add(c, ts, True, 0, 90)
        cap.add(c, ts + rng.lognormal(np.log(0.03), 0.3, len(ts)), False, 0, 90)


def _broadcast(cap: _Capture, windows: list[Host], others: list[Host], bcast: Host, mdns: Host,
               ssdp: Host) -> None:
    """NetBIOS name queries (bursts of 3, 0.75 s apart), mDNS (pairs 1 s apart), SSDP M-SEARCH (4 x 1 s)."""
    rng = cap.rng
    for h in windows:
        c = cap.conv(h, bcast, 137, 137, UDP, 0)
        bursts = np.cumsum(rng.exponential(25.0, 20))
        bursts = bursts[bursts < DURATION]
        ts = (bursts[:, None] + np.arange(3) * 0.75 + rng.uniform(0, 0.01, (len(bursts), 3))).ravel()
        cap.add(c, ts, True, 0, rng.choice([92, 110], len(ts)))
        for t0 in np.cumsum(rng.exponential(60.0, 6)):
            if t0 < DURATION:
                c = cap.conv(h, ssdp, cap.port(h), 1900, UDP, 0)
                cap.add(c, t0 + np.arange(4) * 1.0 + rng.uniform(0, 0.02, 4), True, 0, 217)
    for h in others:
        c = cap.conv(h, mdns, 5353, 5353, UDP, 0)
        bursts = np.cumsum(rng.exponential(40.0, 12))
        bursts = bursts[bursts < DURATION]
        ts = (bursts[:, None] + np.array([0.0, 1.0]) + rng.uniform(0, 0.05, (len(bursts), 2))).ravel()
        cap.add(c, ts, True, 0, rng.integers(80, 400, len(ts)))


def _ssh(cap: _Capture, client: Host, server: Host, rtt: float) -> None:
    """An interactive session: typing bursts (keystroke, echo, delayed ACK), pauses, command output."""
    rng = cap.rng
    c = cap.conv(client, server, cap.port(client), 22, TCP, 0)
    t = float(rng.uniform(0, 5))
    cap.add(c, [t, t + rtt, t + rtt + 1e-4], [True, False, True], [SYN, SYNACK, ACK],
            [client.syn_frame, server.syn_frame, ACK_FRAME])
    while t < DURATION:
        t += rng.exponential(8.0)
        n = int(rng.integers(3, 25))
        keys = t + np.cumsum(rng.lognormal(np.log(0.18), 0.5, n))
        cap.add(c, keys, True, PSHACK, rng.choice([102, 118, 134], n))
        cap.add(c, keys + rtt, False, PSHACK, rng.choice([102, 118, 134], n))
        cap.add(c, keys + rtt + 0.04, True, ACK, ACK_FRAME)
        t = float(keys[-1] + rtt)
        if rng.random() < 0.4:  # command output
            m = int(rng.integers(2, 30))
            out = t + 0.01 + np.cumsum(rng.exponential(0.002, m))
            cap.add(c, out, False, PSHACK, rng.integers(150, MSS_FRAME + 1, m))
            cap.add(c, out[1::2] + 1e-4, True, ACK, ACK_FRAME)
            t = float(out[-1])


def _chat(cap: _Capture, client: Host, server: Host, rtt: float) -> None:
    """A long-lived TLS connection where the server pushes messages at irregular times."""
    rng = cap.rng
    c = cap.conv(client, server, cap.port(client), 443, TCP, 0)
    t = float(rng.uniform(0, 3))
    cap.add(c, [t, t + rtt, t + rtt + 1e-4], [True, False, True], [SYN, SYNACK, ACK],
            [client.syn_frame, server.syn_frame, ACK_FRAME])
    msgs = t + np.cumsum(rng.exponential(2.5, 200))
    msgs = msgs[msgs < DURATION]
    cap.add(c, msgs, False, PSHACK, rng.integers(150, 700, len(msgs)))
    cap.add(c, msgs + rng.uniform(0.03, 0.05, len(msgs)), True, ACK, ACK_FRAME)
    sent = msgs[rng.random(len(msgs)) < 0.3] + rng.uniform(1, 4)
    cap.add(c, sent, True, PSHACK, rng.integers(150, 500, len(sent)))
    cap.add(c, sent + rtt, False, ACK, ACK_FRAME)


def _failed_connects(cap: _Capture, clients: list[Host], peers: list[Host], dead: list[Host],
                     servers: list[Host]) -> None:
    """What fails on every network, a few times a minute per host: a connection refused by a LAN
    peer (SYN, RST/ACK: a closed SMB/RDP/printer port), one to a host that is gone (the SYN
    retransmitted after 1 s, sometimes again after 2 s more, then given up), and one cancelled
    right after the handshake (happy eyeballs: SYN, SYN/ACK, ACK, RST/ACK)."""
    rng = cap.rng
    for client in clients:
        starts = np.cumsum(rng.exponential(25.0, 20))
        for t0 in starts[starts < DURATION]:
            r = rng.random()
            if r < 0.5:
                peer = peers[rng.integers(len(peers))]
                if peer.addr == client.addr:
                    continue
                c = cap.conv(client, peer, cap.port(client), int(rng.choice([445, 3389, 139, 9100, 5357, 8080])), TCP, 0)
                rtt = rng.uniform(2e-4, 2e-3)
                cap.add(c, [t0, t0 + rtt], [True, False], [SYN, RSTACK], [client.syn_frame, ACK_FRAME])
            elif r < 0.8:
                host = dead[rng.integers(len(dead))]
                c = cap.conv(client, host, cap.port(client), int(rng.choice([445, 80, 443, 22, 3389])), TCP, 0)
                tries = [0.0, 1.0, 3.0][: int(rng.integers(1, 4))]
                cap.add(c, t0 + np.array(tries) * rng.uniform(0.99, 1.01), True, SYN, client.syn_frame)
            else:
                server = servers[rng.integers(len(servers))]
                rtt = float(rng.lognormal(np.log(0.035), 0.5))
                c = cap.conv(client, server, cap.port(client), 443, TCP, 0)
                cap.add(c, t0 + np.array([0.0, rtt, rtt + 1e-4, rtt + rng.uniform(0.01, 0.3)]),
                        [True, False, True, True], [SYN, SYNACK, ACK, RSTACK],
                        [client.syn_frame, server.syn_frame, ACK_FRAME, ACK_FRAME])


def _inbound_web(cap: _Capture, server: Host, visitors: list[Host]) -> None:
    """Outside visitors of the office web server: page loads, and now and then a visitor that
    vanishes after its SYN (mobile hand-over, a dropped SYN/ACK), left half-open while the server
    retransmits its SYN/ACK at 1, 3, 7, 15 and 31 s as Linux does."""
    rng = cap.rng
    starts = np.cumsum(rng.exponential(4.0, 80))
    for t0 in starts[starts < DURATION - 5]:
        visitor = visitors[rng.integers(len(visitors))]
        rtt = float(rng.lognormal(np.log(0.05), 0.5))
        if rng.random() < 0.15:
            c = cap.conv(visitor, server, cap.port(visitor), 80, TCP, 0)
            cap.add(c, t0, True, SYN, visitor.syn_frame)
            cap.add(c, t0 + 1e-4 + np.array([0, 1, 3, 7, 15, 31]) * rng.uniform(0.99, 1.01), False, SYNACK,
                    server.syn_frame)
            continue
        reqs = [(int(rng.integers(300, 900)), int(np.clip(rng.lognormal(1.2, 0.9), 1, 60)))
                for _ in range(int(rng.integers(1, 4)))]
        _tcp_session(cap, visitor, server, 80, float(t0), rtt, reqs, rng.exponential(0.5, 3),
                     close_after=float(rng.exponential(0.5)))


# -- attacks -------------------------------------------------------------------------------------

def _port_scan(cap: _Capture, scanner: Host, hosts: list[Host], dead: list[Host], target: Host,
               open_ports: dict[int, set[int]]) -> None:
    """An infected workstation maps the LAN with connect() probes (nmap -sT through its own TCP
    stack, so every SYN is the host's ordinary SYN): a sweep of the /24 for SMB and RDP, then the
    common ports of one server, a probe every 20-80 ms. An open port completes the handshake and is
    reset; a closed one answers RST/ACK; an address with no host gets the SYN and one retransmission
    after 1 s before the probe gives up: each probe alone is a normal failed connection."""
    rng = cap.rng
    label = LABELS.index("PortScan")
    by_addr = {h.addr: h for h in hosts}
    dead_addrs = {h.addr for h in dead}
    t = 100.0
    probes = [(a, p) for a in range(ip("192.168.10.1"), ip("192.168.10.255")) for p in (445, 3389)]
    common = [21, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 993, 995, 1723, 3306, 3389, 5900, 8080]
    probes += [(target.addr, p) for p in common]
    for i in rng.permutation(len(probes)):
        addr, port = probes[i]
        if addr == scanner.addr:
            continue
        t += rng.uniform(0.02, 0.08)
        host = by_addr.get(addr) or next((h for h in dead if h.addr == addr), None) or Host(addr, 64, 74)
        c = cap.conv(scanner, host, cap.port(scanner), int(port), TCP, label)
        cap.add(c, t, True, SYN, scanner.syn_frame)
        rtt = rng.uniform(2e-4, 2e-3)
        if addr not in by_addr or addr in dead_addrs:
            if rng.random() < 0.7:
                cap.add(c, t + rng.uniform(0.99, 1.01), True, SYN, scanner.syn_frame)
        elif int(port) in open_ports.get(addr, set()):
            cap.add(c, t + np.array([rtt, rtt + 1e-4, rtt + 2e-4]), [False, True, True], [SYNACK, ACK, RSTACK],
                    [host.syn_frame, ACK_FRAME, ACK_FRAME])
        else:
            cap.add(c, t + rtt, False, RSTACK, ACK_FRAME)


def _syn_flood(cap: _Capture, victim: Host, spoofed: list[Host], bots: list[Host], backlog: int) -> None:
    """A SYN flood on port 80 in two parts: spoofed random sources with ordinary SYNs (the victim
    answers the first ``backlog`` with SYN/ACKs retransmitted at 1, 3, 7, 15, 31 s, as for a visitor
    that vanished; the rest fall on SYN cookies), and
    bots flooding from one fixed source port each (hping3 -k style) at 2-5 thousand SYNs/s, every SYN
    answered with a SYN/ACK."""
    rng = cap.rng
    label = LABELS.index("DoS-SYNflood")
    ts = 60.0 + np.cumsum(rng.exponential(1 / 800.0, len(spoofed)))
    for i, (src, t) in enumerate(zip(spoofed, ts)):
        c = cap.conv(src, victim, int(rng.integers(1024, 65536)), 80, TCP, label)
        cap.add(c, t, True, SYN, src.syn_frame)
        resend = t + 1e-4 + np.array([0, 1, 3, 7, 15, 31]) * rng.uniform(0.99, 1.01)
        cap.add(c, resend if i < backlog else resend[:1], False, SYNACK, victim.syn_frame)
    for bot in bots:
        c = cap.conv(bot, victim, cap.port(bot), 80, TCP, label)
        n = int(rng.integers(250, 450))
        syn = 60.0 + rng.uniform(0, 1) + np.cumsum(rng.exponential(1 / rng.uniform(2000, 5000), n))
        cap.add(c, syn, True, SYN, 54)
        cap.add(c, syn + rng.uniform(1e-4, 4e-4, n), False, SYNACK, victim.syn_frame)


def _beacon(cap: _Capture, bot: Host, c2: Host, period: float, jitter: float, t0: float, t1: float) -> None:
    """Keep-alive HTTPS check-ins every ``period`` s (+-jitter), reconnecting every 60-100 s."""
    rng = cap.rng
    label = LABELS.index("Bot-Beacon")
    t = t0
    while t < t1:
        life = rng.uniform(60, 100)
        n = int(life / period)
        rtt = 0.08
        c = cap.conv(bot, c2, cap.port(bot), 443, TCP, label)
        cap.add(c, [t, t + rtt, t + rtt + 1e-4], [True, False, True], [SYN, SYNACK, ACK],
                [bot.syn_frame, c2.syn_frame, ACK_FRAME])
        beats = t + 0.01 + np.cumsum(period * rng.uniform(1 - jitter, 1 + jitter, n))
        cap.add(c, beats, True, PSHACK, rng.integers(180, 200, n))
        cap.add(c, beats + rtt, False, PSHACK, rng.integers(120, 140, n))
        t = float(beats[-1] + rtt)
        cap.add(c, [t + 0.01, t + 0.01 + rtt, t + 0.02 + rtt], [True, False, True], [FINACK, FINACK, ACK],
                ACK_FRAME)
        t += rng.uniform(1, 3)


def _exfil(cap: _Capture, host: Host, sink: Host) -> None:
    """Low-and-slow uploads of ~0.5 MB each over HTTPS: 2-segment bursts every 0.2-0.5 s."""
    rng = cap.rng
    label = LABELS.index("Exfiltration")
    for t0 in (40.0, 110.0, 175.0):
        rtt = 0.04
        c = cap.conv(host, sink, cap.port(host), 443, TCP, label)
        cap.add(c, [t0, t0 + rtt, t0 + rtt + 1e-4], [True, False, True], [SYN, SYNACK, ACK],
                [host.syn_frame, sink.syn_frame, ACK_FRAME])
        n_chunks = int(rng.integers(150, 200))
        starts = t0 + 0.05 + np.cumsum(rng.uniform(0.2, 0.5, n_chunks))
        seg = (starts[:, None] + np.arange(2) * 1e-4 + rng.uniform(0, 2e-5, (n_chunks, 2))).ravel()
        cap.add(c, seg, True, ACK, MSS_FRAME)
        cap.add(c, seg[1::2] + rtt, False, ACK, ACK_FRAME)
        end = float(seg[-1] + rtt)
        cap.add(c, [end + 0.01, end + 0.01 + rtt, end + 0.02 + rtt], [True, False, True],
                [FINACK, FINACK, ACK], ACK_FRAME)


def _dns_tunnel(cap: _Capture, host: Host, resolver: Host) -> None:
    """dnscat2-style tunnel: one socket polling every 0.5-1.2 s with long encoded names, big TXT answers."""
    rng = cap.rng
    label = LABELS.index("DNS-Tunnel")
    for t0, length in ((20.0, 45.0), (75.0, 30.0), (120.0, 40.0), (175.0, 55.0)):
        c = cap.conv(host, resolver, cap.port(host), 53, UDP, label)
        q = t0 + np.cumsum(rng.uniform(0.5, 1.2, 200))
        q = q[q < t0 + length]
        cap.add(c, q, True, 0, rng.integers(150, 260, len(q)))
        cap.add(c, q + rng.lognormal(np.log(0.02), 0.4, len(q)), False, 0, rng.integers(200, 700, len(q)))


# -- assembly ------------------------------------------------------------------------------------

def generate(seed: int = DEFAULT_SEED) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """Packet columns (time-sorted) and conversations ``(client, server, cport, sport, proto, label)``."""
    rng = np.random.default_rng(seed)
    cap = _Capture(rng)
    lan = lambda last, ttl, syn: Host(ip(f"192.168.10.{last}"), ttl, syn)  # noqa: E731
    win = [lan(n, 128, 66) for n in (5, 8, 9, 14, 15, 19)]
    nix = [lan(12, 64, 74), lan(16, 64, 74), lan(25, 64, 74), lan(17, 64, 78)]
    clients = win + nix
    resolver, web_local, ssh_local = lan(3, 128, 66), lan(50, 64, 74), lan(40, 64, 74)

    def external(n: int) -> list[Host]:
        firsts = rng.choice([23, 34, 52, 104, 142, 151, 172, 185], n)
        init = rng.choice([64, 128, 255], n, p=[0.6, 0.25, 0.15])
        hops = rng.integers(7, 22, n)
        return [Host(int((a << 24) | int(rng.integers(0, 1 << 24))), int(i - h), int(rng.choice([66, 74])))
                for a, i, h in zip(firsts, init, hops)]

    servers = external(40)
    ntp_server, ssh_remote, chat = external(3)
    c2 = Host(ip("185.225.19.43"), 64 - 13, 74)
    dead = [lan(n, 128, 66) for n in (7, 30, 31, 60, 61)]  # addresses of hosts no longer there
    visitors = external(30)
    sink = servers[3]  # a cloud host the office also browses
    bcast = Host(ip("192.168.10.255"), 0, 0)
    mdns, ssdp = Host(ip("224.0.0.251"), 0, 0), Host(ip("239.255.255.250"), 0, 0)

    _dns(cap, clients, resolver, {h.addr for h in nix})
    _web(cap, clients, servers, web_local)
    _ntp(cap, nix, ntp_server)
    _broadcast(cap, win, nix, bcast, mdns, ssdp)
    _ssh(cap, nix[0], ssh_local, 4e-4)
    _ssh(cap, nix[2], ssh_remote, 0.045)
    _chat(cap, win[0], chat, 0.03)
    _chat(cap, nix[3], chat, 0.03)
    lan_hosts = clients + [resolver, web_local, ssh_local]
    _failed_connects(cap, clients, lan_hosts, dead, servers)
    _inbound_web(cap, web_local, visitors)

    open_ports = {h.addr: {445, 139} for h in win + [resolver]}
    open_ports.update({web_local.addr: {22, 80}, ssh_local.addr: {22}, resolver.addr: {53, 139, 445, 3389}})
    _port_scan(cap, win[0], lan_hosts, dead, web_local, open_ports)
    _syn_flood(cap, web_local, external(300), [], backlog=256)
    _beacon(cap, win[4], c2, period=1.0, jitter=0.1, t0=10.0, t1=DURATION - 50)
    _beacon(cap, win[2], c2, period=2.0, jitter=0.2, t0=70.0, t1=DURATION - 50)
    _beacon(cap, win[3], c2, period=1.5, jitter=0.15, t0=30.0, t1=DURATION - 60)
    _beacon(cap, win[1], c2, period=1.2, jitter=0.25, t0=5.0, t1=DURATION - 120)
    _exfil(cap, nix[1], sink)
    _dns_tunnel(cap, win[5], resolver)
    return cap.table(), cap.convs


def _label_rows(cols: dict[str, np.ndarray], convs: list[tuple]) -> list[list]:
    """One CSV row per direction of every conversation that has packets in that direction."""
    conv = cols["conv"]
    client_addr = np.array([c[0].addr for c in convs], dtype=np.int64)
    key = conv * 2 + (cols["src"] != client_addr[conv])  # 2*conversation + (1 if server -> client)
    n_keys = 2 * len(convs)
    header = np.where(cols["proto"] == TCP, 54, 42)
    pkts = np.bincount(key, minlength=n_keys)
    payload = np.bincount(key, weights=np.maximum(cols["size"] - header, 0), minlength=n_keys).astype(np.int64)
    first = np.full(n_keys, np.inf)
    last = np.full(n_keys, -np.inf)
    np.minimum.at(first, key, cols["ts"])
    np.maximum.at(last, key, cols["ts"])
    rows = []
    for k in np.flatnonzero(pkts):
        cid, reverse = divmod(int(k), 2)
        client, server, cport, sport, proto, label = convs[cid]
        src, dst, sp, dp = (server, client, sport, cport) if reverse else (client, server, cport, sport)
        stamp = np.datetime64(int(BASE_TS + first[k]), "s").astype(object).strftime("%d/%m/%Y %H:%M:%S")
        lo, hi = sorted([(src.addr, sp), (dst.addr, dp)])
        flow_id = f"{ip_text(lo[0])}-{ip_text(hi[0])}-{lo[1]}-{hi[1]}-{proto}"
        back = k ^ 1
        rows.append([flow_id, ip_text(src.addr), sp, ip_text(dst.addr), dp, proto, stamp,
                     int(round((last[k] - first[k]) * 1e6)), int(pkts[k]), int(pkts[back]),
                     int(payload[k]), int(payload[back]), LABELS[label]])
    return rows


def _tcp_numbers(cols: dict[str, np.ndarray], convs: list[tuple], rng: np.random.Generator):
    """TCP sequence and acknowledgement numbers, so every stream reads as a consistent TCP exchange.

    Each direction of a conversation starts at a random ISN and advances by its payload bytes (SYN
    and FIN count one); a packet's ACK number is what the other direction had sent before it.
    """
    tcp = cols["proto"] == TCP
    client_addr = np.array([c[0].addr for c in convs], dtype=np.int64)
    key = cols["conv"] * 2 + (cols["src"] != client_addr[cols["conv"]])
    flags = cols["flags"]
    syn, fin = (flags & SYN) != 0, (flags & FIN) != 0
    payload = np.where(syn, 0, np.maximum(cols["size"] - ACK_FRAME, 0))
    isn = rng.integers(0, 1 << 32, 2 * len(convs), dtype=np.int64)
    order = np.lexsort((cols["ts"], key))
    k_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, k_sorted[1:] != k_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    # a retransmitted SYN (or SYN/ACK) repeats the ISN: only the first SYN of a direction counts
    syn_sorted = syn[order].astype(np.int64)
    syn_before = np.cumsum(syn_sorted) - syn_sorted
    syn_before -= np.repeat(syn_before[starts], counts)
    first_syn = np.zeros(len(key), bool)
    first_syn[order] = (syn_sorted == 1) & (syn_before == 0)
    used = np.where(tcp, payload + first_syn + fin, 0).astype(np.int64)
    used_sorted = used[order]
    inclusive = np.cumsum(used_sorted)
    inclusive -= np.repeat(inclusive[starts] - used_sorted[starts], counts)  # restart per direction
    seq = np.empty(len(key), np.int64)
    seq[order] = isn[k_sorted] + inclusive - used_sorted
    seq = np.where(syn, isn[key], seq)
    # bytes the other direction sent strictly before each packet
    span = float(cols["ts"].max() + 1.0)
    stamp = k_sorted * span + cols["ts"][order]
    other = key ^ 1
    pos = np.searchsorted(stamp, other * span + cols["ts"], side="left") - 1
    pos_ok = pos >= 0
    seen = np.where(pos_ok & (k_sorted[np.maximum(pos, 0)] == other), inclusive[np.maximum(pos, 0)], 0)
    ack = np.where(tcp & ((flags & ACK) != 0), isn[other] + seen, 0)
    mask = (1 << 32) - 1
    return np.where(tcp, seq & mask, 0), ack & mask


def make_demo(directory, seed: int = DEFAULT_SEED) -> dict:
    """Write ``demo.pcap`` and ``demo.csv`` into ``directory`` (created); returns counts."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NetmlError(f"cannot create {out}: {exc.strerror or exc}") from None
    if not out.is_dir():
        raise NetmlError(f"{out} is not a directory")
    cols, convs = generate(seed)
    rng = np.random.default_rng(seed + 1)
    ts_ns = BASE_TS * 1_000_000_000 + np.round(cols["ts"] * 1e6).astype(np.int64) * 1000
    seq, ack = _tcp_numbers(cols, convs, rng)
    write_pcap_columns(out / "demo.pcap", ts_ns, cols["src"], cols["dst"], cols["sport"], cols["dport"],
                       cols["proto"], cols["flags"], cols["ttl"], cols["size"],
                       ip_id=rng.integers(0, 1 << 16, len(ts_ns)), seq=seq, ack=ack)
    rows = _label_rows(cols, convs)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    atomic_write(out / "demo.csv", [buf.getvalue().encode("utf-8")])
    labels = np.array([LABELS.index(r[-1]) for r in rows])
    return {
        "pcap": str(out / "demo.pcap"),
        "csv": str(out / "demo.csv"),
        "packets": int(len(ts_ns)),
        "tcp": int(np.count_nonzero(cols["proto"] == TCP)),
        "udp": int(np.count_nonzero(cols["proto"] == UDP)),
        "rows": len(rows),
        "anomalous_rows": int(np.count_nonzero(labels > 0)),
        "by_label": {name: int(np.count_nonzero(labels == i)) for i, name in enumerate(LABELS)},
    }
