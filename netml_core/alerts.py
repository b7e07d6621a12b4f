"""Alerts a person can act on: anomalous flows summarised per source (or destination) host.

A scan or a flood is thousands of anomalous flows; an operator wants one line per host that says
what it did: ``10.0.0.7: 4812 anomalous flows to 1019 addresses, 1019 ports in 60.0 s, 98%
unanswered; max score ...; furthest from training: src_new_dports_60s (z +45.2)``. The last part
names the feature column whose scaled value (training units: standard deviations for the
standard scaler) is furthest from 0 on average over the host's anomalous flows, which with the
``context`` feature is usually the window statistic that gives the attack away.
"""

from __future__ import annotations

import numpy as np

from . import segments as seg
from .packets import words_to_ip


def host_alerts(flows, scores: np.ndarray, anomalous: np.ndarray, X_scaled: np.ndarray | None = None,
                names: list[str] | None = None, by: str = "src") -> list[dict]:
    """One dict per host with anomalous flows, most anomalous host first.

    ``by="src"`` groups by the flow's source (scans, sweeps, beacons: one host calling many);
    ``by="dst"`` by its destination (floods and spoofed sources: many calling one). ``dsts`` then
    counts the distinct sources. ``by="host"`` puts each anomalous flow under whichever of its two
    ends has more anomalous flows, so a scan is one line under its scanner and a spoofed flood one
    line under its victim, not one line per forged source; each alert's ``by`` says which end it is.
    """
    idx = np.flatnonzero(np.asarray(anomalous).astype(bool))
    if len(idx) == 0:
        return []
    if by != "host":
        return _alerts(flows, idx, scores, X_scaled, names, by)
    at_dst = _pivot_to_dst(flows.src[idx], flows.dst[idx])
    out = _alerts(flows, idx[~at_dst], scores, X_scaled, names, "src") if np.any(~at_dst) else []
    out += _alerts(flows, idx[at_dst], scores, X_scaled, names, "dst") if np.any(at_dst) else []
    return sorted(out, key=lambda a: -a["max_score"])


def _pivot_to_dst(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Per anomalous flow: True when its destination has more anomalous flows than its source."""
    n = len(src)
    perm, offsets = seg.group_rows([np.concatenate([src, dst])])
    inverse = np.empty(2 * n, dtype=np.int64)
    inverse[perm] = seg.segment_ids(offsets)
    as_src = np.bincount(inverse[:n], minlength=len(offsets) - 1)
    as_dst = np.bincount(inverse[n:], minlength=len(offsets) - 1)
    return as_dst[inverse[n:]] > as_src[inverse[:n]]


def _alerts(flows, idx: np.ndarray, scores, X_scaled, names, by: str) -> list[dict]:
    src, dst = flows.src[idx], flows.dst[idx]
    if by == "dst":
        src, dst = dst, src
    perm, offsets = seg.group_rows([src])
    gid = np.empty(len(idx), dtype=np.int64)
    gid[perm] = seg.segment_ids(offsets)
    n_hosts = len(offsets) - 1
    n_flows = np.bincount(gid, minlength=n_hosts)
    n_dsts = _distinct_per_host(gid, [dst], n_hosts)
    n_ports = _distinct_per_host(gid, [flows.dport[idx].astype(np.uint64)], n_hosts)
    first = np.full(n_hosts, np.inf)
    np.minimum.at(first, gid, flows.first_ts[idx])
    last = np.full(n_hosts, -np.inf)
    np.maximum.at(last, gid, flows.last_ts[idx])
    top = np.full(n_hosts, -np.inf)
    np.maximum.at(top, gid, np.asarray(scores, dtype=np.float64)[idx])
    unanswered = np.bincount(gid, weights=_unanswered(flows)[idx].astype(np.float64), minlength=n_hosts)
    furthest = _furthest_column(gid, n_hosts, X_scaled[idx] if X_scaled is not None else None, names)
    host_ip = words_to_ip(src[perm[offsets[:-1]]])
    out = []
    for h in np.argsort(-top, kind="stable").tolist():
        alert = {
            "by": by, "host": host_ip[h], "flows": int(n_flows[h]), "dsts": int(n_dsts[h]), "dports": int(n_ports[h]),
            "first": float(first[h]), "last": float(last[h]), "max_score": float(top[h]),
            "unanswered": float(unanswered[h] / n_flows[h]),
        }
        if furthest is not None:
            alert["furthest"], alert["furthest_z"] = furthest[0][h], float(furthest[1][h])
        out.append(alert)
    return out


def describe(alert: dict) -> str:
    """The alert as one sentence."""
    span = alert["last"] - alert["first"]
    way = "from" if alert.get("by") == "dst" else "to"
    text = (f"{alert['host']}: {alert['flows']} anomalous flow{'s' if alert['flows'] != 1 else ''} {way} "
            f"{alert['dsts']} address{'es' if alert['dsts'] != 1 else ''}, {alert['dports']} "
            f"port{'s' if alert['dports'] != 1 else ''} in {span:.1f} s, {alert['unanswered']:.0%} unanswered; "
            f"max score {alert['max_score']:.6g}")
    if "furthest" in alert:
        text += f"; furthest from training: {alert['furthest']} (z {alert['furthest_z']:+.1f})"
    return text


def _distinct_per_host(gid: np.ndarray, columns: list[np.ndarray], n_hosts: int) -> np.ndarray:
    """Distinct values of ``columns`` among each host's rows."""
    perm, offsets = seg.group_rows([gid.astype(np.uint64), *columns])
    return np.bincount(gid[perm[offsets[:-1]]], minlength=n_hosts)


def _unanswered(flows) -> np.ndarray:
    if flows.direction is None:
        return np.zeros(len(flows), dtype=bool)  # directional flows: the reverse is another flow
    return seg.segment_sum(flows.direction.astype(np.int64), flows.offsets) == 0


def _furthest_column(gid, n_hosts, Z, names):
    if Z is None or names is None or Z.shape[1] != len(names) or Z.shape[1] == 0:
        return None
    sums = np.zeros((n_hosts, Z.shape[1]))
    np.add.at(sums, gid, Z)
    mean = sums / np.bincount(gid, minlength=n_hosts)[:, None]
    col = np.argmax(np.abs(mean), axis=1)
    return [names[c] for c in col.tolist()], mean[np.arange(n_hosts), col]
