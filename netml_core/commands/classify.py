"""``netml classify``: score the flows of a new capture with a model file from ``netml learn``.

The model file's pipeline is rebuilt as it was fitted (reader, sub-flow interval, feature width,
scaler statistics, detector and threshold), so a flow gets the score it would have got at training
time. Output: one line per anomalous flow (``--report-all``: every flow) as an aligned table, JSON
lines or CSV on stdout; a summary line on stderr.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import sys

import click
import numpy as np

from ..completion import complete_path
from ..errors import NetmlError
from ..packets import words_to_ip
from ..progress import Progress
from ..readers.live import Follow
from .learn import setup_logging
from .scaleout import dask_options, start_dask

PROTO_NAMES = {6: "TCP", 17: "UDP"}


def _iso(ts: float) -> str:
    """Epoch seconds -> ``2017-07-07T11:59:50.123456Z`` (UTC, microseconds)."""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@click.command("classify", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-m", "--model", "model", metavar="PATH", shell_complete=complete_path,
              help="Model file written by 'netml learn'.")
@click.option("-o", "--output", "model_as_output", metavar="PATH", shell_complete=complete_path,
              help="netml 0.x's name for --model (classify reads it; it writes no file).")
@click.option("-p", "--pcap", "pcaps", multiple=True, metavar="PATH", shell_complete=complete_path,
              help="Capture to classify (pcap/pcapng; default: stdin). Repeatable.")
@click.option("--report-all", is_flag=True, help="Print normal flows too, not only anomalies.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"], case_sensitive=False),
              default="table", show_default=True, help="Output format.")
@click.option("--group", type=click.Choice(["flow", "host", "src", "dst"], case_sensitive=False), default="flow",
              show_default=True, help="'host': one line per host with anomalous flows (flows, peers, ports, "
                                      "time span, unanswered share, the feature furthest from training) instead "
                                      "of one per flow, each flow under whichever end has more anomalous flows "
                                      "(a scanner, a flood's victim); 'src'/'dst': always the source/destination.")
@click.option("--max-open-flows", type=click.IntRange(min=1), default=None, metavar="N",
              help="Cap the flows held open while streaming; the ones idle longest are ended early "
                   "(counted on stderr).")
@click.option("--follow", "follow", metavar="PATH", shell_complete=complete_path,
              help="Classify a capture while it is written, like 'tail -F': wait for more packets, follow "
                   "rotation (a new file at PATH); ends on Ctrl-C or SIGTERM.")
@click.option("--wall-clock/--no-wall-clock", "wall_clock", default=True, show_default=True,
              help="Live input (pipe, --follow): when no packet comes, end flows whose idle timeout has passed "
                   "on the wall clock since the last packet (--no-wall-clock: only packet times end flows).")
@click.option("-q", "--quiet", is_flag=True, help="No progress line on stderr (it is shown only on a terminal).")
@click.option("-v", "--verbose", count=True, help="-v progress, -vv debug.")
@dask_options
def classify(model: str | None, model_as_output: str | None, pcaps: tuple[str, ...], report_all: bool, fmt: str,
             group: str, max_open_flows: int | None, follow: str | None, wall_clock: bool, quiet: bool,
             verbose: int, workers: int | None, scheduler: str | None) -> None:
    """Flag anomalous flows in a capture with a trained model.

    \b
    netml classify --model=model.dat < unclassified.pcap
    netml classify --model model.dat --pcap new.pcap --report-all --format jsonl
    netml classify --model model.dat --pcap new.pcap --group host
    """
    from ..pipeline import Pipeline

    setup_logging(verbose)
    if model and model_as_output:
        raise click.UsageError("give the model once, with -m/--model (-o/--output is netml 0.x's name for it)")
    if model_as_output:
        click.echo("netml: note: -o/--output names the model to read here (classify writes no file); "
                   "-m/--model says so", err=True)
        model = model_as_output
    if not model:
        raise click.UsageError("missing -m/--model (the model file written by 'netml learn')")
    pipe, _contents = Pipeline.load(model)
    if follow and pcaps:
        raise click.UsageError("--follow reads one capture as it is written; give it without -p/--pcap")
    sources = [Follow(follow)] if follow else list(pcaps) or ["-"]
    if sources == ["-"] and _stdin_is_tty():
        raise click.UsageError("no capture: pass --pcap FILE or redirect one to stdin (< FILE)")
    fmt = fmt.lower()
    group = group.lower()
    writer = _HostWriter(fmt) if group != "flow" else _Writer(fmt, report_all, many=len(sources) > 1)
    total_flows = total_anomalies = 0
    without_flows = []
    pipe.dask = start_dask(workers, scheduler, full_flows=group != "flow")
    if pipe.dask is not None:
        from ..distributed import submit_ahead

        submit_ahead(pipe, sources)
    stream = group == "flow" and pipe.can_stream() and pipe.dask is None
    if max_open_flows is not None and not stream:
        raise click.UsageError("--max-open-flows applies when flows are streamed: per-flow output (no --group, "
                               "no --workers/--scheduler) of a model whose splitter and feature stream")
    if follow and not (stream and getattr(pipe.reader, "live", False)):
        raise click.UsageError("--follow needs streamed per-flow output (no --group, no --workers/--scheduler), a "
                               "model whose splitter and feature stream, and a reader that reads live input "
                               f"(this model: {pipe.describe()})")
    evicted = 0
    interrupted = False
    for source in sources:
        name = "<stdin>" if source == "-" else str(getattr(source, "name", source))
        n_flows = n_anomalies = 0
        if stream:
            # flows are scored and printed as they end (memory: one batch plus the open flows)
            stats: dict = {}
            progress = Progress(source, enabled=False if quiet else None)
            shared_terminal = not _stdout_is_redirected()
            stream_ = pipe.classify_stream(source, stats=stats, max_open_flows=max_open_flows,
                                           wall_clock=wall_clock, on_batch=progress.update)
            with _term_as_interrupt():
                try:
                    for result in stream_:
                        if len(result.flows) and shared_terminal:  # verdict lines must not land on the bar
                            progress.clear()
                        n_flows, n_anomalies = _emit(writer, name, result, n_flows, n_anomalies)
                except KeyboardInterrupt:
                    # Ctrl-C / SIGTERM on a live capture: the open flows get their verdicts, exit 0
                    progress.clear()
                    n_flows, n_anomalies = _emit(writer, name, stream_.finish(), n_flows, n_anomalies)
                    interrupted = True
            progress.close()
            n_packets = stats.get("packets", 0)
            evicted += stats.get("evicted", 0)
            if stats.get("disordered"):
                click.echo(f"netml: warning: {name} is not in time order: flows were cut as packets came, so they "
                           "may differ from those of training (sort it first, e.g. reordercap)", err=True)
        else:
            result = pipe.classify(source)
            n_packets, n_flows, n_anomalies = len(result.flows.packets), len(result.flows), int(result.anomalous.sum())
            if n_flows and isinstance(writer, _HostWriter):
                writer.write(name, pipe.host_alerts(result, by=group))
            elif n_flows:
                writer.write(name, result)
        if n_flows == 0:
            reason = _no_flows_reason(pipe, name, n_packets)
            if len(sources) == 1:
                raise NetmlError(reason)
            # one small capture among many (-p *.pcap) is worth a warning, not the whole run
            click.echo(f"netml: warning: {reason}; skipped", err=True)
            without_flows.append(name)
            continue
        total_flows += n_flows
        total_anomalies += n_anomalies
        if interrupted:
            break
    if len(without_flows) == len(sources) > 1:
        raise NetmlError(f"no flows in any of the {len(sources)} captures")
    writer.close()
    early = f", {evicted} ended early by --max-open-flows" if evicted else ""
    early += ", interrupted: open flows scored as they were" if interrupted else ""
    click.echo(f"netml classify: {total_flows} flows, {total_anomalies} anomalies{early} "
               f"(threshold {pipe.threshold:.6g}, {pipe.describe()})", err=True)


def _emit(writer, name: str, result, n_flows: int, n_anomalies: int) -> tuple[int, int]:
    """Print one streamed batch of verdicts now, and count them."""
    if len(result.flows):
        writer.write(name, result)
        writer.flush()
    return n_flows + len(result.flows), n_anomalies + int(result.anomalous.sum())


class _term_as_interrupt:
    """While streaming, SIGTERM stops like Ctrl-C: the open flows are scored and printed, exit 0."""

    def __enter__(self):
        import signal

        self.previous = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread (an embedding application): leave signals alone
            pass
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def _no_flows_reason(pipe, name: str, n: int) -> str:
    reason = f"no flows in {name} ({n} TCP/UDP packet{'' if n == 1 else 's'}"
    least = getattr(pipe.flow_splitter, "flow_pkts_thres", None)
    least = max(2, least) if isinstance(least, int) else getattr(pipe.flow_splitter, "min_packets", None)
    if n and isinstance(least, int) and least > 1:
        reason += f"; a flow of this model needs at least {least} packets with the same 5-tuple"
    return reason + ")"


def _stdout_is_redirected() -> bool:
    try:
        return sys.stdout is None or not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return True


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is None or sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


class _Writer:
    """Formats flow verdicts; the table header is printed once, before the first row."""

    def __init__(self, fmt: str, report_all: bool, many: bool = False) -> None:
        self.many = many  # several captures: the table names each row's capture
        self.fmt, self.report_all = fmt, report_all
        self.started = False
        self.flow_width = 47  # "src:port -> dst:port" of two IPv4 endpoints; widened for IPv6
        self.buf = io.StringIO()  # csv rows go through click.echo like the other formats
        self.csv = csv.writer(self.buf, lineterminator="\n") if fmt == "csv" else None

    def write(self, source: str, result) -> None:
        flows = result.flows
        rows = np.arange(len(flows)) if self.report_all else np.nonzero(result.anomalous)[0]
        src, dst = words_to_ip(flows.src[rows]), words_to_ip(flows.dst[rows])
        first, last = flows.first_ts[rows], flows.last_ts[rows]
        sport, dport = flows.sport[rows].tolist(), flows.dport[rows].tolist()
        proto = flows.proto[rows].tolist()
        scores, flags = result.scores[rows].tolist(), result.anomalous[rows].tolist()
        out = []
        if self.fmt == "csv" and not self.started:
            self.csv.writerow(["capture", "start", "end", "src", "sport", "dst", "dport", "proto", "score",
                               "anomaly"])
        if self.fmt == "table":
            flow_text = [f"{_endpoint(src[j], sport[j])} \u2192 {_endpoint(dst[j], dport[j])}"
                         for j in range(len(rows))]
            if not self.started:
                self.flow_width = max([self.flow_width, *map(len, flow_text)])
                out.append(f"{'START':<27} {'END':<27} {'FLOW':<{self.flow_width}} {'PROTO':<5} {'SCORE':>12}  "
                           + ("VERDICT  CAPTURE" if self.many else "VERDICT"))
        self.started = True
        for j in range(len(rows)):
            pname = PROTO_NAMES.get(proto[j], str(proto[j]))
            if self.fmt == "jsonl":
                out.append(json.dumps({
                    "capture": source, "start": float(first[j]), "end": float(last[j]),
                    "start_iso": _iso(first[j]), "end_iso": _iso(last[j]),
                    "src": src[j], "sport": sport[j], "dst": dst[j], "dport": dport[j], "proto": pname,
                    "score": scores[j], "anomaly": bool(flags[j]),
                }))
            elif self.fmt == "csv":
                self.csv.writerow([source, repr(float(first[j])), repr(float(last[j])), src[j], sport[j], dst[j],
                                   dport[j], pname, repr(scores[j]), int(flags[j])])
            else:
                verdict = "ANOMALY" if flags[j] else "normal"
                out.append(f"{_iso(first[j]):<27} {_iso(last[j]):<27} {flow_text[j]:<{self.flow_width}} "
                           f"{pname:<5} {scores[j]:>12.6g}  "
                           + (f"{verdict:<7}  {os.path.basename(source)}" if self.many else verdict))
        if self.csv is not None and self.buf.tell():
            out.append(self.buf.getvalue().rstrip("\n"))
            self.buf.seek(0)
            self.buf.truncate()
        if out:
            click.echo("\n".join(out))

    def flush(self) -> None:
        """Push what was printed to whoever reads us now (a live capture's verdicts must not wait)."""
        if sys.stdout is not None:  # None when started with stdout closed (>&-)
            sys.stdout.flush()

    def close(self) -> None:
        self.flush()


class _HostWriter:
    """``--group host|src|dst``: one alert per host (``netml_core.alerts``), in each format."""

    COLUMNS = ["capture", "by", "host", "flows", "dsts", "dports", "first", "last", "unanswered", "max_score",
               "furthest", "furthest_z"]

    def __init__(self, fmt: str) -> None:
        self.fmt, self.started = fmt, False

    def write(self, source: str, alerts: list[dict]) -> None:
        out = []
        if self.fmt == "csv" and not self.started:
            out.append(",".join(self.COLUMNS))
        self.started = True
        for a in alerts:
            if self.fmt == "jsonl":
                out.append(json.dumps({"capture": source, **a, "first_iso": _iso(a["first"]),
                                       "last_iso": _iso(a["last"])}))
            elif self.fmt == "csv":
                buf = io.StringIO()
                csv.writer(buf, lineterminator="").writerow(
                    [source if k == "capture" else a.get(k, "") for k in self.COLUMNS])
                out.append(buf.getvalue())
            else:
                from ..alerts import describe

                out.append(f"{_iso(a['first'])}  {describe(a)}")
        if out:
            click.echo("\n".join(out))

    def close(self) -> None:
        if sys.stdout is not None:
            sys.stdout.flush()
