"""``netml evaluate SCENARIOS``: every feature x detector on labelled scenarios, as one table.

A thin command over ``netml_core.evaluate``: it turns options into names and parameters, prints
progress on stderr and the table on stdout, and writes ``--output``. The scenario format, the
units (missed 5-tuples included) and the metrics are described in ``docs/evaluate.md``.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ..completion import complete_algorithm, complete_feature, complete_reader, complete_splitter
from ..defaults import DEFAULT_FPR, DEFAULT_READER, DEFAULT_SPLITTER
from ..errors import ParameterError
from .scaleout import dask_options, start_dask
from .learn import _say, setup_logging

_PARAM_SUFFIXES = (".yaml", ".yml", ".json")


def _names(values: tuple[str, ...]) -> list[str]:
    """Repeated options, each possibly a comma list (``--feature iat,stats``)."""
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _param_text(text_or_path: str, option: str) -> tuple[str, str]:
    """(YAML/JSON text, where) of a ``--*-param`` value that is text or a file."""
    candidate = text_or_path.strip()
    looks_like_path = "\n" not in candidate and not candidate.startswith(("{", "["))
    if looks_like_path and os.path.isfile(candidate):
        try:
            with open(candidate, encoding="utf-8") as fh:
                return fh.read(1 << 20), f"{option} file {candidate!r}"
        except (OSError, UnicodeDecodeError) as exc:
            raise ParameterError(f"cannot read {option} file {candidate!r}: {exc}") from None
    if looks_like_path and candidate.lower().endswith(_PARAM_SUFFIXES) and ":" not in candidate:
        raise ParameterError(f"{option} file {candidate!r} does not exist")
    return text_or_path, option


def params_by_name(text: str | None, option: str, kind: str, names: list[str]) -> dict[str, dict]:
    """The parameters an option gives each of ``names`` (components of ``kind``).

    The value is either one mapping of parameters for every chosen component (``{nu: 0.1}``) or one
    entry per component name (``{ocsvm: {nu: 0.1}, kde: {bandwidth: 0.5}}``), as ``netml learn
    --param`` reads it; with several detectors only the second form can fit them all. Unknown keys
    and bad values are checked later, by each component, before any capture is read.
    """
    if text is None or not text.strip():
        return {}
    from ..params import _load  # the --param YAML reader (also reads 1e-3 as a float)
    from ..registry import get_registry

    data = _load(*_param_text(text, option))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{option} must be a mapping such as '{{name: value}}', got {type(data).__name__}")
    reg = get_registry()
    installed = set(reg.components[kind]) | set(reg.aliases[kind])
    own_params = {p for n in names for p in reg.component_class(kind, n).param_defaults()}
    by_name = bool(data) and all(isinstance(k, str) and k.strip().lower().replace("-", "_") in installed
                                 and k not in own_params for k in data)
    if not by_name:
        return {n: dict(data) for n in names}
    out: dict[str, dict] = {}
    for key, value in data.items():
        name = reg.get(kind, key).name
        if value is not None and not isinstance(value, dict):
            raise ParameterError(f"{option}: the entry for {key!r} must be a mapping of parameters")
        if name in names:
            out[name] = dict(value or {})
    return out


def _progress(done: int, total: int, r) -> None:
    """One stderr line per finished run."""
    what = f"[{done}/{total}] {r.scenario} / {r.feature} / {r.detector}"
    if r.error:
        click.echo(f"netml evaluate: {what}: failed: {r.error}", err=True)
        return
    auc = "n/a" if r.roc_auc is None else f"{r.roc_auc:.3f}"
    cov = "n/a" if r.coverage is None else f"{r.coverage:.3f}"
    seconds = (r.fit_seconds or 0.0) + (r.score_seconds or 0.0)
    click.echo(f"netml evaluate: {what}: ROC AUC {auc}, coverage {cov} ({seconds:.2f} s)", err=True)


@click.command("evaluate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("scenarios_file", metavar="SCENARIOS")
@click.option("-f", "--feature", "features", multiple=True, metavar="NAME", shell_complete=complete_feature,
              help="Feature to evaluate; repeatable or comma list (default: every installed feature).")
@click.option("--algorithm", "algorithms", multiple=True, metavar="NAME", shell_complete=complete_algorithm,
              help="Detector to evaluate; repeatable or comma list (default: every installed detector).")
@click.option("--splitter", default=None, metavar="NAME", shell_complete=complete_splitter, help=f"Flow splitter (default {DEFAULT_SPLITTER}).")
@click.option("--splitter-param", default=None, metavar="YAML|JSON|PATH", help="Flow splitter parameters.")
@click.option("--feature-param", default=None, metavar="YAML|JSON|PATH",
              help="Feature parameters, or one mapping per feature name.")
@click.option("--param", default=None, metavar="YAML|JSON|PATH",
              help="Detector parameters, or one mapping per algorithm name.")
@click.option("--reader", default=None, metavar="NAME", shell_complete=complete_reader, help=f"Packet reader (default {DEFAULT_READER}).")
@click.option("--fpr", type=float, default=None,
              help=f"Target false-positive rate of the calibrated threshold (default {DEFAULT_FPR}).")
@click.option("--random-state", type=click.IntRange(0, 2**32 - 1), default=None,
              help="Seed of the detectors and of the calibration split (default 42).")
@click.option("--scenario", "selected", multiple=True, metavar="NAME",
              help="Run only this scenario; repeatable (default: all).")
@click.option("-o", "--output", default=None, metavar="DIR",
              help="Write results.tsv, results.json and heatmap.png (matplotlib) into DIR.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@dask_options
def evaluate(scenarios_file: str, features: tuple[str, ...], algorithms: tuple[str, ...], splitter: str | None,
             splitter_param: str | None, feature_param: str | None, param: str | None, reader: str | None,
             fpr: float | None, random_state: int | None, selected: tuple[str, ...], output: str | None,
             quiet: bool, workers: int | None, scheduler: str | None) -> int:
    """Compare features x detectors on the labelled scenarios of a scenario file.

    Each scenario trains on its normal captures and tests on labelled ones; every combination is
    fitted and scored independently (a failing one is a row with its error).

    \b
    netml evaluate scenarios.json
    netml evaluate scenarios.json --feature stats --algorithm ocsvm,iforest --output results/
    """
    from .. import evaluate as ev
    from ..registry import get_registry

    setup_logging(0)
    reg = get_registry()
    splitter_name = reg.get("flow_splitter", splitter or DEFAULT_SPLITTER).name
    reader_name = reg.get("reader", reader or DEFAULT_READER).name
    feature_names = list(dict.fromkeys(reg.get("feature", n).name for n in _names(features))) or reg.names("feature")
    detector_names = list(dict.fromkeys(reg.get("detector", n).name for n in _names(algorithms))) \
        or reg.names("detector")
    splitter_params = params_by_name(splitter_param, "--splitter-param", "flow_splitter", [splitter_name])
    feature_params = params_by_name(feature_param, "--feature-param", "feature", feature_names)
    detector_params = params_by_name(param, "--param", "detector", detector_names)
    target_fpr = DEFAULT_FPR if fpr is None else fpr
    seed = ev.DEFAULT_SEED if random_state is None else random_state
    if output is not None:
        ev.check_output_folder(output)  # before hours of fitting, not after
    scenarios = ev.select_scenarios(ev.load_scenarios(scenarios_file), selected)

    results = ev.run(scenarios, feature_names, detector_names, splitter=splitter_name,
                     splitter_params=splitter_params.get(splitter_name), feature_params=feature_params,
                     detector_params=detector_params, reader=reader_name, fpr=target_fpr, seed=seed,
                     progress=None if quiet else _progress, dask=start_dask(workers, scheduler))
    _say(ev.format_table(results))
    if output is not None:
        config: dict[str, Any] = {
            "scenario_file": os.path.abspath(scenarios_file), "scenarios": [s.name for s in scenarios],
            "features": feature_names, "detectors": detector_names, "reader": reader_name,
            "splitter": splitter_name, "splitter_params": splitter_params.get(splitter_name) or {},
            "feature_params": feature_params, "detector_params": detector_params, "fpr": target_fpr,
            "random_state": seed,
        }
        for note in ev.write_outputs(output, results, config):
            click.echo(f"netml evaluate: note: {note}", err=True)
    if results and all(r.error for r in results):
        click.echo(f"netml evaluate: every one of the {len(results)} runs failed", err=True)
        return 1
    return 0
