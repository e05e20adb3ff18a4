"""The layout of ccl/: four concerns and the verbs over them, every import pointing downward.

The layers, lowest first (a package may import only those it lists; imports inside functions count):

    content    the YAML assets, the activity catalogue, the actors and attributes   imports nothing of ccl
    vector     normalize.vrl and geoip.vrl in Python, Vector's tests and lint        imports nothing of ccl
    simulator  the fake Compliance API                                               content
    detection  search syntax, rules, the engine, rule tests, streaming detect        content, vector
    datadog    render, client, plan/deploy, the fake Datadog, the pipeline emulator  content, vector, detection
    verbs      cli, commands/, validate, demo, scaffold (the top of ccl/)            anything

Besides: no import cycle between modules, nor among the children of any package (a subpackage counting
as one node), and collector/ never imports ccl
(a Vector host installs the collector alone).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

ALLOWED = {
    "content": set(),
    "vector": set(),
    "simulator": {"content"},
    "detection": {"content", "vector"},
    "datadog": {"content", "vector", "detection"},
    "verbs": {"content", "vector", "simulator", "detection", "datadog"},
}
# The modules at the top of ccl/: verbs over every concern. A new top-level module must be added
# here (or go into a concern), so that nothing lands at the top by accident and imports anything.
VERBS = {"ccl", "ccl.__main__", "ccl.cli", "ccl.demo", "ccl.validate", "ccl.scaffold", "ccl.commands"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module, dotted
    where: str  # file:line, for the failure message


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module under root/package, by dotted name (a package by its own name, for its __init__)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(root: Path, package: str, prefix: str = "ccl") -> list[Import]:
    """Every import of `prefix` in the modules of `package`, at any depth of the code, resolved to a module."""
    known = modules(root, prefix) if (root / prefix).is_dir() else {}
    edges = []
    for name, path in modules(root, package).items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from ccl.x import y` imports the module ccl.x.y when there is one, else names of ccl.x.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            edges += [Import(name, target, where) for target in targets
                      if target == prefix or target.startswith(prefix + ".")]
    return edges


def layer(module: str) -> str | None:
    """The concern a module of ccl belongs to; None for a top-level module nobody declared."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ALLOWED and parts[1] != "verbs":
        return parts[1]
    return "verbs" if module in VERBS or ".".join(parts[:2]) in VERBS else None


def child(module: str, parent: str) -> str | None:
    """The child of package `parent` that holds `module` (a submodule, or a subpackage as one), if any."""
    if not module.startswith(parent + "."):
        return None
    return module[len(parent) + 1:].split(".")[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node, or with a self-loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def problems(root: Path) -> list[str]:
    """Everything wrong with the layout of root/ccl and root/collector, one line each."""
    known = modules(root, "ccl")
    edges = [edge for edge in imports(root, "ccl") if edge.target in known and edge.target != edge.source]
    found = [f"{name}: a top-level module not declared in tests/test_layout.py (VERBS), or put it in a concern"
             for name in known if layer(name) is None]
    for edge in edges:
        source, target = layer(edge.source), layer(edge.target)
        if source and target and source != target and target not in ALLOWED[source]:
            allowed = ", ".join(sorted(ALLOWED[source])) or "nothing else of ccl"
            found.append(f"{edge.where} imports {edge.target}: {source} may import {allowed}, not {target}")
    module_graph: dict[str, set[str]] = {}
    for edge in edges:
        module_graph.setdefault(edge.source, set()).add(edge.target)
    found += [f"import cycle between modules: {' <-> '.join(cycle)}" for cycle in cycles(module_graph)]
    # Between packages: among the children of each package (its modules, each subpackage as one node),
    # no cycle. A subpackage using its parent's modules is containment, not a cycle; but two siblings
    # that import each other, even through different modules, are one concern split in two.
    for parent in sorted(name for name, path in known.items() if path.name == "__init__.py"):
        siblings: dict[str, set[str]] = {}
        for edge in edges:
            source, target = child(edge.source, parent), child(edge.target, parent)
            if source and target and source != target:
                siblings.setdefault(source, set()).add(target)
        found += [f"import cycle between packages: {' <-> '.join(f'{parent}.{name}' for name in cycle)}"
                  for cycle in cycles(siblings) if any(f"{parent}.{name}" not in known or
                                                       known[f"{parent}.{name}"].name == "__init__.py"
                                                       for name in cycle)]
    found += [f"{edge.where}: the collector imports {edge.target}; it must run without ccl installed"
              for edge in imports(root, "collector")]
    return found


def test_every_import_in_ccl_points_downward_and_collector_never_imports_ccl():
    found = problems(ROOT)
    assert not found, "\n".join(found)


def test_every_package_says_in_its_docstring_what_it_holds_and_may_import():
    for init in sorted((ROOT / "ccl").rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in docstring.lower(), f"{init.relative_to(ROOT)}: its docstring says what it may import"


def test_the_check_finds_an_upward_import_a_cycle_an_undeclared_module_and_the_collector_importing_ccl(tmp_path):
    def write(relative: str, text: str = "") -> None:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    write("ccl/__init__.py")
    write("ccl/cli.py", "from ccl.detection import rules\n")
    write("ccl/content/__init__.py")
    write("ccl/content/catalog.py", "import json\n")
    write("ccl/detection/__init__.py")
    write("ccl/detection/rules.py",
          "from ccl.content.catalog import x\n\ndef late():\n    from ccl.datadog import render\n")
    write("ccl/detection/engine.py", "from . import rules\nfrom .conditions import y\n")
    write("ccl/detection/conditions.py", "import ccl.detection.engine\n")
    write("ccl/datadog/__init__.py")
    write("ccl/datadog/render.py", "from ccl.detection.rules import Rule\n")
    write("ccl/stray.py")
    write("collector/__init__.py")
    write("collector/cli.py", "def run():\n    import ccl.cli\n")

    found = problems(tmp_path)

    assert "ccl/detection/rules.py:4 imports ccl.datadog.render: detection may import content, vector, not datadog" \
        in found
    assert "import cycle between modules: ccl.detection.conditions <-> ccl.detection.engine" in found
    assert "import cycle between modules: ccl.datadog.render <-> ccl.detection.rules" in found
    assert "import cycle between packages: ccl.datadog <-> ccl.detection" in found
    assert any(line.startswith("ccl.stray: a top-level module not declared") for line in found)
    assert "collector/cli.py:2: the collector imports ccl.cli; it must run without ccl installed" in found
    assert len(found) == 6, found
