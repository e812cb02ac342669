"""The package's layers (docs/ARCHITECTURE.md): imports go downwards only, and never in a cycle.

Every import of a metricflow module counts, also one inside a function: a late import that
dodges a cycle is still a cycle.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "metricflow"

# Lowest first. A module may import its own layer and the layers before it.
LAYERS = [
    ("base", ["_jax", "_nt", "errors", "estimates", "progress", "constraints", "hashing", "parse"]),
    ("geometry", ["geometry"]),
    ("kernels", ["kernels"]),
    ("flows", ["flows"]),
    ("networks", ["networks"]),
    ("studies", ["studies"]),
    ("jobs", ["jobs"]),
    ("figures", ["figures"]),
    ("reproduce", ["reproduce"]),
    ("cli", ["cli"]),
    ("api", ["__init__", "__main__"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(name: str) -> int:
    if name == "metricflow":
        first = "__init__"
    else:
        first = name.split(".")[1]
    for index, (_, members) in enumerate(LAYERS):
        if first in members:
            return index
    raise AssertionError(f"{name} is in no layer of docs/ARCHITECTURE.md; add it to LAYERS")


def imports_of(name: str, path: Path, known: dict) -> set:
    """The metricflow modules that ``name`` imports (explicit targets; a submodule import does
    not count as importing its parent package's __init__)."""
    out = set()
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        else:
            continue
        out |= {t for t in targets if t == "metricflow" or t.startswith("metricflow.")}
    out.discard(name)
    return out


def graph() -> dict:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_module_is_in_a_layer():
    for name in modules():
        layer_of(name)


def test_no_upward_import_between_layers():
    upward = []
    for name, targets in graph().items():
        for target in targets:
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def find_cycle(edges: dict):
    """A list of modules forming a cycle, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_layer_check_sees_a_late_upward_import(tmp_path):
    """A function-level import counts: studies importing the job runner is refused."""
    source = "def f():\n    from metricflow.jobs import run_job\n    return run_job\n"
    path = tmp_path / "x.py"
    path.write_text(source)
    found = imports_of("metricflow.studies.x", path, modules())
    assert found == {"metricflow.jobs"} and layer_of("metricflow.jobs") > layer_of("metricflow.studies.x")


def test_the_library_never_imports_streamlit_or_the_dashboard():
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for n in names:
                assert not n.split(".")[0] in ("streamlit", "dashboard", "pages"), f"{name} imports {n}"


@pytest.mark.parametrize("module", ["metricflow.studies.tuning", "metricflow.figures", "metricflow.flows.flow"])
def test_lower_layers_load_without_the_job_runner(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('metricflow.jobs')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
