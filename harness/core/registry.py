"""Name -> factory registries with lazy entries: built-in packages, installed plugins and files, one resolver.

Adding a task, dataset, metric or adapter touches one file: the new module registers itself with
``@REGISTRY.register("name")``.  Where the entries come from, in the order a name is looked up:

1. the registry's packages (``harness.metrics``, ``adapters``, ...), read by a cheap scan: every module's source
   is parsed (never imported) for ``SYMBOL.register("literal name")`` calls, giving name -> module.  Looking a
   name up imports that one module.  A module that registers computed names (``f"tv-{builder}"`` in a loop) is
   imported only when a name is not found statically, or when the whole list is asked for.
2. installed plugins (read only when a name is not built in, or for a listing): ``importlib.metadata`` entry
   points of the registry's group (``bench.adapters``,
   ``bench.datasets``, ``bench.metrics``, ``bench.tasks``, ...), ``name = "module:attribute"``, loaded on use.
3. files: ``path/to/module.py:Attribute`` loads that file (``bench run --model my_model.py:MyAdapter``).

A module that fails to import (half-written, missing dependency) breaks only the names it registers: using one
raises a one-line ``BenchError`` naming the module and the error, every other name keeps working, and listings
skip it with a warning.  Every entry is checked against the registry's base class (``Adapter``, ``Metric``, ...)
before it is handed out, so a plugin that registers the wrong thing fails at lookup, not deep inside a run.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
import warnings
from pathlib import Path
from typing import Callable, Generic, Iterator, TypeVar

from harness.core.errors import BenchError, UnknownNameError

T = TypeVar("T")

#: ``path/to/file.py:Attribute`` (the path may hold ``:`` on Windows drives, the attribute may not)
_FILE_SPEC = re.compile(r"^(?P<path>.+\.py):(?P<attr>[A-Za-z_][A-Za-z0-9_.]*)$")


def is_file_spec(spec: str) -> bool:
    """True for ``path/to/module.py:Attribute`` (as opposed to a registered name or ``prefix:argument``)."""
    return _FILE_SPEC.match(spec) is not None


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message (file:line)``, the innermost frame of the traceback included."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    else:
        import traceback  # error paths only: start-up pays for what every lookup needs, no more

        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            where = f" ({frames[-1].filename}:{frames[-1].lineno})"
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


def load_file_attribute(spec: str) -> object:
    """The object named by ``path/to/module.py:Attribute``; the module is imported once per path."""
    match = _FILE_SPEC.match(spec)
    if match is None:
        raise BenchError(f"{spec!r} is not of the form path/to/module.py:Attribute")
    path = Path(match["path"]).expanduser().resolve()
    if not path.is_file():
        raise BenchError("no such file", path)
    # a stable, unique module name: the prediction cache fingerprints code by module, pickling needs one too
    import hashlib

    module_name = f"bench_file_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    module = sys.modules.get(module_name)
    if module is None:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise BenchError("cannot be imported as a Python module", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise BenchError(f"cannot import: {one_line(exc)}", path) from None
    obj: object = module
    for part in match["attr"].split("."):
        if not hasattr(obj, part):
            raise BenchError(f"has no attribute {match['attr']!r}", path)
        obj = getattr(obj, part)
    return obj


def _import_attribute(target: str) -> object:
    """``module:attr`` (an entry point's value) or ``module`` (imported for its registrations)."""
    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def scan_registrations(source: str, symbol: str) -> tuple[list[str], bool]:
    """(literal names, has computed names) of the ``symbol.register(...)`` calls in ``source``, without importing.

    A file that does not parse (half-written) is read with a regular expression instead, so its names are still
    known and fail with the import error when used.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        found: list[str] = re.findall(rf"\b{re.escape(symbol)}\.register\(\s*[\"']([^\"']+)[\"']", source)
        return found, False
    names: list[str] = []
    computed = False
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == symbol):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.append(first.value)
            else:
                computed = True
    return names, computed


def _package_modules(package: str) -> Iterator[tuple[str, Path]]:
    """(module name, file) of every module under ``package``, found on disk without importing them."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    for location in spec.submodule_search_locations:
        root = Path(location)
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            # only inside regular packages, as pkgutil.walk_packages would go
            if any(not (root / Path(*relative.parts[:i]) / "__init__.py").is_file() for i in range(1, len(relative.parts))):
                continue
            parts = [package, *relative.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


class Registry(Generic[T]):
    """Maps a name to a class or factory; entries come from ``packages``, entry-point ``group`` and files.

    ``symbol`` is the variable the modules register through (``METRICS``): the scan looks for
    ``METRICS.register("name")``.  Without it, every module of the packages is imported on first lookup.
    ``base`` is the class every entry must be (a subclass or an instance of), as ``"module:Class"`` so the
    registry can be declared below the class; without it, entries only have to be callable.
    """

    def __init__(self, kind: str, packages: tuple[str, ...], *, symbol: str | None = None, group: str | None = None,
                 base: str | None = None) -> None:
        self.kind = kind
        self.packages = packages
        self.symbol = symbol
        self.group = group
        self.base = base
        self._entries: dict[str, T] = {}
        self._lazy: dict[str, str] = {}  # name -> "module" (package scan) or "module:attr" (entry point)
        self._origin: dict[str, str] = {}  # name -> where it was declared, for messages
        self._dynamic: list[str] = []  # modules with computed names, imported on a miss or a listing
        self._failed: dict[str, str] = {}  # module -> one-line import error
        self._scanned = False
        self._unread: list[tuple[str, Path]] | None = None  # package modules not scanned yet, in scan order
        self._plugins_scanned = False
        self._dynamic_loaded = False

    # ------------------------------------------------------------------------------------------- filling
    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                raise RuntimeError(f"{self.kind} {name!r} registered twice: {existing!r} and {obj!r}")
            self._entries[name] = obj
            return obj

        return decorate

    def _scan(self, until: str | None = None) -> None:
        """The packages' literal names (cheap: source text only); plugins are read by ``_scan_plugins``.

        With ``until``, stops after the module that declares that name: modules are read in a fixed order and the
        first declaration wins, so the modules after it cannot change what the name resolves to (``bench eval``
        reads one file-evaluator module, not all of them); a later call goes on where this one stopped."""
        if self._scanned:
            return
        if self._unread is None:
            self._unread = [found for package in self.packages for found in _package_modules(package)]
            self._unread.reverse()  # popped from the end: scan order
        while self._unread:
            module, path = self._unread.pop()
            self._scan_module(module, path)
            if until is not None and until in self._lazy:
                return
        self._scanned = True

    def _scan_module(self, module: str, path: Path) -> None:
        if self.symbol is None:
            self._dynamic.append(module)
            return
        source = path.read_text(encoding="utf-8", errors="replace")
        if f"{self.symbol}.register" not in source:
            return
        names, computed = scan_registrations(source, self.symbol)
        for name in names:
            self._lazy.setdefault(name, module)
            self._origin.setdefault(name, str(path))
        if computed:
            self._dynamic.append(module)

    def _scan_plugins(self) -> None:
        """Installed plugins' entry points, read only when a name is not built in or every name is wanted:
        ``importlib.metadata`` and the walk over every installed distribution cost tens of milliseconds of
        start-up, which ``bench eval`` on a built-in format should not pay.  A built-in name wins either way."""
        self._scan()
        if self._plugins_scanned:
            return
        self._plugins_scanned = True
        if self.group:
            import importlib.metadata

            for entry_point in importlib.metadata.entry_points(group=self.group):
                if entry_point.name in self._lazy or entry_point.name in self._entries:
                    warnings.warn(f"{self.kind} {entry_point.name!r} of plugin {entry_point.value!r} ignored: the name is "
                                  f"taken by {self._origin.get(entry_point.name, 'a built-in entry')}", stacklevel=3)
                    continue
                self._lazy[entry_point.name] = entry_point.value
                dist = getattr(entry_point, "dist", None)
                plugin = f"plugin {dist.name}" if dist is not None else "plugin"
                self._origin[entry_point.name] = f"{plugin} ({self.group}: {entry_point.value})"

    def _import(self, module: str) -> bool:
        """Import one module for its registrations; False (and the error kept) if it fails."""
        if module in self._failed:
            return False
        try:
            importlib.import_module(module)
        except Exception as exc:  # a half-written plugin must not take the other names down
            self._failed[module] = one_line(exc)
            return False
        return True

    def _load_dynamic(self, quiet: bool = True) -> None:
        if self._dynamic_loaded:
            return
        self._dynamic_loaded = True
        for module in self._dynamic:
            if not self._import(module) and not quiet:
                warnings.warn(f"{self.kind}s of module {module} skipped: {self._failed[module]}", stacklevel=3)

    def _materialise(self, name: str) -> T:
        """The entry of a name known lazily: import its module (or load its entry point) and check it."""
        if name not in self._entries:
            target = self._lazy[name]
            where = self._origin.get(name, target)
            if ":" in target:  # an entry point names its object
                try:
                    obj = _import_attribute(target)
                except Exception as exc:
                    raise BenchError(f"{self.kind} {name!r} from {where} cannot be loaded: {one_line(exc)}") from None
                self.register(name)(obj)  # type: ignore[arg-type]
            else:
                if not self._import(target):
                    raise BenchError(f"{self.kind} {name!r} cannot be loaded: module {target} failed: "
                                     f"{self._failed[target]}")
                if name not in self._entries:
                    raise BenchError(f"{self.kind} {name!r}: module {target} ({where}) did not register it when imported")
        return self._checked(name, self._entries[name])

    def _checked(self, name: str, obj: T) -> T:
        if self.base is None:
            if not callable(obj):
                raise BenchError(f"{self.kind} {name!r} is {obj!r}, not a class or factory")
            return obj
        base = _import_attribute(self.base)
        assert isinstance(base, type)
        if isinstance(obj, type) and issubclass(obj, base) or isinstance(obj, base):
            return obj
        raise BenchError(f"{self.kind} {name!r} ({self._origin.get(name, getattr(obj, '__module__', '?'))}) is "
                         f"{obj!r}, not a {base.__module__}.{base.__qualname__}")

    # ------------------------------------------------------------------------------------------- lookup
    def key(self, name: str) -> str:
        """The registered key a name resolves through: itself, ``"prefix:"`` for ``prefix:argument``, or the file."""
        if is_file_spec(name) or name in self._entries:
            return name
        prefix, colon, _ = name.partition(":")
        self._scan(until=None if colon else name)  # a plain name: only the modules up to the one declaring it
        if name in self._lazy:
            return name
        for scan in (self._scan, self._scan_plugins):  # built-in first: plugins only when that misses
            scan()
            if name in self._lazy:
                return name
            if colon and (f"{prefix}:" in self._entries or f"{prefix}:" in self._lazy):
                return f"{prefix}:"
        self._load_dynamic()
        if name not in self._entries and colon and f"{prefix}:" in self._entries:
            return f"{prefix}:"
        return name

    def argument(self, name: str) -> str | None:
        """What follows ``prefix:`` in a parametrised name (``mmdet:CONFIG`` -> ``CONFIG``), else None."""
        key = self.key(name)
        return name[len(key):] if key.endswith(":") and key != name else None

    def get(self, name: str) -> T:
        if name in self._entries:
            return self._checked(name, self._entries[name])
        if is_file_spec(name):
            obj = load_file_attribute(name)
            self._origin.setdefault(name, name.rpartition(":")[0])
            return self._checked(name, obj)  # type: ignore[arg-type]
        key = self.key(name)
        if key in self._entries or key in self._lazy:
            return self._materialise(key)
        import difflib

        hint = difflib.get_close_matches(name, self._known(), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        known = ", ".join(self._known()) or "none"
        broken = ""
        if self._failed:
            broken = " (modules that failed to import: " + "; ".join(f"{m}: {e}" for m, e in sorted(self._failed.items())) + ")"
        raise UnknownNameError(f"unknown {self.kind} {name!r}{suggestion} (known: {known}){broken}")

    def _known(self) -> list[str]:
        self._scan_plugins()
        self._load_dynamic()
        return sorted(set(self._entries) | set(self._lazy))

    def names(self) -> list[str]:
        """Every name, without importing the modules that declare them statically."""
        return self._known()

    def items(self) -> Iterator[tuple[str, T]]:
        """Every entry, loaded; a name whose module fails is skipped with a warning naming the error."""
        for name in self._known():
            try:
                obj = self._materialise(name) if name not in self._entries else self._checked(name, self._entries[name])
            except BenchError as exc:
                warnings.warn(f"skipped: {exc}", stacklevel=2)
                continue
            yield name, obj

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._known()

    def origin(self, name: str) -> str:
        """Where a name is declared (a file, a module, or a plugin's entry point), for listings."""
        self._scan_plugins()
        return self._origin.get(name, getattr(self._entries.get(name), "__module__", "?"))

