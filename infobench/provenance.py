"""What a run's numbers depend on besides its configuration: the code it ran and the data files
it read, each reduced to a digest that goes with the run.

- ``code_digest(config)``: a sha256 over the source of every infobench module a run's numbers
  can depend on: the modules of the plug-ins its configuration names (task, method, dataset,
  model, losses, estimators) and everything they import from infobench, found by reading their
  ``import`` statements (lazy imports inside functions included), plus infobench's version.
  Modules that cannot change a number (the runner, tables, plots, progress bars) are followed
  for their imports but not hashed, so editing a figure does not invalidate results.
  A plug-in from outside infobench (a ``module:Class`` name, or an entry-point plug-in) is
  hashed too: its module's file, the modules of its own package it imports, and the infobench
  modules it imports. Helper modules it imports from elsewhere (another file beside it) are not.
- ``file_digest(path)``: the sha256 of a data file's content, memoised under the cache folder
  by (size, mtime, inode) so a large file is read once, not on every run.

Both are cheap to recompute (no torch, no imports of infobench's plug-ins; an entry-point
plug-in is imported to find its module), so the planner can tell a
finished run from a stale one, and ``compare`` can mark the stale ones.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from infobench import __version__

PACKAGE_ROOT = Path(__file__).resolve().parent
# Followed for their imports, never hashed: they only run, store, draw or print what tasks compute.
NOT_NUMERIC = frozenset({
    "infobench", "infobench.cli", "infobench.catalog", "infobench.runner", "infobench.results",
    "infobench.compare", "infobench.executors", "infobench.progress", "infobench.plots",
    "infobench.errors", "infobench.registry", "infobench.limits", "infobench.provenance",
    "infobench.spec",
})


def module_file(module: str) -> Path | None:
    """The source file of a module (a package's ``__init__.py``), or None: infobench's own, or
    one from outside (a plug-in's), found without importing it where it is not imported yet."""
    parts = module.split(".")
    if parts[0] == "infobench":
        return _infobench_file(module)
    return _outside_file(module)


@cache
def _infobench_file(module: str) -> Path | None:
    return _file_under(PACKAGE_ROOT, module.split(".")[1:])


def _file_under(folder: Path, parts: list[str]) -> Path | None:
    base = folder.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _outside_file(module: str) -> Path | None:
    """A module from outside infobench: the file it was imported from, else where its top-level
    package or module lies (looked up as an import would, the working folder included, without
    running it) and the rest of its dotted name below that. Not cached: a plug-in's file may be
    written after a first lookup."""
    import importlib.util
    import sys

    from infobench.registry import working_folder_on_path

    loaded = getattr(sys.modules.get(module), "__file__", None)
    if loaded:
        return Path(loaded) if loaded.endswith(".py") else None
    top, *rest = module.split(".")
    top_file = getattr(sys.modules.get(top), "__file__", None)
    if not top_file:
        working_folder_on_path()
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None
        top_file = spec.origin if spec is not None and spec.has_location else None
    if not top_file or not top_file.endswith(".py"):
        return None  # a compiled extension or a namespace package: no source to hash
    top_path = Path(top_file)
    if not rest:
        return top_path
    return _file_under(top_path.parent, rest) if top_path.name == "__init__.py" else None


@lru_cache(maxsize=4096)
def _imports(module: str, source: str) -> frozenset[str]:
    """infobench modules named by the import statements of ``source`` (anywhere in the file);
    memoised on the source text, so an unchanged file is parsed once per process."""
    found: set[str] = set()
    package = module if module_file(module) and module_file(module).name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    # infobench's modules, and for a plug-in from outside, the modules of its own package
    own = module.split(".")[0]
    ours = ("infobench",) if own == "infobench" else ("infobench", own)
    return frozenset(m for m in found if m.split(".")[0] in ours and module_file(m) is not None)


@lru_cache(maxsize=4096)
def _read(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _source(module: str) -> tuple[bytes, str]:
    path = module_file(module)
    stat = path.stat()
    return _read(path, stat.st_mtime_ns, stat.st_size)


def closure(roots: set[str]) -> list[str]:
    """``roots`` and every infobench module they import, directly or not, sorted."""
    seen: set[str] = set()
    todo = [m for m in roots if module_file(m) is not None]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        # parents run their __init__ on import, so they belong to the closure too
        parent = module.rpartition(".")[0]
        if parent and parent not in seen:
            todo.append(parent)
        data, _ = _source(module)
        todo.extend(_imports(module, data.decode("utf-8")) - seen)
    return sorted(seen)


def _names(node: Any) -> set[str]:
    """Every ``name`` value in a configuration (the plug-ins it selects), at any depth."""
    if isinstance(node, dict):
        found = {node["name"]} if isinstance(node.get("name"), str) else set()
        for value in node.values():
            found |= _names(value)
        return found
    if isinstance(node, list):
        return set().union(*(_names(v) for v in node)) if node else set()
    return set()


def plugin_modules(config: dict[str, Any]) -> set[str]:
    """Modules of the task and of every plug-in a run configuration names, infobench's own or
    from outside (``registry.source_modules``)."""
    return _plugin_roots(config)[0]


def _plugin_roots(config: dict[str, Any]) -> tuple[set[str], bool]:
    """``plugin_modules(config)``, and whether every plug-in it names was found here with its
    source (a plug-in from outside may be missing: another working folder, an uninstalled package)."""
    from infobench.registry import source_modules

    task = config.get("task")
    found = [source_modules(task, "task")] if isinstance(task, str) else []
    found += [source_modules(name) for name in _names(config)]
    modules = set().union(*found)
    return modules, all(found) and all(module_file(m) is not None for m in modules)


_digests: dict[frozenset, tuple[list[str], tuple, str]] = {}  # plug-in modules -> (file stamps, digest)


def _stamps(modules: list[str]) -> tuple:
    out = []
    for module in modules:
        info = module_file(module).stat()
        out.append((info.st_mtime_ns, info.st_size))
    return tuple(out)


def code_digest(config: dict[str, Any]) -> str:
    """First 16 hex digits of a sha256 over infobench's version and the source of every module
    the run's numbers may depend on (see the module docstring); ``""`` (unknown) when a plug-in
    from outside that the configuration names cannot be found here, so that ``compare`` run from
    another folder does not call a run stale for a module it cannot see.

    Runs naming the same plug-ins share one digest, kept until a file of their closure changes
    on disk (checked by its size and mtime), so a sweep of thousands of runs hashes once.
    """
    found, complete = _plugin_roots(config)
    if not complete:
        return ""
    roots = frozenset(found)
    known = _digests.get(roots)
    if known is not None:
        modules, stamps, digest = known
        if _stamps(modules) == stamps:
            return digest
    modules = closure(set(roots))
    h = hashlib.sha256(f"infobench {__version__}\n".encode())
    for module in modules:
        if module in NOT_NUMERIC or module.endswith(".plots") or module.startswith(("infobench.report", "infobench.tracking")):
            continue
        h.update(f"{module} {_source(module)[1]}\n".encode())
    digest = h.hexdigest()[:16]
    _digests[roots] = (modules, _stamps(modules), digest)
    return digest


# ------------------------------------------------------------------------------- data files


def _memo_path(path: Path) -> Path:
    from infobench.cache import cache_root

    key = hashlib.sha256(str(path).encode()).hexdigest()[:24]
    return cache_root() / "fingerprints" / f"{key}.json"


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's content, memoised by (size, mtime, inode, device) in the cache folder:
    a file rewritten under the same name gets a new digest, an untouched one is not reread."""
    from infobench.results import atomic_write

    path = Path(path).resolve()
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev]
    memo = _memo_path(path)
    try:
        known = json.loads(memo.read_text())
        if known.get("path") == str(path) and known.get("stamp") == stamp:
            return known["sha256"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass  # no memo, or an unreadable one: hash the file
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    try:
        atomic_write(memo, json.dumps({"path": str(path), "stamp": stamp, "sha256": digest}))
    except OSError:
        pass  # a read-only cache only costs the next run a re-read
    return digest


def _dataset(dataset_cfg: dict[str, Any], kind: str):
    """The dataset plug-in of ``dataset_cfg``, made (cheap: nothing is loaded)."""
    from infobench.registry import get

    cls = get(kind, dataset_cfg["name"])
    params = cls.Params.model_validate({k: v for k, v in dataset_cfg.items() if k != "name"})
    return cls(params)


def data_digests(dataset_cfg: dict[str, Any], kind: str = "dataset") -> list[str]:
    """Content digests of every file the dataset of ``dataset_cfg`` reads (none for generated
    data), in the plug-in's order; a missing file raises the plug-in's ``DataError`` naming it."""
    dataset = _dataset(dataset_cfg, kind)
    return content_digests(dataset, getattr(dataset, "files", lambda: [])())


def content_digests(dataset: Any, files: list) -> list[str]:
    """What stands for the content of ``files``: the dataset's own ``fingerprint`` of them when it
    has one (an image folder of 75,000 JPEGs digests its listing, see ``Dataset.fingerprint``),
    else the sha256 of each."""
    own = getattr(dataset, "fingerprint", None)
    stand_in = own(files) if own is not None else None
    return stand_in if stand_in is not None else [file_digest(p) for p in files]


def checkpoint_digests(config: dict[str, Any]) -> dict[str, str]:
    """sha256 of every weights file a run's configuration loads, keyed by where it is named
    (``model``, ``teacher.model``): the ``checkpoint`` of any block, at any depth. A missing
    file raises a ``DataError`` naming it and the key."""
    from infobench.errors import DataError

    found: dict[str, str] = {}

    def walk(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            return
        path = value.get("checkpoint")
        if isinstance(path, str) and where != "method":
            from infobench.data.files import data_path

            resolved = data_path(path)
            if not resolved.is_file():
                raise DataError(f"{where + '.' if where else ''}checkpoint: {path} is not a file (a .pt/.pth "
                                "state dict or a .safetensors file)")
            found[where or "checkpoint"] = file_digest(resolved)
        for key, sub in value.items():
            walk(sub, f"{where}.{key}" if where else str(key))

    walk(config, "")
    return found


def _path_fields(params_cls) -> set[str]:
    """Fields of a Params model typed as a file or folder path (``infobench.data.files.PathStr``)."""
    from typing import get_args

    from infobench.data.files import PathStr

    marker = get_args(PathStr)[1]
    return {name for name, f in params_cls.model_fields.items() if marker in f.metadata}


def training_data_key(dataset_cfg: dict[str, Any], kind: str = "dataset") -> dict[str, Any]:
    """What of a dataset shapes a model trained on it: its name, the parameters that are not
    test-only (the corruptions of a test split never retrain a model, see ``Dataset.test_only``)
    and the content of the files its train and val splits come from, never their paths: a file
    rewritten under the same name retrains, a moved one does not."""
    dataset = _dataset(dataset_cfg, kind)
    if not hasattr(dataset, "train_params"):  # a plug-in outside the Dataset base: all of its config
        return {"name": dataset_cfg["name"], "params": {k: v for k, v in dataset_cfg.items() if k != "name"},
                "content": data_digests(dataset_cfg, kind)}
    params = dataset.train_params()
    content = content_digests(dataset, dataset.train_files())
    if content:  # the files' content stands for them; a plug-in that lists no files keeps its paths
        for name in _path_fields(type(dataset.params)):
            params.pop(name, None)
    return {"name": dataset_cfg["name"], "params": params, "content": content}


def git_state() -> dict[str, Any]:
    """The git commit of infobench's source tree and whether it has uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=PACKAGE_ROOT)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "", "git_dirty": None}
    status = git("status", "--porcelain", "--", str(PACKAGE_ROOT))
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}
