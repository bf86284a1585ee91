"""The package is grouped by layer and every import runs downward (docs/architecture.md):
theory < linalg < sampling < studies < results < analysis < the entry points (cli, config, cluster, bench, cost).
No module imports a higher layer, no two modules import each other (directly or in a cycle), and
no import of svperturb hides inside a function, except where the command line defers the analysis
layer and the benchmarks to the verbs that use them (their import costs every simulate job)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "svperturb"
LAYERS = ("theory", "linalg", "sampling", "studies", "results", "analysis")
ENTRY_POINTS = ("cli", "config", "cluster", "bench", "cost", "__main__")
# (module, imported module) pairs the command line imports inside the verb that needs them
DEFERRED = {("svperturb.cli", "svperturb.analysis.claims"), ("svperturb.cli", "svperturb.analysis.fit"),
            ("svperturb.cli", "svperturb.analysis.report"), ("svperturb.cli", "svperturb.bench")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """0 for the package root (the version), then 1 + the index in LAYERS; the entry points last."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    if parts[1] in LAYERS:
        return 1 + LAYERS.index(parts[1])
    assert parts[1] in ENTRY_POINTS, f"{module}: in no layer; put it in one of {LAYERS}"
    return 1 + len(LAYERS)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported svperturb module, whether at module level) for every import in `path`."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("svperturb"):
            for alias in node.names:  # `from svperturb.x import y`: y may be a module
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() or \
                    (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                found.append((candidate if is_module else node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names if a.name.startswith("svperturb")]
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def test_every_module_sits_in_a_layer():
    assert {name.split(".")[1] for name in MODULES if "." in name} <= {*LAYERS, *ENTRY_POINTS}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module):
    upward = [target for target, _ in GRAPH[module] if layer(target) > layer(module)]
    assert upward == [], f"{module} (layer {layer(module)}) imports a higher layer: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_hides_inside_a_function(module):
    hidden = [target for target, at_top in GRAPH[module]
              if not at_top and (module, target) not in DEFERRED]
    assert hidden == [], f"{module} imports {hidden} inside a function"


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the directed graph `edges` (node -> the nodes it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_no_import_cycle():
    """Module-level imports form no cycle (a package stands for its __init__)."""
    edges = {m: {t for t, at_top in targets if at_top and t in MODULES and t != m}
             for m, targets in GRAPH.items()}
    assert find_cycle(edges) is None


def test_the_checks_see_a_violation(tmp_path):
    """The checks can fail: an upward, a hidden and a cyclic import are each found."""
    upward = tmp_path / "upward.py"
    upward.write_text("from svperturb.analysis import fit\n\ndef f():\n    from svperturb.linalg import engine\n")
    found = imports(upward)
    assert ("svperturb.analysis.fit", True) in found and ("svperturb.linalg.engine", False) in found
    assert layer("svperturb.analysis.fit") > layer("svperturb.theory.bounds")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None
