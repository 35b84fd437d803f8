"""One registry for everything that can be named in a spec.

``register(kind, name)`` files a class under a kind ("task", "dataset", "model",
"calibration.method", ...). ``get(kind, name)`` returns it or raises an error that lists the
close matches. Registered classes carry a pydantic ``Params`` model whose fields (with the
paper's defaults) are what ``infobench list`` prints.

Lookups are lazy: an index of ``@register("kind", "name")`` lines, read from the plugin
sources as text, says which module defines a name, and ``get`` imports only that module.
Validating or re-running a spec therefore imports the few plugins it names, not all of them.
A name the index cannot see (registered some other way) is found by importing everything.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from infobench.errors import RegistryError

T = TypeVar("T")

_REGISTRY: dict[str, dict[str, Any]] = {}

# Packages whose modules register plugins when imported. Importing them is what fills the registry.
PLUGIN_PACKAGES = ("infobench.data", "infobench.models", "infobench.mi", "infobench.tasks")


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: file ``obj`` under ``kind``/``name``; names are unique within a kind."""

    def decorator(obj: T) -> T:
        table = _REGISTRY.setdefault(kind, {})
        if name in table and table[name] is not obj:
            raise ValueError(f"{kind} {name!r} is registered twice ({table[name]!r} and {obj!r})")
        table[name] = obj
        obj.registered_name = name  # type: ignore[attr-defined]
        return obj

    return decorator


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """A ' (did you mean X?)' suffix for the closest choices, or '' when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def get(kind: str, name: str) -> Any:
    """Look up ``name`` under ``kind``; unknown names raise ``RegistryError`` with close matches."""
    if name not in _REGISTRY.get(kind, {}):
        module = _source_index().get(kind, {}).get(name)
        if module is not None:
            importlib.import_module(module)
        if name not in _REGISTRY.get(kind, {}):
            load_plugins()
    table = _REGISTRY.get(kind, {})
    if name not in table:
        known = sorted(table)
        raise RegistryError(
            f"unknown {kind.replace('.', ' ')} {name!r}{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
        )
    return table[name]


def names(kind: str) -> list[str]:
    """Sorted names registered under ``kind`` (from the source index: nothing is imported)."""
    return sorted(set(_source_index().get(kind, {})) | set(_REGISTRY.get(kind, {})))


def items(kind: str) -> list[tuple[str, Any]]:
    load_plugins()
    return sorted(_REGISTRY.get(kind, {}).items())


_loaded = False


def load_plugins() -> None:
    """Import every module of the plugin packages once, so that their decorators run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, prefix=package_name + ".", onerror=_raise):
            importlib.import_module(module.name)


def _raise(name: str) -> None:
    raise ImportError(f"cannot import plugin package {name}")


_REGISTER_LINE = re.compile(r"""@register\(\s*["']([^"']+)["']\s*,\s*["']([^"']+)["']\s*\)""")
_index: dict[str, dict[str, str]] | None = None


def _source_index() -> dict[str, dict[str, str]]:
    """kind -> name -> module, read from the ``@register(...)`` lines of the plugin sources."""
    global _index
    if _index is None:
        _index = {}
        root = Path(__file__).resolve().parent.parent
        for package_name in PLUGIN_PACKAGES:
            folder = root.joinpath(*package_name.split("."))
            for path in sorted(folder.rglob("*.py")):
                module = ".".join(path.relative_to(root).with_suffix("").parts)
                for kind, name in _REGISTER_LINE.findall(path.read_text(encoding="utf-8")):
                    _index.setdefault(kind, {})[name] = module
    return _index


def describe(obj: Any) -> str:
    """The first line of an object's docstring: its one-line description."""
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
