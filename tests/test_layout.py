"""The package's import rules (DESIGN.md): data flows one way, no import circles.

Every ``import`` / ``from ... import`` in src/cinerec is read with `ast`, at module level
and inside functions alike (a lazy import is still a dependency); imports under
``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cinerec"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str] | None = None) -> set[str]:
    """The cinerec modules ``path`` imports. ``from pkg import name`` depends on
    ``pkg.name`` when that is a module, else on ``pkg`` (importing a submodule runs its
    parent package, but that is not a dependency of ours)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{a.name}" for a in node.names}
            known = subs & modules if modules is not None else set()
            out.update(known)
            if known != subs:
                out.add(mod)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in out if m == "cinerec" or m.startswith("cinerec.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {d for d in _imports(path, set(modules)) if d in modules and d != name}
        for name, path in modules.items()
    }


GRAPH = _graph()


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("forbidden", ["stats", "compress", "serving", "evaluation", "report", "cli", "artifacts", "experiment"])
def test_models_do_not_import_downstream_areas(forbidden):
    bad = sorted(
        f"{m} -> {d}" for m, deps in GRAPH.items() if _area(m) == "models" for d in deps if _area(d) == forbidden
    )
    assert not bad, bad


def test_features_and_data_do_not_import_models_or_analysis():
    bad = sorted(
        f"{m} -> {d}"
        for m, deps in GRAPH.items()
        if _area(m) in ("data", "features", "train", "_util")
        for d in deps
        if _area(d) in ("models", "stats", "compress", "evaluation", "report", "serving", "cli")
    )
    assert not bad, bad


def test_no_import_circles():
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(GRAPH.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                dfs(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            dfs(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_walker_sees_lazy_imports(tmp_path):
    f = tmp_path / "cinerec" / "x.py"
    f.parent.mkdir()
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cinerec.a\n"
                 "def g():\n    from cinerec.b import c\n")
    global SRC
    old, SRC = SRC, tmp_path
    try:
        assert _imports(f, {"cinerec.b"}) == {"cinerec.b"}
        assert _imports(f, {"cinerec.b", "cinerec.b.c"}) == {"cinerec.b.c"}
    finally:
        SRC = old
