"""The house reads in layers: imports between pipeline's packages point one way (CLI -> features -> stages -> core ->
udfs), no module imports itself back through others, and udfs imports no engine and nothing from pipeline.

Read from the source with ast (every import, also those inside functions; those under ``if TYPE_CHECKING:`` are
type hints only and left out), so nothing is imported to check it.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# layer of each package: a module may import its own package and packages of a lower layer only
LAYERS = {"udfs": 0, "core": 1, "stages": 2, "cli": 4}
FEATURE = 3  # any other pipeline/ package: run, cluster, refresh, reports, sample, quality_training, ...
ENGINES = ("pyspark", "ray", "py4j")


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for b in node.body for n in ast.walk(b))
    return out


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, under TYPE_CHECKING) for every import in the file; ``from pkg import mod`` names the
    module where ``mod`` is one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hints = _type_checking_only(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in hints) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                is_mod = (ROOT / (sub.replace(".", "/") + ".py")).exists() or (ROOT / sub.replace(".", "/")).is_dir()
                out.append((sub if is_mod else node.module, id(node) in hints))
    return out


def _modules() -> dict[str, Path]:
    out = {}
    for top in ("pipeline", "udfs", "jobs"):
        for p in sorted((ROOT / top).rglob("*.py")):
            parts = p.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _package(module: str) -> str:
    """pipeline.core.stage -> core; pipeline.cli -> cli; pipeline (its __version__) -> core; udfs.x -> udfs."""
    parts = module.split(".")
    if parts[0] != "pipeline":
        return parts[0]
    return parts[1] if len(parts) > 1 else "core"


def _layer(package: str) -> int:
    return LAYERS.get(package, FEATURE)


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (type hints left out)."""
    mods = _modules()
    graph = {}
    for m, p in mods.items():
        deps = set()
        for name, hint in _imports(p):
            if hint:
                continue
            while name and name not in mods:  # a symbol's module, or a package
                name = name.rpartition(".")[0]
            if name and name != m and name != "pipeline":
                deps.add(name)
        graph[m] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_pipeline_module_is_in_a_package():
    flat = sorted(p.name for p in (ROOT / "pipeline").glob("*.py"))
    assert flat == ["__init__.py", "cli.py"], f"flat modules besides the CLI: {flat}"
    for d in (ROOT / "pipeline").iterdir():
        if d.is_dir() and any(d.glob("*.py")):
            assert (d / "__init__.py").exists(), f"{d} has no __init__.py"


def test_no_module_import_circles():
    graph = _graph()
    assert len(graph) > 60, sorted(graph)
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_no_package_import_circles():
    graph: dict[str, set[str]] = {}
    for m, deps in _graph().items():
        if m.startswith("jobs"):
            continue
        graph.setdefault(_package(m), set()).update(_package(d) for d in deps if _package(d) != _package(m))
    assert {"core", "stages", "run", "cluster", "refresh", "reports", "cli", "udfs"} <= set(graph)
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_imports_point_down_the_layers():
    wrong = []
    for m, deps in _graph().items():
        if m.startswith("jobs"):
            continue
        for d in deps:
            if d.startswith("jobs") or _layer(_package(d)) > _layer(_package(m)):
                wrong.append(f"{m} -> {d}")
    assert not wrong, "\n".join(sorted(wrong))


def test_udfs_import_no_engine_and_no_pipeline():
    wrong = []
    for m, p in _modules().items():
        if not m.startswith("udfs"):
            continue
        for name, hint in _imports(p):
            top = name.split(".")[0]
            if top in ENGINES or (top == "pipeline" and not hint):
                wrong.append(f"{m} imports {name}")
            if top == "pipeline" and hint and not name.startswith("pipeline.core.config"):
                wrong.append(f"{m} type-hints {name} (only config types may be named)")
    assert not wrong, "\n".join(sorted(wrong))


def test_jobs_are_thin_entry_points():
    for m, p in _modules().items():
        if m.startswith("jobs.") and m != "jobs":
            assert {n for n, _ in _imports(p) if n.split(".")[0] in ("pipeline", "udfs")} == {"pipeline.cli"}, m
            assert len(p.read_text().splitlines()) < 20, m


def test_checker_finds_a_circle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer(_package("pipeline.run.runner")) > _layer(_package("pipeline.stages.extract")) \
        > _layer(_package("pipeline.core.stage")) > _layer(_package("udfs.minhash"))
