"""The package's import graph: no cycles (lazy imports included), and the pipeline's
stages import only the stages before them."""

import ast
from pathlib import Path

import pytest

import hamsym

pytestmark = pytest.mark.fast

PACKAGE = Path(hamsym.__file__).parent


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports():
    """{module: set of hamsym modules it imports anywhere (lazy imports included)}."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                stem = ".".join(base + ([node.module] if node.module else []))
                # "from pkg import name": name may be a submodule
                targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue       # a package and its own modules: Python imports the package first
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = _cycle(_imports())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walk_sees_a_cycle():
    # the walk itself, on a graph with a lazy cycle through three modules
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# what each stage may import: nothing later in the pipeline
_STAGES = ["hamsym.errors", "hamsym.declare", "hamsym.derive", "hamsym.codegen",
           "hamsym.runtime", "hamsym.workbench"]
_MAY_NOT = {
    "hamsym.errors": _STAGES[1:],
    "hamsym.declare": ["hamsym.derive", "hamsym.runtime", "hamsym.workbench"],
    "hamsym.derive": ["hamsym.codegen", "hamsym.runtime", "hamsym.workbench"],
    "hamsym.codegen": ["hamsym.workbench"],
    "hamsym.runtime": ["hamsym.errors", "hamsym.declare", "hamsym.derive", "hamsym.codegen",
                       "hamsym.workbench"],
}


def test_stages_import_only_earlier_stages():
    graph = _imports()
    bad = []
    for module, targets in graph.items():
        for stage, forbidden in _MAY_NOT.items():
            if module == stage or module.startswith(stage + "."):
                bad += [f"{module} imports {t}" for t in targets
                        if any(t == f or t.startswith(f + ".") for f in forbidden)]
    assert not bad, "\n".join(bad)


def test_the_runtime_imports_numpy_numba_scipy_only():
    """The runtime is copied beside generated modules, which need nothing else."""
    allowed = {"numpy", "numba", "scipy", "llvmlite"}
    lazy_ok = {"tqdm", "mpi4py", "numba_mpi"}
    bad = []
    for path in (PACKAGE / "runtime").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                import sys
                if top in allowed or top in sys.stdlib_module_names or top in lazy_ok:
                    continue
                bad.append(f"{path.name}: {name}")
    assert not bad, bad
