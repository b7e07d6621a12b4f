"""A PyOD detector's parameters, defaults and one-line docs, read from PyOD itself.

The defaults come from the PyOD class's ``__init__`` signature and the docs from its numpydoc
"Parameters" section, so ``--help-param`` shows what the installed PyOD does. Two defaults are
netml's: ``random_state`` is 42 (PyOD's None would make a refit on load differ from the fit), and
parameters that only take Python objects or only change verbosity are not offered (``Spec.fixed``).
Importing this module imports no PyOD; the first call does.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import lru_cache
from typing import Any

from .table import Spec

#: netml's default where PyOD's would make a fitted model irreproducible
DEFAULT_RANDOM_STATE = 42
_DOC_MAX = 140


def pyod_class(spec: Spec) -> type:
    return getattr(importlib.import_module(f"pyod.models.{spec.module}"), spec.cls)


@lru_cache(maxsize=None)
def defaults(spec: Spec) -> dict[str, Any]:
    """Offered parameter -> default, in PyOD's order."""
    sig = inspect.signature(pyod_class(spec).__init__)
    out = {}
    for name, p in sig.parameters.items():
        if name == "self" or name in spec.fixed or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[name] = None if p.default is inspect.Parameter.empty else p.default
    if "random_state" in out and out["random_state"] is None:
        out["random_state"] = DEFAULT_RANDOM_STATE
    return out


@lru_cache(maxsize=None)
def doc_types(spec: Spec) -> dict[str, str]:
    """Parameter -> PyOD's documented type line (``int or string``), lower case: what values to accept."""
    parsed = parse_numpydoc_params(inspect.getdoc(pyod_class(spec)) or "")
    return {name: _short_type(kind).lower() for name, (kind, _) in parsed.items()}


@lru_cache(maxsize=None)
def docs(spec: Spec) -> dict[str, str]:
    """Offered parameter -> the first sentence of PyOD's description, with PyOD's type line."""
    parsed = parse_numpydoc_params(inspect.getdoc(pyod_class(spec)) or "")
    out = {}
    for name in defaults(spec):
        kind, text = parsed.get(name, ("", ""))
        doc = first_sentence(text)
        if kind:
            doc = f"{doc} ({_short_type(kind)})" if doc else _short_type(kind)
        if name == "random_state":
            doc = (doc + "; netml's default 42 keeps a reloaded model equal to the fitted one").lstrip("; ")
        out[name] = doc
    return out


def parse_numpydoc_params(doc: str) -> dict[str, tuple[str, str]]:
    """``name -> (type line, description)`` from a numpydoc ``Parameters`` section."""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Parameters"
                     and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"})
    except StopIteration:
        return {}
    out: dict[str, tuple[str, str]] = {}
    name = None
    for line in lines[start + 2:]:
        stripped = line.strip()
        if stripped and not line.startswith(" ") and set(stripped) == {"-"}:
            break  # the next section's underline: its title was taken as a parameter, drop it
        m = re.match(r"^(\w+)\s*:\s*(.*)$", line)
        if m and not line.startswith(" "):
            name = m.group(1)
            out[name] = (m.group(2).strip(), "")
        elif name is not None and stripped:
            kind, text = out[name]
            out[name] = (kind, f"{text} {stripped}".strip())
    # a section title followed by its underline is not a parameter
    for title in ("Attributes", "Returns", "References", "Examples", "Notes", "See"):
        out.pop(title, None)
    return out


def first_sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    m = re.match(r"^(.+?[.;])(\s|$)", text)
    sentence = (m.group(1) if m else text).rstrip(".;")
    return sentence if len(sentence) <= _DOC_MAX else sentence[:_DOC_MAX - 3].rstrip() + "..."


def _short_type(kind: str) -> str:
    kind = re.sub(r"\s+", " ", kind).strip()
    kind = re.sub(r",?\s*\(?\s*(optional|default)\b.*$", "", kind).strip().rstrip(",")
    return kind if len(kind) <= 60 else kind[:57] + "..."
