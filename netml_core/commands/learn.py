"""``netml learn [extract|train]``: captures -> features file -> trained model file.

``netml learn`` alone does both steps in memory; ``extract`` writes the features file (flow rows,
labels and the fitted reader/splitter/feature state) and ``train`` reads it back, so the two steps
work as separate commands. Options may be given before or after the sub-command name.

With labels (``--label`` CSV per capture, or ``--pcap-normal``/``--pcap-abnormal``) the labelled
flows are split into train/test (``--test-size``, ``--random-state``: by default the original
netml CLI's 0.33 and 42), the detector is fitted on the normal training flows (``--train-on all``:
every training flow, as the original did) and evaluated on the test flows. Without labels every
flow trains the detector and nothing is evaluated.

Defaults (``netml_core.defaults``): flow-meter flows, whole-flow statistics, a one-class SVM and a
threshold calibrated at ``--fpr`` on held-out normal flows. ``--compat`` selects netml 0.7.1's
pipeline instead (its sub-flows, IAT features, fit on every training flow, no scaling, the
contamination threshold), which reproduces the original's AUCs. What happens after extraction
(split, fit, metrics, report) lives in ``netml_core.training`` and ``netml_core.report``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..defaults import (DEFAULT_ALGORITHM, DEFAULT_CONTEXT_ALGORITHM, DEFAULT_FEATURE, DEFAULT_FPR, DEFAULT_READER,
                        DEFAULT_SPLITTER, default_algorithm)
from ..completion import complete_algorithm, complete_feature, complete_path, complete_reader, complete_splitter
from ..errors import NetmlError, ParameterError, UnknownComponentError
from ..progress import Progress
from .scaleout import dask_options, start_dask

#: what --compat sets: netml 0.7.1's pipeline (explicit options still win)
COMPAT_0X = {"splitter": "netml", "feature": "iat", "algorithm": "ocsvm", "train_on": "all", "scaler": "none"}
#: the original CLI's split: train_test_split(X, y, test_size=0.33, random_state=42)
DEFAULT_TEST_SIZE = 0.33
DEFAULT_RANDOM_STATE = 42

log = logging.getLogger("netml.learn")


# -- logging ------------------------------------------------------------------------------------
class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (works under test runners too)."""

    def emit(self, record):  # noqa: D401
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: int) -> None:
    """``-v`` count -> level of the ``netml`` logger: 0 WARNING, 1 INFO, 2+ DEBUG, on stderr."""
    logger = logging.getLogger("netml")
    for h in list(logger.handlers):
        if isinstance(h, _StderrHandler):
            logger.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("netml: %(levelname)s: %(name)s: %(message)s"
                                           if verbose >= 2 else "netml: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING)


def _say(message: str) -> None:
    """A progress or report line on stdout that outlives a closed pipe (``netml learn ... | head -3``):
    the rest of the report is dropped, but training goes on and the model file is still written."""
    from ..cli import silence_stdout

    try:
        click.echo(message)
    except BrokenPipeError:
        silence_stdout()


# -- option set shared by learn, learn extract and learn train ------------------------------------
def _options(f):
    opts = [
        click.option("-p", "--pcap", "pcaps", multiple=True, metavar="PATH", shell_complete=complete_path,
                     help="Capture (pcap/pcapng; '-' for stdin). Repeatable."),
        click.option("-l", "--label", "labels", multiple=True, metavar="CSV",
                     help="Labels (CICIDS2017-style CSV) for the --pcap at the same position "
                          "(one CSV for all captures is also accepted)."),
        click.option("--pcap-normal", "pcaps_normal", multiple=True, metavar="PATH", shell_complete=complete_path,
                     help="Capture whose flows are all normal. Repeatable."),
        click.option("--pcap-abnormal", "pcaps_abnormal", multiple=True, metavar="PATH", shell_complete=complete_path,
                     help="Capture whose flows are all anomalous. Repeatable."),
        click.option("-o", "--output", "-m", "--model", "output", metavar="PATH", shell_complete=complete_path,
                     help="Model file to write (folders are created)."),
        click.option("-f", "--feature", "feature", metavar="NAME", shell_complete=complete_feature,
                     help=f"Flow representation (default {DEFAULT_FEATURE}; case-insensitive; "
                          "original names like SAMP_NUM or FFT-IAT accepted). A value that is not a "
                          "representation and looks like a path is taken as --feature-file."),
        click.option("--feature-file", "feature_file", metavar="PATH",
                     help="Features file written by 'extract' and read by 'train'."),
        click.option("--context", is_flag=True, default=None,
                     help="Add host context to the feature: window statistics of each flow's source host, "
                          "destination host and host pair (needs netml-features-context)."),
        click.option("--fft", is_flag=True, default=None, help="Use the FFT of the per-flow series."),
        click.option("--header", is_flag=True, default=None,
                     help="Prepend TCP-flag counts and TTLs to the features."),
        click.option("--reader", default=None, metavar="NAME", shell_complete=complete_reader, help=f"Packet reader (default {DEFAULT_READER})."),
        click.option("--splitter", default=None, metavar="NAME", shell_complete=complete_splitter,
                     help=f"Flow splitter (default {DEFAULT_SPLITTER}: flow-meter flows; 'netml': netml 0.x's "
                          "sub-flows)."),
        click.option("--splitter-param", "splitter_param", default=None, metavar="YAML|JSON|PATH",
                     help="Flow splitter parameters, e.g. '{idle_timeout: 30}'; see --help-param."),
        click.option("--feature-param", "feature_param", default=None, metavar="YAML|JSON|PATH",
                     help="Feature parameters, e.g. '{first_n: 4}'; see --help-param."),
        click.option("--algorithm", default=None, metavar="NAME", shell_complete=complete_algorithm,
                     help=f"Detector (default {DEFAULT_ALGORITHM}; {DEFAULT_CONTEXT_ALGORITHM} with --context); "
                          "see --help-algorithm."),
        click.option("--param", default=None, metavar="YAML|JSON|PATH",
                     help="Detector parameters: YAML/JSON text or file; may map algorithm names to parameters."),
        click.option("--help-algorithm", is_flag=True, default=None, help="List installed detectors and exit."),
        click.option("--help-param", is_flag=True, default=None,
                     help="Show the parameters of --algorithm and exit."),
        click.option("--scaler", type=click.Choice(["standard", "minmax", "none"], case_sensitive=False),
                     default=None, help="Feature scaling before the detector (default: per detector, "
                                        "see --help-algorithm)."),
        click.option("--train-on", "train_on", type=click.Choice(["normal", "all"], case_sensitive=False),
                     default=None, help="With labels: fit on normal training flows only (default) or on all."),
        click.option("--test-size", type=float, default=None,
                     help=f"Fraction of labelled flows held out for testing (default {DEFAULT_TEST_SIZE})."),
        click.option("--random-state", type=click.IntRange(0, 2**32 - 1), default=None,
                     help=f"Seed for the split and the detector (default {DEFAULT_RANDOM_STATE})."),
        click.option("--fpr", type=float, default=None,
                     help=f"Target false-positive rate of the threshold, calibrated on held-out normal "
                          f"training flows (default {DEFAULT_FPR})."),
        click.option("--compat", is_flag=True, default=None,
                     help="netml 0.7.1's pipeline: --splitter netml --feature iat --algorithm ocsvm --train-on all "
                          "--scaler none and its contamination threshold (reproduces the original's AUCs)."),
        click.option("--q-interval", type=float, default=None,
                     help="With --splitter netml: quantile of flow durations used as the sub-flow interval "
                          "(0.9)."),
        click.option("--flow-pkts-threshold", type=int, default=None,
                     help="Minimum packets per flow (meter: 1; netml: 2)."),
        click.option("--report", "report", metavar="DIR",
                     help="Write metrics.json, scores.csv and roc.png (matplotlib) into DIR."),
        click.option("-q", "--quiet", is_flag=True, default=None,
                     help="No progress line on stderr while captures are read (shown only on a terminal)."),
        click.option("-v", "--verbose", count=True, help="-v progress, -vv debug (e.g. AE loss per epoch)."),
    ]
    f = dask_options(f)
    for opt in reversed(opts):
        f = opt(f)
    return f


def _merge(ctx: click.Context, kwargs: dict) -> dict:
    """Sub-command options win; options given before the sub-command name fill the rest."""
    parent = (ctx.obj or {}).get("learn_options", {})
    out = dict(kwargs)
    for k, v in parent.items():
        if out.get(k) in (None, (), 0, False):
            out[k] = v
    return out


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@_options
@click.pass_context
def learn(ctx: click.Context, **kwargs) -> None:
    """Train (and, with labels, test) a novelty detector on captures.

    \b
    netml demo demo        # writes demo/demo.pcap and demo/demo.csv
    netml learn --pcap demo/demo.pcap --label demo/demo.csv -o model.netml
    netml learn --pcap demo/demo.pcap --label demo/demo.csv --context --algorithm knn -o ctx.netml
    netml learn extract --pcap demo/demo.pcap --label demo/demo.csv --feature-file out/demo.npz
    netml learn train --feature-file out/demo.npz --algorithm kde -o out/kde.netml
    netml learn --compat --pcap=demo/demo.pcap --label=demo/demo.csv --output=out/OCSVM-results.dat
    """
    if ctx.invoked_subcommand is not None:
        ctx.ensure_object(dict)
        ctx.obj["learn_options"] = {k: v for k, v in kwargs.items() if v not in (None, (), 0, False)}
        return
    _run(ctx, "all", kwargs)


@learn.command("extract", context_settings={"help_option_names": ["-h", "--help"]})
@_options
@click.pass_context
def extract_cmd(ctx: click.Context, **kwargs) -> None:
    """Captures -> features file (flows, labels and the fitted extraction state)."""
    _run(ctx, "extract", _merge(ctx, kwargs))


@learn.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@_options
@click.pass_context
def train_cmd(ctx: click.Context, **kwargs) -> None:
    """Features file -> trained model file (evaluated when the file has labels)."""
    _run(ctx, "train", _merge(ctx, kwargs))


# -- the work -----------------------------------------------------------------------------------
def _run(ctx: click.Context, action: str, o: dict) -> None:
    from ..registry import get_registry

    setup_logging(o["verbose"] or 0)
    reg = get_registry()
    user = dict(o)  # as given, before --compat fills in its choices
    if o["compat"]:
        for key, value in COMPAT_0X.items():
            if o.get(key) is None:
                o[key] = value
    if o["help_algorithm"]:
        from ..params import format_algorithm_help

        click.echo(format_algorithm_help(reg))
        return
    feature, feature_params, feature_file = resolve_feature(
        o["feature"], o["fft"], o["header"], reg, default=COMPAT_0X["feature"] if o["compat"] else DEFAULT_FEATURE)
    feature_file = o["feature_file"] or feature_file
    features = None
    if action == "train" and feature_file and not o["help_param"]:
        from .. import features_file

        features = features_file.read_features(feature_file)
        stored = features.fitted.get("feature")
        feature = stored.get("name") if isinstance(stored, dict) and isinstance(stored.get("name"), str) else feature
    algorithm = o["algorithm"] or default_algorithm("context" if o["context"] else feature)
    if o["help_param"]:
        _help_param(reg, algorithm, o)
        return
    if action in ("extract", "train") and not feature_file:
        raise click.UsageError(f"'learn {action}' needs the features file: --feature-file PATH "
                               "(or --feature PATH)")
    if action in ("all", "train") and not o["output"]:
        raise click.UsageError("missing -o/--output (the model file to write)")

    detector_params: dict = {}
    if action in ("all", "train"):
        detector_params = _detector_params(reg, algorithm, o["param"], o["random_state"])
        if o["test_size"] is not None and not 0.0 <= o["test_size"] < 1.0:
            raise ParameterError(f"--test-size must be in [0, 1), got {o['test_size']}")
        if o["fpr"] is not None:
            from ..calibration import check_fpr

            check_fpr(o["fpr"])
    from ..atomic import check_writable

    front = None
    if action in ("all", "extract"):
        front = _front_params(reg, o, feature, feature_params)
    # fail before reading and training, not after, when an output cannot be written
    if feature_file and action in ("all", "extract"):
        check_writable(feature_file, "features file")
    if action in ("all", "train"):
        check_writable(o["output"], "model file")
    if o["report"] and action in ("all", "train"):
        check_writable(o["report"], "report folder", folder=True)

    if action in ("all", "extract"):
        sources, label_sources = _sources(o)
        pipe = _pipeline(front, algorithm if action == "all" else None, detector_params, o["scaler"])
        pipe.dask = start_dask(o["workers"], o["scheduler"])
        progress = Progress(sources[0] if len(sources) == 1 else None,
                            enabled=False if o["quiet"] or pipe.dask is not None else None)
        try:  # batch by batch when that gives the same rows (in one process)
            ex = pipe.fit_extract(sources, label_sources, stream=True, on_batch=progress.update)
        finally:
            progress.close()
        _echo_extracted(ex, sources)
        if feature_file:
            from ..features_file import write_extracted

            write_extracted(feature_file, pipe, ex)
            _say(f"features: {ex.X.shape[0]} flows x {ex.X.shape[1]} values -> {feature_file}")
        if action == "extract":
            return
        from ..training import flow_info

        X, y, flows_info = ex.X, ex.y, flow_info(ex.flows, ex.capture, sources)
    else:
        if o["pcaps"] or o["labels"] or o["pcaps_normal"] or o["pcaps_abnormal"]:
            raise click.UsageError("'learn train' reads the features file; --pcap/--label belong to "
                                   "'learn extract' or to 'learn' alone")
        front_opts = [name for name, given in (
            ("--feature", user["feature"] and not (user["feature_file"] is None and feature_file == user["feature"])),
            ("--reader", user["reader"]), ("--splitter", user["splitter"]),
            ("--splitter-param", user["splitter_param"]), ("--feature-param", user["feature_param"]),
            ("--fft", user["fft"]), ("--header", user["header"]), ("--context", user["context"]),
            ("--q-interval", user["q_interval"]), ("--flow-pkts-threshold", user["flow_pkts_threshold"])) if given]
        if front_opts:
            raise click.UsageError(f"'learn train' takes flows and features as {feature_file} holds them; "
                                   f"{front_opts[0]} belongs to 'learn extract'")
        pipe, X, y, flows_info = _read_features(feature_file, features, algorithm, detector_params, o["scaler"])

    _train(pipe, X, y, flows_info, o)


def _help_param(reg, algorithm: str, o: dict) -> None:
    """``--help-param``: the detector's parameters, then the feature's and the flow splitter's, each
    with the option that sets them (an unknown name is the one-line error before anything is printed)."""
    from ..params import format_param_help

    info = reg.get("detector", algorithm)
    name, _, path = resolve_feature(o["feature"], None, None, reg) if o["feature"] else (DEFAULT_FEATURE, None, None)
    splitter = reg.get("flow_splitter", o["splitter"] or DEFAULT_SPLITTER)
    click.echo(format_param_help(reg.component_class("detector", info.name), info.name, summary=info.summary))
    if path is None:
        feature = reg.get("feature", name)
        click.echo("")
        click.echo(format_param_help(reg.component_class("feature", feature.name), f"feature {feature.name}",
                                     "--feature-param", summary=feature.summary))
    click.echo("")
    click.echo(format_param_help(reg.component_class("flow_splitter", splitter.name), f"splitter {splitter.name}",
                                 "--splitter-param", summary=splitter.summary))


def resolve_feature(value: str | None, fft: bool | None, header: bool | None, reg,
                    default: str = DEFAULT_FEATURE) -> tuple[str, dict, str | None]:
    """``--feature`` value -> (representation name, params, features-file path or None).

    Accepts registered names and aliases case-insensitively, and the original's ``FFT-IAT`` style
    (``fft_`` prefix -> ``fft=True``). A value that is none of these but looks like a path is the
    features file, with a note on stderr (the original's ``--feature`` was that file).
    """
    params: dict[str, Any] = {}
    if fft:
        params["fft"] = True
    if header:
        params["header"] = True
    if value is None or not value.strip():
        return default, params, None
    key = value.strip().lower().replace("-", "_")
    if reg.resolve_name("feature", key) is not None:
        return reg.resolve_name("feature", key), params, None
    if key.startswith("fft_") and reg.resolve_name("feature", key[4:]) is not None:
        params["fft"] = True
        return reg.resolve_name("feature", key[4:]), params, None
    looks_like_path = (os.sep in value or "/" in value or os.path.exists(value)
                       or Path(value).suffix.lower() in (".dat", ".npz", ".npy", ".pkl", ".features"))
    if looks_like_path:
        click.echo(f"netml: note: --feature {value} is not a flow representation; using it as the "
                   "features file (--feature-file)", err=True)
        return default, params, value
    installed = ", ".join(reg.names("feature")) or "none"
    raise UnknownComponentError(f"unknown feature {value!r}; installed: {installed}")


def _detector_params(reg, algorithm: str, param: str | None, random_state: int | None) -> dict:
    from ..params import parse_param_option

    info = reg.get("detector", algorithm)
    cls = reg.component_class("detector", info.name)
    params = dict(parse_param_option(param, info.name, cls, aliases=info.aliases))
    if "random_state" in cls.param_defaults() and "random_state" not in params:
        params["random_state"] = DEFAULT_RANDOM_STATE if random_state is None else random_state
    return params


def _front_params(reg, o: dict, feature: str, feature_params: dict) -> dict:
    """Reader, splitter and feature names and their validated parameters (before any capture is read)."""
    from ..params import parse_param_option

    splitter = reg.get("flow_splitter", o["splitter"] or DEFAULT_SPLITTER).name
    splitter_cls = reg.component_class("flow_splitter", splitter)
    splitter_params = dict(parse_param_option(o["splitter_param"], splitter, splitter_cls,
                                              option="--splitter-param", role="splitter"))
    known = splitter_cls.param_defaults()
    if o["q_interval"] is not None:
        if "q_interval" not in known:
            raise click.UsageError(f"--q-interval sets netml 0.x's sub-flow interval; splitter {splitter!r} "
                                   "has none (use --splitter netml)")
        splitter_params["q_interval"] = o["q_interval"]
    if o["flow_pkts_threshold"] is not None:
        key = "min_packets" if "min_packets" in known else "flow_pkts_thres"
        if key not in known:
            raise click.UsageError(f"splitter {splitter!r} has no minimum packets per flow")
        splitter_params[key] = o["flow_pkts_threshold"]
    splitter_cls.create(splitter_params, name=f"splitter {splitter!r}")
    feature_cls = reg.component_class("feature", feature)
    given = parse_param_option(o["feature_param"], feature, feature_cls, option="--feature-param", role="feature")
    feature_params = {**given, **feature_params}
    feature_cls.create(feature_params, name=f"feature {feature!r}")
    if o["context"] and feature != "context":
        # the context plugin composes with the chosen feature: it becomes the base
        reg.get("feature", "context")  # not installed -> the one-line error naming the plugins that are
        feature, feature_params = "context", {"base": feature, "base_params": feature_params}
    return {"reader": o["reader"] or DEFAULT_READER, "flow_splitter": splitter,
            "flow_splitter_params": splitter_params, "feature": feature, "feature_params": feature_params}


def _pipeline(front: dict, algorithm: str | None, detector_params: dict, scaler: str | None):
    from ..pipeline import Pipeline

    return Pipeline(**front, scaler=scaler, detector=algorithm, detector_params=detector_params)


def _sources(o: dict) -> tuple[list, list | None]:
    """Captures in order and their label sources (None when no capture is labelled)."""
    from ..labels import ConstantLabels, CsvLabels

    pcaps, labels = list(o["pcaps"]), list(o["labels"])
    normal, abnormal = list(o["pcaps_normal"]), list(o["pcaps_abnormal"])
    if not (pcaps or normal or abnormal):
        raise click.UsageError("no capture: give -p/--pcap (or --pcap-normal/--pcap-abnormal)")
    if labels and not pcaps:
        raise click.UsageError("-l/--label labels the -p/--pcap captures; none given")
    if labels and len(labels) not in (1, len(pcaps)):
        raise click.UsageError(f"{len(labels)} --label files for {len(pcaps)} --pcap captures: give one "
                               "per capture, in the same order, or one for all")
    if pcaps and not labels and (normal or abnormal):
        raise click.UsageError("mixing unlabelled --pcap with --pcap-normal/--pcap-abnormal: label every "
                               "--pcap with -l/--label")
    for path in [*pcaps, *normal, *abnormal, *labels]:
        if path != "-" and not os.path.exists(path):
            raise NetmlError(f"{path}: no such file")
    if [*pcaps, *normal, *abnormal].count("-") > 1:
        raise click.UsageError("stdin ('-') can be given only once")
    sources = [*pcaps, *normal, *abnormal]
    if not labels and not normal and not abnormal:
        return sources, None
    csvs = [CsvLabels(labels[0])] * len(pcaps) if len(labels) == 1 else [CsvLabels(p) for p in labels]
    return sources, [*csvs, *[ConstantLabels(0)] * len(normal), *[ConstantLabels(1)] * len(abnormal)]


def _echo_extracted(ex, sources) -> None:
    c = ex.counts
    dropped = f", {c['unlabelled_dropped']} unlabelled dropped" if c.get("unlabelled_dropped") else ""
    _say(f"extracted {ex.X.shape[0]} flows x {ex.X.shape[1]} values from {c.get('packets', 0)} packets "
               f"({c.get('flows', 0)} flows{dropped}) in {ex.seconds:.3f} s")


# -- features file --------------------------------------------------------------------------------
def _read_features(path: str, data, algorithm: str, detector_params: dict, scaler: str | None):
    from ..features_file import fitted_pipeline
    from ..training import flow_info

    pipe = fitted_pipeline(path, data, detector=algorithm, detector_params=detector_params, scaler=scaler)
    _say(f"features: {data.features.shape[0]} flows x {data.features.shape[1]} values <- {path}")
    return pipe, np.asarray(data.features, dtype=np.float64), data.labels, flow_info(data, None, [path])


# -- training and evaluation ------------------------------------------------------------------------
def _train(pipe, X: np.ndarray, y: np.ndarray | None, flows_info: dict, o: dict) -> None:
    from ..report import write_report
    from ..training import train_and_evaluate

    fpr = o["fpr"] if o["fpr"] is not None else (None if o["compat"] else DEFAULT_FPR)
    run = train_and_evaluate(
        pipe, X, y, test_size=DEFAULT_TEST_SIZE if o["test_size"] is None else o["test_size"],
        random_state=DEFAULT_RANDOM_STATE if o["random_state"] is None else o["random_state"],
        train_on=(o["train_on"] or "normal").lower(), fpr=fpr, sources=flows_info.get("sources", ()))
    metrics = run.metrics
    labelled = metrics["n_test"] > 0 or "n_train_normal" in metrics
    _print_table(metrics, labelled)
    for line in run.warnings:
        log.warning("warning: %s", line)

    info = {"history": dict(metrics, score=metrics["roc_auc"]),
            "training": {"sources": flows_info.get("sources", []), "n_flows": int(metrics["n_flows"])}}
    pipe.save(o["output"], info)
    _say(f"model: {o['output']}")
    if o["report"]:
        n = metrics["n_flows"]
        split = np.full(n, "train", dtype=object)
        split[run.test_idx] = "test"
        write_report(o["report"], metrics, flows_info, y if labelled else None, split, pipe.score(X),
                     pipe.threshold, y[run.test_idx] if labelled else None, run.test_scores)


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _print_table(m: dict, labelled: bool) -> None:
    _say(f"pipeline: reader={m['reader']} splitter={m['splitter']} feature={m['feature_variant']} "
         f"scaler={m['scaler']} algorithm={m['algorithm']}")
    if labelled:
        _say(f"{'flows':<16}{'train':>8}{'test':>8}")
        _say(f"{'  normal':<16}{m['n_train_normal']:>8}{m['n_test_normal']:>8}")
        _say(f"{'  anomalous':<16}{m['n_train_anomalous']:>8}{m['n_test_anomalous']:>8}")
        _say(f"{'fitted on':<16}{m['n_fit']:>8}  ({m['train_on']} training flows)")
    else:
        held = m["n_train"] - m["n_fit"]
        how = f"{m['n_fit']} fitted, {held} held out for the threshold" if held else "all fitted"
        _say(f"{'flows':<16}{m['n_train']:>8}  (no labels: all taken as normal, {how}; not evaluated)")
    cal = m.get("calibration") or {}
    if m.get("fpr_target") is not None and cal:
        where = "held-out normal" if cal.get("method", "").startswith("held-out") else "training"
        note = "" if cal.get("resolvable") else "; too few to resolve it: their highest score"
        _say(f"{'threshold':<16}{m['threshold']:>8.6g}  (FPR {m['fpr_target']:g} on {cal.get('n_calibration', 0)} "
             f"{where} flows{note})")
    else:
        _say(f"{'threshold':<16}{m['threshold']:>8.6g}  (contamination quantile of the training scores)")
    _say(f"{'train time':<16}{m['train_seconds']:>8.3f} s")
    if labelled:
        _say(f"{'test time':<16}{m['test_seconds']:>8.3f} s")
        _say(f"{'ROC AUC':<16}{_fmt(m['roc_auc']):>8}")
        _say(f"{'avg precision':<16}{_fmt(m['average_precision']):>8}")
        _say(f"{'precision':<16}{_fmt(m['precision']):>8}  (at the threshold)")
        _say(f"{'recall':<16}{_fmt(m['recall']):>8}")
        _say(f"{'FPR':<16}{_fmt(m['fpr']):>8}  (test normal flows flagged)")
