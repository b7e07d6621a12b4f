"""Plugin discovery and the component registry.

Every plugin, built-in or third-party, is an entry point in group ``netml.plugins`` found through
importlib.metadata. Each is loaded, checked and asked to register in isolation: an import error, a
misspelled hook, a raising hook or a duplicate component name marks that plugin ``failed`` (or
``incompatible``, ``conflict``) with its error, and everything else keeps working.

Precedence: the core and the built-in plugins (``BUILTIN_DISTRIBUTIONS``) register first, then
third-party plugins in name order. A name (or alias) is first come, first served, so a built-in
keeps its names: a third-party plugin registering ``ocsvm`` is a ``conflict`` naming both plugins,
listed by ``netml plugins list``, and its other components still work. To let it have the name,
the user disables the built-in (``NETML_DISABLE_PLUGINS=models_ocsvm``). A third-party entry point
with a built-in's entry-point name is a ``conflict`` too, never silently skipped.

Environment: ``NETML_LOAD_PLUGINS`` (comma list: load only these), ``NETML_DISABLE_PLUGINS`` (comma
list: skip these), ``NETML_TRACE_PLUGINS=1`` (print each hook call on stderr, for plugin authors).
Plugins left out by either variable are listed with status ``disabled``; a component name that only
such a plugin provides is an error naming the plugin and the variable.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import UnknownComponentError

ENTRY_POINT_GROUP = "netml.plugins"

#: kind -> registration hook
KIND_HOOKS = {
    "reader": "register_readers",
    "flow_splitter": "register_flow_splitters",
    "feature": "register_features",
    "detector": "register_detectors",
}

KIND_LABELS = {"reader": "reader", "flow_splitter": "flow splitter", "feature": "feature", "detector": "algorithm"}

#: the distributions of this repository (the core and plugins/*/): they register before any other
#: plugin, so their component names cannot be taken by an installed package
BUILTIN_DISTRIBUTIONS = frozenset({
    "netml", "netml-readers-dpkt", "netml-readers-scapy", "netml-features-context", "netml-features-flowstats",
    "netml-features-iat", "netml-features-samp", "netml-features-size", "netml-features-stats",
    "netml-models-ae", "netml-models-gmm", "netml-models-iforest", "netml-models-kde", "netml-models-knn",
    "netml-models-ocsvm", "netml-models-pca", "netml-models-pyod",
})


@dataclass
class ComponentInfo:
    kind: str
    name: str
    factory: Any  # class or "module:Class"
    plugin: str
    aliases: tuple[str, ...] = ()
    summary: str = ""

    def load(self) -> type:
        """Resolve a lazy ``"module:Class"`` factory (imports the plugin's heavy code only now)."""
        if isinstance(self.factory, str):
            module_name, _, attr = self.factory.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self.factory = obj
        return self.factory


@dataclass
class PluginInfo:
    name: str
    distribution: str = ""
    version: str = ""
    status: str = "ok"  # ok | failed | incompatible | conflict | disabled
    error: str = ""
    components: list[ComponentInfo] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "plugin": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "provides": [
                {"kind": c.kind, "name": c.name, "aliases": list(c.aliases), "summary": c.summary}
                for c in self.components
            ],
        }


def _precedence(ep) -> tuple:
    """Load order: the core, then the built-in plugins, then the others; by name within each."""
    dist = getattr(ep, "dist", None)
    builtin = dist is not None and dist.name in BUILTIN_DISTRIBUTIONS
    return (ep.name != "core", not builtin, ep.name)


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


