"""One registry for everything that can be named in a spec.

``register(kind, name)`` files a class under a kind ("task", "dataset", "model",
"calibration.method", ...). ``get(kind, name)`` returns it or raises an error that lists the
close matches. Registered classes carry a pydantic ``Params`` model whose fields (with the
paper's defaults) are what ``infobench list`` prints.

Lookups are lazy: an index of ``@register("kind", "name")`` lines, read from the plugin
sources as text, says which module defines a name, and ``get`` imports only that module.
Validating or re-running a spec therefore imports the few plugins it names, not all of them.
A name the index cannot see (registered some other way) is found by importing everything.

Plug-ins from outside infobench come two ways:

- A ``module:Class`` name (``my_methods:MyTent``, ``mypkg.tta:Method``) imports ``module``,
  with the current working folder on the import path (so ``my_methods.py`` beside a spec works
  when infobench runs from that folder), and returns ``Class`` once it is checked to derive
  from the base of its kind (``BASES``). Its ``registered_name`` is the full string, which is
  what runs record and what every process (loky or Dask workers included) looks up again.
- Installed distributions declare entry points in the group ``infobench.plugins``; each names a
  module (or ``module:object``) whose import runs ``@register(...)`` decorators. They are loaded
  once, and only when a name is missing from infobench's own index or when plug-ins are listed.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from infobench.errors import RegistryError

T = TypeVar("T")

_REGISTRY: dict[str, dict[str, Any]] = {}

# Packages whose modules register plugins when imported. Importing them is what fills the registry.
PLUGIN_PACKAGES = ("infobench.data", "infobench.models", "infobench.mi", "infobench.tasks")

ENTRY_POINT_GROUP = "infobench.plugins"

# The class a plug-in of each kind derives from, as "module:Class" (imported only when a
# module:Class name is looked up). A kind missing here takes any class.
BASES = {
    "task": "infobench.tasks.base:Task",
    "dataset": "infobench.data.base:Dataset",
    "model": "infobench.models.base:Classifier",
    "tta.method": "infobench.tasks.tta.methods.base:TTAMethod",
    "calibration.method": "infobench.tasks.calibration.methods.base:Calibrator",
    "calibration.loss": "infobench.tasks.calibration.losses.base:TrainingLoss",
    "distill.loss": "infobench.tasks.distill.common:DistillLoss",
    "mi.estimator": "infobench.mi.base:MIEstimator",
    "mi.distribution": "infobench.tasks.mi.distributions:MIDistribution",
}

_IDENTIFIERS = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
PATH_NAME = re.compile(rf"(?P<module>{_IDENTIFIERS}):(?P<attr>{_IDENTIFIERS})", re.ASCII)


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: file ``obj`` under ``kind``/``name``; names are unique within a kind."""

    def decorator(obj: T) -> T:
        table = _REGISTRY.setdefault(kind, {})
        if not obj.__module__.startswith("infobench."):  # a plug-in from outside never takes one of ours
            builtin = _source_index().get(kind, {}).get(name)
            if builtin is not None:
                raise ValueError(f"{kind} {name!r} is a name infobench already uses ({builtin}); "
                                 f"register {obj.__qualname__} under another name")
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
    """Look up ``name`` under ``kind``; unknown names raise ``RegistryError`` with close matches.

    A ``module:Class`` name is imported from outside the registry (see the module docstring)."""
    if ":" in name:
        return _from_path(kind, name)
    if name not in _REGISTRY.get(kind, {}):
        module = _source_index().get(kind, {}).get(name)
        if module is not None:
            importlib.import_module(module)
        if name not in _REGISTRY.get(kind, {}):
            load_entry_points()
        if name not in _REGISTRY.get(kind, {}):
            load_plugins()
    table = _REGISTRY.get(kind, {})
    if name not in table:
        known = sorted(table)
        raise RegistryError(
            f"unknown {kind.replace('.', ' ')} {name!r}{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
            "; or name your own class as module:Class"
        )
    return table[name]


def names(kind: str) -> list[str]:
    """Sorted names registered under ``kind``: infobench's own from the source index (none of them
    is imported) and those of the entry-point plug-ins (which are imported)."""
    load_entry_points()
    return sorted(set(_source_index().get(kind, {})) | set(_REGISTRY.get(kind, {})))


def items(kind: str) -> list[tuple[str, Any]]:
    load_plugins()
    return sorted(_REGISTRY.get(kind, {}).items())


_loaded = False


def load_plugins() -> None:
    """Import every module of the plugin packages once, so that their decorators run, then the
    entry-point plug-ins."""
    global _loaded
    if not _loaded:
        _loaded = True
        for package_name in PLUGIN_PACKAGES:
            package = importlib.import_module(package_name)
            for module in pkgutil.walk_packages(package.__path__, prefix=package_name + ".", onerror=_raise):
                importlib.import_module(module.name)
    load_entry_points()


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


# ----------------------------------------------------------------------- module:Class names


def working_folder_on_path() -> None:
    """Put the current working folder at the end of ``sys.path`` if it is not there, so that a
    user's module beside their spec imports. Python puts it there for ``python -m`` but not for
    the ``infobench`` console script. At the end, it never shadows an installed module."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _failure(exc: BaseException) -> str:
    """``Type: message (file, line n)``: an exception from a plug-in's module in one line, placed
    at the innermost line of the plug-in's own code (not of the import machinery)."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError):  # its message already says where
        return text
    machinery = (str(Path(importlib.__file__).parent), str(Path(__file__)))
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.startswith(("<", *machinery)):
            return f"{text} ({Path(frame.filename).name}, line {frame.lineno})"
    return text


