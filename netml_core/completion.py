"""Shell completion of option values: component names from the installed plugins, paths as files.

click calls these ``shell_complete=`` callbacks when the shell asks (``_NETML_COMPLETE=...``, see
README "Shell completion"). Names come from the registry, which holds what the plugins registered
without resolving any factory: completing ``--algorithm`` imports no detector (nor torch, PyOD or
scikit-learn), so a TAB answers as fast as ``netml plugins list``. Each name carries its
registered summary, which zsh and fish show beside it. Comma lists (``netml evaluate --algorithm
gmm,k<TAB>``) complete their last item. A failing registry completes nothing rather than breaking
the shell.
"""

from __future__ import annotations

from click.shell_completion import CompletionItem


def _names(kind: str, incomplete: str) -> list[CompletionItem]:
    head, sep, last = incomplete.rpartition(",")
    prefix = head + sep
    key = last.strip().lower().replace("-", "_")
    try:
        from .registry import get_registry

        reg = get_registry()
        components = reg.components[kind]
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    return [CompletionItem(prefix + name, help=components[name].summary or None)
            for name in reg.names(kind) if name.startswith(key)]


def complete_algorithm(ctx, param, incomplete: str) -> list[CompletionItem]:
    """``--algorithm``: the installed detectors."""
    return _names("detector", incomplete)


def complete_reader(ctx, param, incomplete: str) -> list[CompletionItem]:
    """``--reader``: the installed packet readers."""
    return _names("reader", incomplete)


def complete_splitter(ctx, param, incomplete: str) -> list[CompletionItem]:
    """``--splitter``: the installed flow splitters."""
    return _names("flow_splitter", incomplete)


def complete_feature(ctx, param, incomplete: str) -> list[CompletionItem]:
    """``--feature``: the installed representations; a value that names none and looks like a path
    (``learn``'s ``--feature`` also takes the features file, as netml 0.x did) completes as a file."""
    items = _names("feature", incomplete)
    if items or not ("/" in incomplete or "." in incomplete):
        return items
    return complete_path(ctx, param, incomplete)


def complete_path(ctx, param, incomplete: str) -> list[CompletionItem]:
    """Captures and model files: let the shell complete file names."""
    return [CompletionItem(incomplete, type="file")]