class Registry:
    """What the installed plugins provide, by kind and name."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("netml")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        #: plugins NETML_LOAD_PLUGINS / NETML_DISABLE_PLUGINS left out (status ``disabled``), and
        #: their entry points, loaded only to say which of them provides a name asked for
        self.disabled: dict[str, PluginInfo] = {}
        self._disabled_eps: dict[str, Any] = {}
        self._disabled_registry: Registry | None = None
        self.components: dict[str, dict[str, ComponentInfo]] = {k: {} for k in KIND_HOOKS}
        self.aliases: dict[str, dict[str, str]] = {k: {} for k in KIND_HOOKS}
        self.tracing = os.environ.get("NETML_TRACE_PLUGINS", "") not in ("", "0")
        if self.tracing:
            self.pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            self.pm.enable_tracing()

    def _trace(self, msg: str) -> None:
        # hooks are called one plugin at a time (for isolation), bypassing pluggy's own tracing
        if self.tracing:
            print(f"netml: trace: {msg}", file=sys.stderr)

    # -- discovery -------------------------------------------------------------------------
    def load_entry_points(self) -> "Registry":
        allow = _env_list("NETML_LOAD_PLUGINS")
        deny = _env_list("NETML_DISABLE_PLUGINS") or set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_precedence):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
            )
            taken = self.plugins.get(ep.name) or self.disabled.get(ep.name)
            if taken is not None:
                if taken.distribution != info.distribution:  # another package's entry point of that name
                    info.name = f"{ep.name} ({info.distribution or '?'})"
                    info.status = "conflict"
                    info.error = (f"entry point name {ep.name!r} is taken by {taken.distribution or 'another plugin'}"
                                  f"; not loaded")
                    self.plugins[info.name] = info
                continue
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                info.status = "disabled"
                info.error = ("NETML_DISABLE_PLUGINS names it" if ep.name in deny
                              else "NETML_LOAD_PLUGINS does not name it")
                self.disabled[ep.name] = info
                self._disabled_eps[ep.name] = ep
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must never stop the host
                info.status, info.error = "failed", f"import failed: {type(exc).__name__}: {exc}"
                self.plugins[ep.name] = info
                continue
            self.add_plugin(module, info)
        return self

    def add_plugin(self, module: Any, info: PluginInfo) -> PluginInfo:
        """Register one plugin object (module or instance) and collect its components."""
        self.plugins[info.name] = info
        unknown = [
            name
            for name in dir(module)
            if getattr(getattr(module, name, None), "netml_impl", None) is not None
            and not hasattr(hookspecs, name)
        ]
        if unknown:
            info.status = "incompatible"
            info.error = f"unknown hook {unknown[0]!r} (known: {', '.join(sorted(KIND_HOOKS.values()))}, register_commands)"
            return info
        try:
            self.pm.register(module, name=info.name)
        except Exception as exc:  # noqa: BLE001
            info.status, info.error = "incompatible", f"{type(exc).__name__}: {exc}"
            return info
        for kind, hook_name in KIND_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                self._trace(f"plugin {info.name!r}: {hook_name}(register)")
                try:
                    impl.function(register=self._registrar(kind, info))
                except Exception as exc:  # noqa: BLE001
                    info.status = "failed"
                    info.error = f"{hook_name} raised {type(exc).__name__}: {exc}"
        return info

    def _registrar(self, kind: str, info: PluginInfo) -> Callable[..., None]:
        def register(name: str, factory: Any, aliases=(), summary: str = "") -> None:
            key = _norm(name)
            taken = self.components[kind].get(key) or self.components[kind].get(self.aliases[kind].get(key, ""))
            if taken is not None:
                info.status = "conflict"
                msg = f"duplicate {KIND_LABELS[kind]} name {name!r}: registered by plugin {taken.plugin!r} and by plugin {info.name!r}"
                info.error = f"{info.error}; {msg}" if info.error else msg
                return
            comp = ComponentInfo(kind, key, factory, info.name, tuple(_norm(a) for a in aliases), summary)
            self.components[kind][key] = comp
            for a in comp.aliases:
                self.aliases[kind].setdefault(a, key)
            info.components.append(comp)
            self._trace(f"plugin {info.name!r} registered {kind} {key!r} -> {factory!r}")

        return register

    def listed(self) -> list[PluginInfo]:
        """Every plugin ``netml plugins list`` shows, disabled ones included, in load order."""
        def order(info: PluginInfo) -> tuple:
            return (info.name != "core", info.distribution not in BUILTIN_DISTRIBUTIONS, info.name)

        return sorted([*self.plugins.values(), *self.disabled.values()], key=order)

    def disabled_provider(self, kind: str, name: str) -> tuple[PluginInfo, str] | None:
        """The disabled plugin that provides ``name`` and the variable that disabled it, if any.

        The disabled plugins' entry modules are imported (registration only) the first time a name
        is not found, never otherwise.
        """
        if not self._disabled_eps:
            return None
        if self._disabled_registry is None:
            scratch = Registry()
            for ep_name, ep in self._disabled_eps.items():
                try:
                    module = ep.load()
                except Exception:  # noqa: BLE001 - a plugin disabled because it is broken
                    continue
                scratch.add_plugin(module, PluginInfo(name=ep_name))
            self._disabled_registry = scratch
        key = self._disabled_registry.resolve_name(kind, name)
        if key is None:
            return None
        info = self.disabled[self._disabled_registry.components[kind][key].plugin]
        return info, "NETML_DISABLE_PLUGINS" if info.error.startswith("NETML_DISABLE_PLUGINS") else "NETML_LOAD_PLUGINS"

    def disabled_hint(self, kind: str, name: str, needed_by: str = "") -> str | None:
        """``"algorithm 'gmm' comes from plugin 'models_gmm' (...), which NETML_... disables
        (VAR=...): ..."`` (``"<needed_by> needs the algorithm 'gmm' from plugin ..."``), or None."""
        found = self.disabled_provider(kind, name)
        if found is None:
            return None
        info, variable = found
        verb = "disables" if variable == "NETML_DISABLE_PLUGINS" else "leaves out"
        fix = "remove it from there" if variable == "NETML_DISABLE_PLUGINS" else "add it there or unset the variable"
        what = f"{KIND_LABELS[kind]} {name!r}"
        lead = f"{needed_by} needs the {what} from" if needed_by else f"{what} comes from"
        return (f"{lead} plugin {info.name!r} ({info.distribution or '?'}), which {variable} {verb} "
                f"({variable}={os.environ.get(variable, '')}): {fix}")

    # -- lookup ----------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def resolve_name(self, kind: str, name: str) -> str | None:
        key = _norm(name)
        if key in self.components[kind]:
            return key
        return self.aliases[kind].get(key)

    def get(self, kind: str, name: str) -> ComponentInfo:
        key = self.resolve_name(kind, name)
        if key is None:
            hint = self.disabled_hint(kind, name)
            if hint is not None:
                raise UnknownComponentError(hint)
            installed = ", ".join(self.names(kind)) or "none"
            raise UnknownComponentError(
                f"unknown {KIND_LABELS[kind]} {name!r}; installed: {installed}"
            )
        return self.components[kind][key]

    def component_class(self, kind: str, name: str) -> type:
        info = self.get(kind, name)
        try:
            return info.load()
        except ImportError as exc:
            raise UnknownComponentError(
                f"{KIND_LABELS[kind]} {info.name!r} from plugin {info.plugin!r} cannot be loaded: {exc}"
            ) from None

    def create(self, kind: str, name: str, params: dict | None = None):
        cls = self.component_class(kind, name)
        return cls.create(params, name=f"{KIND_LABELS[kind]} {self.get(kind, name).name!r}")

    def plugin_of(self, kind: str, name: str) -> PluginInfo:
        return self.plugins[self.get(kind, name).plugin]

    def extend_cli(self, cli) -> None:
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = self.plugins.get(impl.plugin_name)
            self._trace(f"plugin {impl.plugin_name!r}: register_commands(cli)")
            try:
                impl.function(cli=cli)
            except Exception as exc:  # noqa: BLE001
                if info is not None:
                    info.status, info.error = "failed", f"register_commands raised {type(exc).__name__}: {exc}"


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry().load_entry_points()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded plugins (tests; after pip-installing a plugin at run time)."""
    global _REGISTRY
    _REGISTRY = None