def import_outside(module: str, what: str) -> Any:
    """Import ``module`` (a user's, or an installed package's) for the plug-in ``what``; a module
    that is missing or fails on import raises ``RegistryError`` saying which and why."""
    working_folder_on_path()
    if module not in sys.modules:
        importlib.invalidate_caches()  # a file written since the last import in this process
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise RegistryError(
                f"{what}: no module named {module!r}, neither in the working folder {os.getcwd()} nor installed; "
                f"run infobench from the folder that holds {module.split('.')[0]}.py (or the package "
                f"{module.split('.')[0]}/), or install it"
            ) from None
        raise RegistryError(f"{what}: importing module {module!r} failed: {_failure(exc)}") from None
    except Exception as exc:  # the user's module itself raised: say what, not a traceback into infobench
        raise RegistryError(f"{what}: importing module {module!r} failed: {_failure(exc)}") from None


def base_class(kind: str) -> type | None:
    """The class plug-ins of ``kind`` derive from (``BASES``), or None when any class will do."""
    target = BASES.get(kind)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _from_path(kind: str, name: str) -> type:
    """The class a ``module:Class`` name points at, checked against the base of ``kind``."""
    what = f"{kind.replace('.', ' ')} {name!r}"
    match = PATH_NAME.fullmatch(name)
    if match is None:
        raise RegistryError(f"{what}: not a plug-in name; a name of your own is module:Class, "
                            "e.g. my_methods:MyMethod (module my_methods.py in the working folder)")
    module_name, attr = match["module"], match["attr"]
    obj = import_outside(module_name, what)
    for part in attr.split("."):
        if not hasattr(obj, part):
            where = getattr(sys.modules.get(module_name), "__file__", None) or module_name
            raise RegistryError(f"{what}: module {module_name!r} ({where}) has no attribute {attr!r}"
                                f"{did_you_mean(attr, [n for n in dir(obj) if not n.startswith('_')])}")
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise RegistryError(f"{what}: {module_name}.{attr} is a {type(obj).__name__}, not a class")
    base = base_class(kind)
    if base is not None and not issubclass(obj, base):
        raise RegistryError(f"{what}: {module_name}.{attr} is not a subclass of "
                            f"{base.__module__}.{base.__qualname__}, the base class of a {kind.replace('.', ' ')}")
    own = obj.__dict__.get("registered_name")
    if own is not None and _REGISTRY.get(kind, {}).get(own) is obj and obj.__module__.startswith("infobench."):
        return obj  # a built-in plug-in named by its path keeps its registered name
    # the spec records cls.registered_name as the run's name: the full string is what any process,
    # a worker included, can look up again (a short name a decorator in this module gave may not be)
    try:
        obj.registered_name = name  # type: ignore[attr-defined]
    except TypeError:  # a type built into Python or an extension: no attribute can be set
        raise RegistryError(f"{what}: {module_name}.{attr} is a built-in type, not a plug-in class") from None
    return obj


# ---------------------------------------------------------------------- entry-point plug-ins

_origins: dict[str, str] | None = None  # module -> "distribution version" of what entry points imported
_entry_point_errors: list[str] = []  # one line per entry point that failed to load


def load_entry_points() -> None:
    """Import the module of every ``infobench.plugins`` entry point, once per process; a broken
    one raises ``RegistryError`` naming its distribution and entry point (now and on every later
    call, without importing it again)."""
    global _origins
    if _origins is None:
        from importlib.metadata import entry_points

        _origins = {}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            dist = f"{point.dist.name} {point.dist.version}" if point.dist is not None else "an unknown distribution"
            where = f"entry point {point.name!r} ({point.value}) of {dist}"
            before = set(sys.modules)
            try:
                point.load()
            except Exception as exc:  # the plug-in's own error, in one line: it is not infobench's bug
                _entry_point_errors.append(f"{where}: {_failure(exc)}")
                continue
            for module in (set(sys.modules) - before) | {point.module}:
                if module.split(".")[0] != "infobench":  # infobench's own modules it imported stay ours
                    _origins.setdefault(module, dist)
    if _entry_point_errors:
        raise RegistryError("cannot load infobench plug-ins from installed packages:\n"
                            + "\n".join(f"  - {line}" for line in _entry_point_errors))


def origin(kind: str, name: str) -> str | None:
    """``"distribution version"`` of an entry-point plug-in, None for infobench's own (and for
    names nothing registered)."""
    obj = _REGISTRY.get(kind, {}).get(name)
    if obj is None or not _origins:
        return None
    module = obj.__module__
    while module:
        if module in _origins:
            return _origins[module]
        module = module.rpartition(".")[0]
    return None


def source_modules(name: str, kind: str | None = None) -> set[str]:
    """The modules that define the plug-in ``name`` (under ``kind``, or under any kind), for the
    code digest: the module of a ``module:Class`` name; for infobench's own names, the source
    index (nothing is imported); otherwise the module of the class registered from outside
    infobench, by an entry point (loaded for this if it was not; a broken one gives nothing, not
    an error) or by a module imported before. Empty when nothing defines ``name``."""
    match = PATH_NAME.fullmatch(name)
    if match is not None:
        return {match["module"]}
    tables = [_source_index().get(kind, {})] if kind else list(_source_index().values())
    found = {table[name] for table in tables if name in table}
    if found:
        return found

    def registered() -> set[str]:
        kinds = [kind] if kind else list(_REGISTRY)
        return {_REGISTRY[k][name].__module__ for k in kinds if name in _REGISTRY.get(k, {})}

    if not registered():
        try:
            load_entry_points()
        except RegistryError:
            pass  # a broken plug-in defines nothing: the digest says so by lacking it
    return registered()
