"""Plugin discovery and the component registry.

Every plugin, built-in or third-party, is an entry point in group ``netml.plugins`` found through
importlib.metadata. Each is loaded, checked and asked to register in isolation: an import error, a
misspelled hook, a raising hook or a duplicate component name marks that plugin ``failed`` (or
``incompatible``) with its error, and everything else keeps working.

Environment: ``NETML_LOAD_PLUGINS`` (comma list: load only these), ``NETML_DISABLE_PLUGINS`` (comma
list: skip these), ``NETML_TRACE_PLUGINS=1`` (print each hook call on stderr, for plugin authors).
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
    status: str = "ok"  # ok | failed | incompatible | conflict
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
        eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name != "core", e.name))
        for ep in eps:
            if ep.name in self.plugins:
                continue
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
            )
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
