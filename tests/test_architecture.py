"""The import graph of ``src/hgrec`` follows the pipeline (docs/architecture.md).

Every ``import`` of an ``hgrec`` module is read from the source with :mod:`ast`: at module
level, inside functions and under ``TYPE_CHECKING`` alike. No import may run from a lower
stage to a higher one, and no circle may remain, inside a stage or across stages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import modules of its own stage or of lower stages only.
STAGES: tuple[tuple[str, ...], ...] = (
    ("errors", "utils"),  # atomic files, devices, seeds, process groups: no hgrec above
    ("data",),  # schema, validation, loading, histories
    ("features",),  # text model and embeddings, item and user featurisers
    ("config",),  # every stage's typed settings (checks the text model through features)
    ("datasets",),  # named datasets: config + data
    ("graph",),  # co-interaction graph
    ("sampling",),  # multi-link supervision, neighbour sampling
    ("models",),  # networks (towers, HGNN layers, losses) and recommenders that do not train
    ("training",),  # trainers: a module, its config section, a validation callable
    ("evaluation",),  # protocols, metrics, tuning, reports
    ("recommenders",),  # recommenders that train (2T, 2T-HGNN, HGNN-w-users); the registry
    ("serving",),  # a finished run answering requests
    ("pipeline",),  # the stages of `hgrec run`, add-items, similar, the torchrun entry point
    ("cli",),
)


def _stage(module: str) -> int:
    """Index in :data:`STAGES` of ``hgrec.<top>...``; a top-level name absent from STAGES fails."""
    top = module.split(".")[1] if "." in module else ""
    for i, names in enumerate(STAGES):
        if top in names:
            return i
    raise AssertionError(f"{module}: its package {top!r} has no place in STAGES")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "hgrec").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` refers to (``from a.b import c``: ``a.b.c`` when that is a module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """hgrec module -> the hgrec modules it imports (anywhere in its source)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                names = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            for target in names:
                if target == "hgrec" or target.startswith("hgrec."):
                    resolved = _resolve(target, modules)
                    if resolved and resolved != name:
                        targets.add(resolved)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_every_package_has_a_stage() -> None:
    for module in import_graph():
        if module != "hgrec":
            _stage(module)


def test_no_import_runs_up_the_pipeline() -> None:
    upward = sorted(
        f"{src} -> {dst}"
        for src, targets in import_graph().items() if src != "hgrec"
        for dst in targets if dst != "hgrec" and _stage(dst) > _stage(src)
    )
    assert upward == [], "imports from a lower stage to a higher one:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    assert _cycles(import_graph()) == []


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected

