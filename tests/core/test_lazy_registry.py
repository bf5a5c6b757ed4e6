"""Lazy registries: names are listed without importing modules, a broken module fails only its own names, files
and entry points resolve through the same lookup, and every entry is checked against the registry's base class."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from harness.core.errors import BenchError, UnknownNameError
from harness.core.registry import Registry, scan_registrations


class Base:
    pass


def make_package(root: Path, name: str, modules: dict[str, str]) -> None:
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))


def widget_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, sources: dict[str, str]
                    ) -> Registry:
    """A package whose modules (``sources``, each given the import of ``REG`` and ``Base`` first) register into
    ``tests.core.test_lazy_registry.REG``, which is returned."""
    global REG
    REG = Registry("widget", (package,), symbol="REG", base=f"{__name__}:Base")
    header = f"from {__name__} import REG, Base\n"
    make_package(tmp_path, package, {module: header + source for module, source in sources.items()})
    monkeypatch.syspath_prepend(str(tmp_path))
    return REG


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A package ``lazypkg`` whose modules register into ``tests.core.test_lazy_registry.REG``."""
    widget_registry(tmp_path, monkeypatch, "lazypkg", {
        "good": "@REG.register('good')\nclass Good(Base):\n    pass\n",
        "half": "from lazypkg.does_not_exist import something\n@REG.register('half')\nclass Half(Base):\n    pass\n",
        "typo": "@REG.register('typo')\nclass Typo(Base)\n    pass\n",  # a SyntaxError
        "wrong": "@REG.register('wrong')\nclass Wrong:\n    pass\n",  # not a Base
        "computed": "for n in ('a', 'b'):\n    REG.register(f'computed-{n}')(type(n, (Base,), {}))\n",
    })
    yield REG
    for module in [m for m in sys.modules if m == "lazypkg" or m.startswith("lazypkg.")]:
        del sys.modules[module]


REG: Registry = Registry("widget", ())


def test_scan_reads_literal_names_and_flags_computed_ones() -> None:
    assert scan_registrations("@R.register('x')\nclass A: pass\nR.register(name)(A)\nS.register('no')(A)", "R") == (["x"], True)
    # a file that does not parse still yields its names, so they fail with the file's error when used
    assert scan_registrations("@R.register('x')\nclass A(\n", "R") == (["x"], False)


def test_listing_imports_only_modules_with_computed_names(plugin_package: Registry) -> None:
    names = plugin_package.names()
    assert names == ["computed-a", "computed-b", "good", "half", "typo", "wrong"]
    assert "lazypkg.good" not in sys.modules and "lazypkg.half" not in sys.modules
    assert "lazypkg.computed" in sys.modules


def test_a_broken_module_fails_only_its_own_name(plugin_package: Registry) -> None:
    assert plugin_package.get("good").__name__ == "Good"
    with pytest.raises(BenchError) as half:
        plugin_package.get("half")
    message = str(half.value)
    assert "\n" not in message and "widget 'half' cannot be loaded: module lazypkg.half failed" in message
    assert "ModuleNotFoundError" in message and "lazypkg.does_not_exist" in message
    with pytest.raises(BenchError, match=r"widget 'typo' cannot be loaded: .*SyntaxError.*typo\.py:3"):
        plugin_package.get("typo")
    assert plugin_package.get("computed-b").__name__ == "b"
    assert plugin_package.get("good").__name__ == "Good"  # still fine after the failures


def test_entries_are_checked_against_the_base_class(plugin_package: Registry) -> None:
    with pytest.raises(BenchError, match=r"widget 'wrong' .* is <class 'lazypkg.wrong.Wrong'>, not a .*\.Base"):
        plugin_package.get("wrong")


def test_items_skip_broken_modules_with_a_warning(plugin_package: Registry) -> None:
    with pytest.warns(UserWarning) as caught:
        names = [name for name, _ in plugin_package.items()]
    assert names == ["computed-a", "computed-b", "good"]
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["half", "typo", "wrong"]


