"""Component parameters from the command line: ``--param``, ``--help-param``, ``--help-algorithm``.

``--param`` takes YAML or JSON text, or a path to a YAML/JSON file. The mapping holds either the
component's parameters directly (``{nu: 0.1}``) or one entry per algorithm name
(``{ocsvm: {nu: 0.1}, kde: {bandwidth: 0.5}}``), so one file can configure every detector; a
mapping with entries only for other installed detectors gives the defaults (with a warning). Keys are
checked against the component's ``__init__`` signature and values against the component's own
checks, so a typo is one line naming the bad key and the known ones, before any capture is read.

The ``check_*`` helpers are for component ``__init__`` methods: they raise ``ParameterError`` with a
one-line message naming the parameter, which ``Component.create`` passes through unchanged.
"""

from __future__ import annotations

import logging
import math
import os
import re
from numbers import Integral, Real
from typing import Any, Iterable

import yaml

from .errors import ParameterError
from .state_checks import short

log = logging.getLogger("netml.params")

_PATH_SUFFIXES = (".yaml", ".yml", ".json")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``; JSON does not)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def _read_source(text_or_path: str, option: str = "--param") -> tuple[str, str]:
    """Return (text, where) where ``where`` names the source in error messages."""
    candidate = text_or_path.strip()
    looks_like_path = "\n" not in candidate and not candidate.startswith(("{", "[")) and len(candidate) < 4096
    if looks_like_path and os.path.isfile(candidate):
        try:
            with open(candidate, encoding="utf-8") as fh:
                text = fh.read(MAX_PARAM_CHARS + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise ParameterError(f"cannot read {option} file {candidate!r}: {exc}") from None
        where = f"{option} file {candidate!r}"
        if len(text) > MAX_PARAM_CHARS:
            raise ParameterError(f"{where} is larger than {MAX_PARAM_CHARS} characters: not a parameter file")
        return text, where
    if looks_like_path and candidate.lower().endswith(_PATH_SUFFIXES) and ":" not in candidate:
        raise ParameterError(f"{option} file {candidate!r} does not exist")
    if len(text_or_path) > MAX_PARAM_CHARS:
        raise ParameterError(f"{option} is longer than {MAX_PARAM_CHARS} characters")
    return text_or_path, option


#: bounds on what ``--param`` text may describe: characters, values once anchors are expanded,
#: nesting, digits of an integer, characters of one text value
MAX_PARAM_CHARS = 1 << 20
MAX_PARAM_VALUES = 10_000
MAX_PARAM_DEPTH = 32
MAX_PARAM_DIGITS = 40
MAX_PARAM_TEXT = 4096


def load_bounded(text: str, where: str, kind: str = "YAML/JSON") -> Any:
    """Parse YAML/JSON after checking the node graph (anchors make it a graph): a billion-laughs
    text expands to 10^9 values and a repr of it to gigabytes, so size and depth are counted with
    every alias expanded, before anything is constructed. Every untrusted YAML text (``--param``,
    scenario files) goes through here."""
    loader = _BoundedLoader(text, where)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"{where} is not valid {kind}{at}: {str(problem)[:120]}") from None
    except RecursionError:
        raise ParameterError(f"{where} is nested too deeply (at most {MAX_PARAM_DEPTH} levels)") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ParameterError(f"{where} holds a value netml cannot read: {str(exc)[:120]}") from None
    finally:
        loader.dispose()


_INT_TAG = "tag:yaml.org,2002:int"


