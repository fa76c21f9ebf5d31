"""Imports only point down (DESIGN.md 1, STYLE.md 1).

Every module under ``src/workerbridge`` is parsed with ``ast`` (nothing is imported), and
every ``import`` in it, at any depth and under ``TYPE_CHECKING`` too, is checked against
its layer. Layers, lowest first::

    _exceptions  <  _protocol  <  _transport  <  _shared  <  _worker  <  _backends  <  _pool
        <  _channels  <  _bridge  <  _cli  <  top

where "top" is the package ``__init__`` and the public helpers (``testing``). A module
may import its own layer and the layers below it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import workerbridge

PACKAGE = "workerbridge"
SRC = Path(workerbridge.__file__).resolve().parent

LAYERS = [
    "_exceptions",
    "_protocol",
    "_transport",
    "_shared",
    "_worker",
    "_backends",
    "_pool",
    "_channels",
    "_bridge",
    "_cli",
    "top",
]
RANK = {name: i for i, name in enumerate(LAYERS)}
#: Top-level entries of the package that sit above the pool.
TOP = {"__init__", "__main__", "_demo", "testing"}

#: The protocol layer is pure data: no I/O, no concurrency, no processes.
PROTOCOL_FORBIDDEN_STDLIB = {
    "asyncio",
    "concurrent",
    "fcntl",
    "mmap",
    "multiprocessing",
    "os",
    "select",
    "selectors",
    "signal",
    "socket",
    "subprocess",
    "threading",
}


@dataclass(frozen=True)
class Import:
    module: str  # absolute, dotted
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a module of the package; None for one that belongs to no layer."""
    parts = module.split(".")
    assert parts[0] == PACKAGE
    if len(parts) == 1:
        return "top"
    head = parts[1]
    if head in RANK and head != "top":
        return head
    if head in TOP:
        return "top"
    return None


def imports_of(path: Path) -> list[Import]:
    name = module_name(path)
    # The package a relative import starts from.
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                target = node.module
            found.append(Import(target, node.lineno))
            # `from . import _tasks` / `from .. import _pool`: the names may be modules.
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    if _is_module(candidate):
                        found.append(Import(candidate, node.lineno))
    return found


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


MODULES = sorted(SRC.rglob("*.py"))
IDS = [module_name(p) for p in MODULES]


def internal(imports: list[Import]) -> list[Import]:
    return [i for i in imports if i.module == PACKAGE or i.module.startswith(PACKAGE + ".")]


# ---------------------------------------------------------------------------- tests


def test_the_package_was_found() -> None:
    assert len(MODULES) > 20
    assert "workerbridge._protocol._codec" in IDS


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_every_module_has_a_layer(path: Path) -> None:
    assert layer_of(module_name(path)) is not None, (
        f"{module_name(path)} belongs to no layer: add it to LAYERS/TOP in this test"
    )


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_imports_only_point_down(path: Path) -> None:
    name = module_name(path)
    own = layer_of(name)
    assert own is not None
    upward = []
    for imp in internal(imports_of(path)):
        target = layer_of(imp.module)
        assert target is not None, f"{name}:{imp.line} imports {imp.module}, which has no layer"
        if RANK[target] > RANK[own]:
            upward.append(f"{name}:{imp.line} ({own}) imports {imp.module} ({target})")
    assert not upward, "\n".join(upward)


def modules_of(layer: str) -> list[Path]:
    return [p for p in MODULES if layer_of(module_name(p)) == layer]


@pytest.mark.parametrize("path", modules_of("_protocol"), ids=lambda p: module_name(p))
def test_protocol_is_pure(path: Path) -> None:
    imports = imports_of(path)
    stdlib = {i.module.split(".")[0] for i in imports} - {PACKAGE}
    assert not stdlib & PROTOCOL_FORBIDDEN_STDLIB
    for imp in internal(imports):
        assert layer_of(imp.module) in ("_protocol", "_exceptions"), imp


@pytest.mark.parametrize("path", modules_of("_transport"), ids=lambda p: module_name(p))
def test_transport_uses_only_protocol_and_exceptions(path: Path) -> None:
    for imp in internal(imports_of(path)):
        assert layer_of(imp.module) in ("_transport", "_protocol", "_exceptions"), imp


@pytest.mark.parametrize("path", modules_of("_shared"), ids=lambda p: module_name(p))
def test_shared_state_uses_only_transport_and_exceptions(path: Path) -> None:
    for imp in internal(imports_of(path)):
        assert layer_of(imp.module) in ("_shared", "_transport", "_exceptions"), imp


def test_nothing_below_shared_state_imports_it() -> None:
    below = [p for p in MODULES if RANK[layer_of(module_name(p)) or "top"] < RANK["_shared"]]
    assert below
    bad = [
        f"{module_name(path)}:{imp.line} imports {imp.module}"
        for path in below
        for imp in internal(imports_of(path))
        if layer_of(imp.module) == "_shared"
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        (
            "_exceptions",
            {"_protocol", "_transport", "_shared", "_worker", "_backends", "_pool", "top"},
        ),
        ("_worker", {"_pool", "_backends", "top"}),
        ("_backends", {"_pool", "top"}),
        # Channels run inside workers, which must not load the pool (start-up time).
        ("_channels", {"_backends", "_pool", "_bridge", "_cli", "top"}),
        ("_bridge", {"_cli", "top"}),
    ],
)
def test_layer_does_not_import(layer: str, forbidden: set[str]) -> None:
    bad = [
        f"{module_name(path)}:{imp.line} imports {imp.module}"
        for path in modules_of(layer)
        for imp in internal(imports_of(path))
        if layer_of(imp.module) in forbidden
    ]
    assert not bad, "\n".join(bad)


def test_nothing_below_the_pool_imports_the_pool() -> None:
    below = [p for p in MODULES if RANK[layer_of(module_name(p)) or "top"] < RANK["_pool"]]
    assert below
    bad = [
        f"{module_name(path)}:{imp.line} imports {imp.module}"
        for path in below
        for imp in internal(imports_of(path))
        if layer_of(imp.module) == "_pool"
    ]
    assert not bad, "\n".join(bad)


def test_import_resolution() -> None:
    """The resolver itself, on modules whose imports are known."""
    codec = SRC / "_protocol" / "_codec.py"
    assert {i.module for i in internal(imports_of(codec))} == {
        "workerbridge._exceptions",
        "workerbridge._protocol._messages",
    }
    testing_init = SRC / "testing" / "__init__.py"
    assert "workerbridge.testing._tasks" in {i.module for i in imports_of(testing_init)}
    top = {i.module for i in internal(imports_of(SRC / "__init__.py"))}
    assert {"workerbridge._pool", "workerbridge._worker", "workerbridge._exceptions"} <= top
    # Imports nested in functions count too.
    core = {i.module for i in internal(imports_of(SRC / "_pool" / "_core.py"))}
    assert "workerbridge._exceptions" in core