def test_unknown_names_still_suggest(plugin_package: Registry) -> None:
    with pytest.raises(UnknownNameError, match=r"unknown widget 'goood'; did you mean 'good'\?"):
        plugin_package.get("goood")


def test_a_file_resolves_to_its_attribute_and_is_checked(tmp_path: Path) -> None:
    file = tmp_path / "my_widget.py"
    file.write_text(f"from {__name__} import Base\nclass Mine(Base):\n    pass\nclass Other:\n    pass\n")
    registry: Registry = Registry("widget", (), base=f"{__name__}:Base")
    assert registry.get(f"{file}:Mine").__name__ == "Mine"
    assert registry.argument(f"{file}:Mine") is None  # not a prefix:argument name
    with pytest.raises(BenchError, match="not a"):
        registry.get(f"{file}:Other")
    with pytest.raises(BenchError, match="has no attribute 'Missing'"):
        registry.get(f"{file}:Missing")
    (tmp_path / "half.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(BenchError, match=r"half\.py: cannot import: ModuleNotFoundError"):
        registry.get(f"{tmp_path / 'half.py'}:X")


def test_entry_points_are_listed_lazily_and_loaded_on_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake installed distribution (a dist-info folder on sys.path) declares two entries, one broken."""
    make_package(tmp_path, "epplugin", {
        "fine": f"from {__name__} import Base\nclass Fine(Base):\n    pass\n",
        "broken": "raise ImportError('half written')\n",
    })
    dist = tmp_path / "epplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: epplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[bench.test-widgets]\nfine = epplugin.fine:Fine\nbroken = epplugin.broken:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry = Registry("widget", (), group="bench.test-widgets", base=f"{__name__}:Base")
    try:
        assert registry.names() == ["broken", "fine"]
        assert "epplugin.fine" not in sys.modules
        assert registry.get("fine").__name__ == "Fine"
        with pytest.raises(BenchError, match=r"widget 'broken' from plugin epplugin .* cannot be loaded: "
                                             r"ImportError: half written"):
            registry.get("broken")
        assert "epplugin" in registry.origin("fine")
    finally:
        for module in [m for m in sys.modules if m.startswith("epplugin")]:
            del sys.modules[module]


def test_a_built_in_name_is_found_without_reading_installed_plugins(
        plugin_package: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every installed distribution's entry points is start-up time `bench eval` should not pay for a
    built-in name; an unknown name still reaches the plugins."""
    import importlib.metadata

    calls: list[str] = []

    def entry_points(group: str) -> list[object]:
        calls.append(group)
        return []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    plugin_package.group = "bench.test-widgets"
    assert plugin_package.get("good").__name__ == "Good"
    assert calls == []
    with pytest.raises(UnknownNameError):
        plugin_package.get("not-built-in")
    assert calls == ["bench.test-widgets"]


def test_a_lookup_reads_modules_only_up_to_the_first_declaration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """A plain name stops the scan at the module declaring it; the first declaration in scan order still wins,
    and a later lookup or a listing goes on to the other modules."""
    widget_registry(tmp_path, monkeypatch, "orderpkg", {
        "a_first": "@REG.register('shared')\nclass First(Base):\n    pass\n",
        "b_second": "@REG.register('shared')\n@REG.register('later')\nclass Second(Base):\n    pass\n",
        "c_third": "@REG.register('last')\nclass Third(Base):\n    pass\n",
    })
    try:
        assert REG.key("shared") == "shared"
        assert REG._lazy == {"shared": "orderpkg.a_first"}  # b_second and c_third not read yet
        assert REG.get("shared").__name__ == "First"
        assert REG.get("last").__name__ == "Third"  # the scan goes on from where it stopped
        assert REG._lazy["shared"] == "orderpkg.a_first" and REG._lazy["later"] == "orderpkg.b_second"
        assert REG.names() == ["last", "later", "shared"]
        with pytest.raises(UnknownNameError):
            REG.get("nowhere")
    finally:
        for module in [m for m in sys.modules if m == "orderpkg" or m.startswith("orderpkg.")]:
            del sys.modules[module]