class _BoundedLoader(_Loader):
    """Stops composing at the first node past the bounds, so a huge text is refused early (a flat
    list of 400,000 values took 15 s and 350 MB to compose before it could be counted)."""

    def __init__(self, text: str, where: str) -> None:
        super().__init__(text)
        self._where = where
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent, index):
        self._nodes += 1
        if self._nodes > MAX_PARAM_VALUES:
            raise ParameterError(f"{self._where} holds more than {MAX_PARAM_VALUES} values: not a parameter mapping")
        self._depth += 1
        try:
            if self._depth > MAX_PARAM_DEPTH:
                raise ParameterError(f"{self._where} is nested too deeply (at most {MAX_PARAM_DEPTH} levels)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_load = load_bounded


def _check_nodes(root: yaml.Node, where: str) -> None:
    """Values (aliases expanded), nesting, integer digits and text lengths of a composed document."""
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            heights[id(node)] = 1 + max((heights[id(c)] for c in children), default=0)
            if sizes[id(node)] > MAX_PARAM_VALUES:
                raise ParameterError(f"{where} holds more than {MAX_PARAM_VALUES} values (counting every "
                                     "alias of an anchor): not a parameter mapping")
            if heights[id(node)] > MAX_PARAM_DEPTH:
                raise ParameterError(f"{where} is nested too deeply (at most {MAX_PARAM_DEPTH} levels)")
            continue
        if id(node) in sizes:
            continue
        if id(node) in path:
            raise ParameterError(f"{where} holds an anchor that contains itself")
        if isinstance(node, yaml.ScalarNode):
            value = node.value
            if node.tag == _INT_TAG and sum(ch.isdigit() for ch in value) > MAX_PARAM_DIGITS:
                raise ParameterError(f"{where} holds an integer of {sum(ch.isdigit() for ch in value)} digits "
                                     "(out of range for any parameter)")
            if len(value) > MAX_PARAM_TEXT:
                raise ParameterError(f"{where} holds a value of {len(value)} characters")
        path.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def parse_param_option(
    text_or_path: str | None,
    algorithm: str,
    component_cls: type,
    *,
    aliases: Iterable[str] = (),
    option: str = "--param",
    role: str = "algorithm",
) -> dict[str, Any]:
    """The parameters ``--param`` gives for ``algorithm``, validated against ``component_cls``.

    ``aliases`` are other names of the same algorithm (e.g. ``if`` for ``iforest``) accepted as keys
    of a by-algorithm mapping. Returns ``{}`` when the option is absent or empty. ``option`` and
    ``role`` name the option and the component kind in messages (``--splitter-param``, ``splitter``).
    """
    if text_or_path is None or not str(text_or_path).strip():
        return {}
    text, where = _read_source(str(text_or_path), option)
    data = _load(text, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(
            f"{where} must be a mapping such as '{{nu: 0.1}}' or '{{{algorithm}: {{nu: 0.1}}}}', "
            f"got {type(data).__name__} {short(data)}"
        )
    known = component_cls.param_defaults()
    names = {_norm(algorithm), *(_norm(a) for a in aliases)}
    params = _pick_entry(data, names, known, algorithm, where)
    bad = [k for k in params if not isinstance(k, str) or k not in known]
    if bad:
        raise ParameterError(
            f"unknown parameter {short(bad[0])} for {role} {algorithm!r} in {where}; "
            f"known: {', '.join(known) or '(none)'}"
        )
    # the component's own checks (ranges, choices) run in __init__: fail now, not after extraction
    component_cls.create(params, name=f"{role} {algorithm!r}")
    return params


def _pick_entry(data: dict, names: set[str], known: dict, algorithm: str, where: str) -> dict:
    """Either ``data`` itself (direct params) or its entry for this algorithm."""
    for key, value in data.items():
        if isinstance(key, str) and _norm(key) in names and key not in known:
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise ParameterError(
                    f"{where}: the entry for {key!r} must be a mapping of parameters, got {short(value)}"
                )
            return value
    others = _installed_algorithm_names()
    if data and all(isinstance(k, str) and _norm(k) in others and k not in known for k in data):
        log.warning(
            "%s has no entry for %r (entries: %s); using its default parameters",
            where, algorithm, ", ".join(map(str, data)),
        )
        return {}
    return data


def _installed_algorithm_names() -> set[str]:
    """Names and aliases of the installed detectors (to tell a by-algorithm mapping from a typo)."""
    try:
        from .registry import get_registry

        reg = get_registry()
        return set(reg.components["detector"]) | set(reg.aliases["detector"])
    except Exception:  # noqa: BLE001 - without a registry every key is checked as a parameter
        return set()


# -- checks for component __init__ ----------------------------------------------------------------


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise ``ParameterError`` unless ``value`` is a (integer) number in the given range."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, Integral) if integer else isinstance(value, Real)
    if isinstance(value, bool) or not ok_type:
        raise ParameterError(f"parameter {name!r} must be {kind}, got {short(value)}")
    if isinstance(value, Integral) and abs(int(value)) >= 2**63:  # float() of it may overflow
        raise ParameterError(f"parameter {name!r} is out of range, got {short(value)}")
    if not integer and not math.isfinite(float(value)):
        raise ParameterError(f"parameter {name!r} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ParameterError(f"parameter {name!r} must be {'>' if low_open else '>='} {low}, got {short(value)}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ParameterError(f"parameter {name!r} must be {'<' if high_open else '<='} {high}, got {short(value)}")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ParameterError`` unless ``value`` is one of ``choices``."""
    choices = list(choices)
    if not any(type(value) is type(c) and value == c for c in choices):
        raise ParameterError(
            f"parameter {name!r} must be one of {', '.join(map(repr, choices))}; got {short(value)}"
        )


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ParameterError(f"parameter {name!r} must be true or false, got {short(value)}")


def check_contamination(value: Any) -> None:
    """``contamination`` is the expected fraction of anomalies among training flows, in (0, 0.5]."""
    check_number("contamination", value, low=0.0, high=0.5, low_open=True)


# -- help texts ----------------------------------------------------------------------------------


def _fmt_default(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_param_help(component_cls: type, name: str | None = None, option: str = "--param",
                      summary: str | None = None) -> str:
    """``--help-param``: summary line (the registered one when given), then one row per parameter."""
    title = name or getattr(component_cls, "__name__", "component")
    rows = [(p["name"], _fmt_default(p["default"]), p["doc"] or "") for p in component_cls.describe_params()]
    lines = [f"{title}: {summary or component_cls.summary()}".rstrip(": ")]
    if not rows:
        lines.append("  (no parameters)")
        return "\n".join(lines)
    w_name = max(len("PARAMETER"), *(len(r[0]) for r in rows))
    w_def = max(len("DEFAULT"), *(len(r[1]) for r in rows))
    lines.append(f"  {'PARAMETER'.ljust(w_name)}  {'DEFAULT'.ljust(w_def)}  DESCRIPTION")
    for pname, default, doc in rows:
        lines.append(f"  {pname.ljust(w_name)}  {default.ljust(w_def)}  {doc}".rstrip())
    by_name = "; or a mapping by algorithm name" if option == "--param" else ""
    lines.append(f"Set with {option} '{{{rows[0][0]}: {rows[0][1]}}}' (YAML/JSON text or a file{by_name}).")
    return "\n".join(lines)


def format_algorithm_help(registry) -> str:
    """``--help-algorithm``: every installed detector with aliases, summary, plugin and default scaler.

    Reads only registration data, so no detector module (and not torch) is imported.
    """
    from .scaling import default_scaler_for

    kind = "detector"
    rows = []
    for name in registry.names(kind):
        info = registry.components[kind][name]
        plugin = registry.plugins.get(info.plugin)
        dist = f"{plugin.distribution} {plugin.version}".strip() if plugin is not None else ""
        rows.append((
            name,
            ", ".join(info.aliases) or "-",
            default_scaler_for(name),
            info.summary or "",
            f"{info.plugin}" + (f" ({dist})" if dist else ""),
        ))
    if not rows:
        return "no detectors installed (install e.g. netml-models-ocsvm)"
    head = ("ALGORITHM", "ALIASES", "SCALER", "SUMMARY", "PLUGIN")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    out = []
    for r in [head, *rows]:
        out.append("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    out.append("SCALER is the default --scaler for that algorithm. Parameters: --help-param --algorithm NAME.")
    return "\n".join(out)
